//! Throughput metrics follow the published formulas.

use super::common::report;

/// One GPU (p = d = t = 1), two layers, batch 4, no embedding or output layer.
fn single_gpu_no_embedding() -> Vec<String> {
    [
        "workload.model.vocab=0",
        "workload.model.layers=2",
        "workload.batch.global=4",
        "workload.parallel.pipeline=1",
        "workload.parallel.data=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// tflops_per_gpu = F / (T x GPUs), F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) (Megatron eq. 3);
/// mfu = 72 B l s h^2 (1 + s/(6h) + V/(12 h l)) / (T x GPUs x peak) (Korthikanti et al. eq. 7).
#[test]
fn tflops_and_mfu_follow_the_formulas_on_the_default_run() {
    let r = report("dgx-a100", "gpt-5.9b", &[]);
    let (b, s, l, h, v): (f64, f64, f64, f64, f64) = (512.0, 2048.0, 32.0, 3840.0, 51200.0);
    // F = 96 * 512 * 2048 * 32 * 3840^2 * (1 + 2048/23040 + 51200/1966080)
    //   = 4.74989e16 * (1 + 0.088889 + 0.026042) = 5.2958e16 FLOPs per iteration
    let f = 96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
    assert!((f / 5.2958e16 - 1.0).abs() < 1e-4, "{f}");
    let t = r.iteration_time_s;
    assert!((r.tflops_per_gpu - f / (t * 64.0) / 1e12).abs() < 1e-9);
    let model = 72.0 * b * l * s * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * h * l));
    assert!((r.mfu - model / (t * 64.0 * 312e12)).abs() < 1e-12);
    // samples and tokens per second
    assert!((r.samples_per_s - 512.0 / t).abs() < 1e-9);
    assert!((r.tokens_per_s - 512.0 * 2048.0 / t).abs() < 1e-6);
}

/// On the ideal machine, one GPU, no embedding (V = 0), no recompute: the GPU does exactly the
/// model FLOPs 3 x l x (24 B s h^2 + 4 B s^2 h) = 72 B l s h^2 (1 + s/(6h)) at peak, so MFU = 1,
/// and Megatron's metric (which counts a recompute forward, 96 instead of 72) reads 4/3 x peak = 416 TFLOP/s.
#[test]
fn ideal_single_gpu_reaches_mfu_one() {
    let sets = single_gpu_no_embedding();
    let r = report("ideal", "gpt-5.9b", &sets);
    assert!((r.mfu - 1.0).abs() < 1e-6, "{}", r.mfu);
    assert!((r.tflops_per_gpu - 416.0).abs() < 1e-3, "{}", r.tflops_per_gpu);
    assert_eq!(r.bubble.fraction, 0.0);
}

/// Full recompute re-runs each layer's forward: on the ideal machine the iteration takes 4/3 as long,
/// and Megatron's metric (which assumes recompute) then equals the peak exactly.
#[test]
fn full_recompute_costs_one_extra_forward() {
    let base = single_gpu_no_embedding();
    let mut full = base.clone();
    full.push("workload.recompute=full".into());
    let (a, b) = (report("ideal", "gpt-5.9b", &base), report("ideal", "gpt-5.9b", &full));
    assert!((b.iteration_time_s / a.iteration_time_s - 4.0 / 3.0).abs() < 1e-6);
    assert!((b.tflops_per_gpu - 312.0).abs() < 1e-3, "{}", b.tflops_per_gpu);
}

/// Communication costs show up: on dgx-a100 a tensor-parallel split has exposed communication,
/// and the ideal network removes it.
#[test]
fn tensor_parallel_communication_is_exposed_unless_free() {
    let sets: Vec<String> = [
        "workload.parallel.tensor=8",
        "workload.parallel.pipeline=1",
        "workload.parallel.data=1",
        "workload.batch.global=8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let real = report("dgx-a100", "gpt-5.9b", &sets);
    assert!(
        real.breakdown.exposed_comm_s > 0.01 * real.iteration_time_s,
        "{:?}",
        real.breakdown
    );
    let mut free = sets.clone();
    free.push("hardware.network.model=ideal".into());
    let ideal_net = report("dgx-a100", "gpt-5.9b", &free);
    assert_eq!(ideal_net.breakdown.exposed_comm_s, 0.0);
    assert!(ideal_net.iteration_time_s < real.iteration_time_s);
}
