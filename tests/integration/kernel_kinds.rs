//! The time breakdown by kind of kernel: each op's time split as its kernels' uncontended times
//! are, so the kinds, the SMs lost to communication and the waits for the host sum to the compute
//! time.

use super::common::report;
use clustersim::report::Report;

/// GEMMs + attention + memory-bound + other + SM contention + host waits = compute, to the
/// nanosecond rounding of each booking.
fn assert_kinds_sum_to_compute(r: &Report) {
    let b = &r.breakdown;
    let k = &b.kernels;
    let sum = k.gemm_s + k.attention_s + k.memory_bound_s + k.other_s + b.sm_contention_s + b.host_wait_s;
    assert!((sum - b.compute_s).abs() < 1e-6 * b.compute_s.max(1.0), "{b:?}");
}

/// On the ideal machine a kernel takes its FLOPs at peak and streaming costs nothing, so every
/// compute second is a GEMM's, and the GEMMs' time per GPU is the model's FLOPs per GPU at peak:
/// MFU x iteration time (GPT 5.9B, 64 GPUs, no recomputation: the generated GEMMs are exactly
/// Megatron's model FLOPs, 72 B s l h^2 (1 + s/(6h)) + 6 B s h V).
#[test]
fn on_the_ideal_machine_gemm_time_is_the_model_flops_at_peak() {
    let r = report("ideal", "gpt-5.9b", &[]);
    let k = &r.breakdown.kernels;
    assert_eq!(k.memory_bound_s, 0.0);
    assert_eq!(k.attention_s, 0.0);
    assert!((k.gemm_s - r.breakdown.compute_s).abs() < 1e-6, "{:?}", r.breakdown);
    assert!(
        (k.gemm_s - r.mfu * r.iteration_time_s).abs() < 1e-6,
        "{:?}",
        r.breakdown
    );
    assert_kinds_sum_to_compute(&r);
}

/// 2021's separate attention kernels are GEMMs and memory-bound kernels (no fused attention), and
/// the DGX A100's host dispatch shows as waits; an H100 run with cuDNN's fused attention and
/// overlapped communication books attention and SM contention, and no host waits (no
/// `host_dispatch` in its preset).
#[test]
fn kinds_by_software_and_machine() {
    let a100 = report("dgx-a100", "gpt-5.9b", &[]);
    let k = &a100.breakdown.kernels;
    assert!(
        k.gemm_s > 0.0 && k.memory_bound_s > 0.0 && k.attention_s == 0.0,
        "{k:?}"
    );
    assert!(a100.breakdown.host_wait_s > 0.0, "{:?}", a100.breakdown);
    assert_kinds_sum_to_compute(&a100);
    let quiet = report("dgx-a100", "gpt-5.9b", &["hardware.node.host_dispatch=0 s".into()]);
    assert_eq!(quiet.breakdown.host_wait_s, 0.0);
    assert_kinds_sum_to_compute(&quiet);

    let h100 = report("dgx-h100", "llama3-70b", &[]);
    let k = &h100.breakdown.kernels;
    assert!(k.attention_s > 0.0 && k.gemm_s > k.attention_s, "{k:?}");
    assert!(h100.breakdown.sm_contention_s > 0.0);
    assert_eq!(h100.breakdown.host_wait_s, 0.0);
    assert_kinds_sum_to_compute(&h100);
}
