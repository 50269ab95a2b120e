//! Device-level fidelity: the compute and collective models against published microbenchmarks
//! (`workloads/reference/gemm-a100.csv`, `workloads/reference/nccl-tests-a100.csv`) on dgx-a100.
//! Where a target of issue 12 is not met, the test says so and asserts today's bound, so that a
//! regression fails; README's validation section lists every point.

use super::common::config;
use clustersim::studies::collective::SweepOp;
use clustersim::studies::{gemm, nccl_tests};

/// Every published cuBLASLt shape with aligned dimensions (multiples of 8) within 10%, and no SXM
/// shape faster than the best-of-sweep maxima. The misaligned 1024 x 2145 x 1024 runs 21% faster
/// here than measured: cuBLAS falls back to slower kernels for it, which the tile model does not know.
#[test]
fn gemms_match_published_cublaslt_rates() {
    let hw = config("dgx-a100", "gpt-5.9b", &[]).hardware;
    let rows = gemm::compare(&hw.gpu);
    let shapes: Vec<_> = rows.iter().filter(|r| r.kind == "shape").collect();
    assert_eq!(shapes.len(), 8);
    for r in &shapes {
        if r.aligned() {
            assert!(r.error_pct().abs() < 10.0, "{:?}: {:.1}%", r.mnk, r.error_pct());
        } else {
            assert!(r.error_pct() < 25.0, "{:?}: {:.1}%", r.mnk, r.error_pct());
        }
    }
    let best = rows
        .iter()
        .filter(|r| r.kind == "best-of-sweep")
        .map(|r| r.published_tflops);
    let best = best.fold(0.0, f64::max);
    assert!(best > 260.0);
    assert!(
        rows.iter().all(|r| r.simulated_tflops <= best),
        "a shape beats the best measured rate"
    );
}

/// A value of `device-h100.csv` by its leading fields.
fn device_h100(prefix: &str) -> f64 {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/reference/device-h100.csv"
    ))
    .unwrap();
    let line = csv.lines().find_map(|l| l.strip_prefix(prefix).map(str::to_string));
    line.unwrap_or_else(|| panic!("no {prefix}")).parse().unwrap()
}

/// The H100 preset against this project's own device measurements (PyTorch 2.11 / CUDA 13). It is
/// fitted to `gemm-h100-sustained.csv`, the 128 shapes timed as training runs them (the board at its
/// 700 W limit): BF16 within 2.5% on average and 8% at every aligned shape, FP8 within 3% and 15%.
/// The same shapes timed after idling (`gemm-h100.csv`, and `gemm-h200.csv` on the same die) run at
/// a higher clock: the preset is slower than those on average (a negative mean signed error), and
/// within 7% on average and 25% at worst (4096^3-class shapes, which keep a high clock for a short
/// replay).
#[test]
fn h100_gemms_match_the_device_measurements() {
    let signed_mean = |rows: &[gemm::GemmComparison], source: &str, dtype: &str| {
        let errors: Vec<f64> = rows
            .iter()
            .filter(|r| r.source == source && r.kind == "shape" && r.aligned() && r.dtype == dtype)
            .map(|r| r.error_pct())
            .collect();
        errors.iter().sum::<f64>() / errors.len() as f64
    };
    let rows = gemm::compare(&config("dgx-h100", "gpt-5.9b", &[]).hardware.gpu);
    let sustained = "clustersim-device-h100-sustained-2026";
    for (dtype, mean_bound, max_bound) in [("bf16", 2.5, 8.0), ("fp8", 3.0, 15.0)] {
        let (mean, max, n) = gemm::shape_errors(&rows, sustained, dtype);
        assert_eq!(n, 64, "{dtype}");
        assert!(
            mean < mean_bound && max < max_bound,
            "sustained {dtype} {mean:.1}% / {max:.1}%"
        );
    }
    for (preset, source) in [
        ("dgx-h100", "clustersim-device-h100-2026"),
        ("dgx-h200", "clustersim-device-h200-2026"),
    ] {
        let rows = gemm::compare(&config(preset, "gpt-5.9b", &[]).hardware.gpu);
        for dtype in ["bf16", "fp8"] {
            let (mean, max, n) = gemm::shape_errors(&rows, source, dtype);
            assert_eq!(n, 64, "{preset} {dtype}");
            assert!(mean < 7.0 && max < 25.0, "{preset} {dtype} {mean:.1}% / {max:.1}%");
            let signed = signed_mean(&rows, source, dtype);
            assert!(
                signed < 0.0,
                "{preset} {dtype}: after idling the GPU runs faster than the preset: {signed:.1}%"
            );
        }
    }
}

/// A fused attention layer's forward and backward on dgx-h100 against the measured kernels
/// (32 heads of 128 at sequence 4096 and 16 at 8192, causal, batch 1): FlashAttention-2 and cuDNN
/// each within 10% of the cases held for seconds at the power limit (`sustained.csv`, what the
/// preset is set from) and 15% of the same cases timed after idling (`device-h100.csv`; cuDNN at
/// 8192 runs 15% faster there than held). The simulated kernels do 2 bh s^2 d FLOPs forward and 5
/// backward (the causal half skipped), at the preset's efficiency for that library.
#[test]
fn h100_attention_matches_the_device_measurements() {
    use clustersim::model::compute::ComputeModel;
    use clustersim::ops::{FusedAttention, Kernel};
    let hw = config("dgx-h100", "gpt-5.9b", &[]).hardware;
    let model = ComputeModel::new(&hw.gpu);
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/reference/device-h100.csv"
    ))
    .unwrap();
    let measured_us = |name: &str, bh: u64, s: u64| -> f64 {
        let prefix = format!("attention,{name},{bh},{s},128,bf16,fwd_bwd_us,");
        csv.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap()
            .parse()
            .unwrap()
    };
    let d = 128u64;
    for (name, library, bh, s) in [
        ("flash-causal", FusedAttention::Flash2, 32u64, 4096u64),
        ("cudnn-causal", FusedAttention::Cudnn, 32, 4096),
        ("flash-causal", FusedAttention::Flash2, 16, 8192),
        ("cudnn-causal", FusedAttention::Cudnn, 16, 8192),
    ] {
        let forward = Kernel::Attention {
            flops: 2 * bh * s * s * d,
            bytes: 4 * bh * s * d * 2,
            library,
        };
        let backward = Kernel::Attention {
            flops: 5 * bh * s * s * d,
            bytes: 8 * bh * s * d * 2,
            library,
        };
        let simulated_us = (model.kernel_seconds(&forward) + model.kernel_seconds(&backward)) * 1e6;
        // after idling (device-h100.csv) and held for seconds at the power limit (sustained.csv)
        let after_idling = measured_us(name, bh, s);
        let held = sustained_us(&format!("{name}-{bh}x{s}x128"));
        for (measured, bound) in [(after_idling, 0.15), (held, 0.10)] {
            let error = simulated_us / measured - 1.0;
            assert!(
                error.abs() < bound,
                "{name} {bh}x{s}: {simulated_us:.0} us vs {measured:.0}"
            );
        }
    }
}

/// Microseconds of one fused attention case of `workloads/reference/sustained.csv` (H100).
fn sustained_us(case: &str) -> f64 {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/reference/sustained.csv"
    ))
    .unwrap();
    let prefix = format!("h100,attention,{case},bf16,0,fwd_bwd_us,");
    let line = csv.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
    line.unwrap_or_else(|| panic!("no {case}"))
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// One GPT layer (t = 1, cuDNN attention, batch 1, sequence 4096) and the output layer with
/// Megatron-LM's fp32 cross-entropy (vocabulary 131072), forward and backward, on dgx-h100 against
/// the same computation in plain PyTorch on one H100 (`device-h100.csv`, `scripts/device/h100-layer.py`):
/// the layer within 10%; the output layer from measured to 12% slower. The PyTorch layer has no
/// dropout, and its cross-entropy fuses log-softmax: about 36 bytes per logit against Megatron's 52,
/// which the simulation streams (16 B x 4096 x 131072 at 3.08 TB/s = 2.8 ms of the measured 25.5 at
/// h 4096). The measurements were short runs after idling, at a higher clock than the preset's GEMM
/// rates, fitted at the power limit (`gemm-h100-sustained.csv`).
#[test]
fn h100_layers_match_the_device_measurements() {
    use clustersim::config::Recompute;
    use clustersim::model::compute::ComputeModel;
    use clustersim::workload::transformer::{LayerShape, Piece};
    let cfg = config("dgx-h100", "gpt-5.9b", &[]);
    let model = ComputeModel::new(&cfg.hardware.gpu);
    let measured_ms = |prefix: String| device_h100(&prefix);
    let seconds = |pieces: Vec<Piece>| -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, kernels) => kernels.iter().map(|k| model.kernel_seconds(k)).sum(),
                _ => 0.0,
            })
            .sum()
    };
    for (hidden, heads) in [(2048, 16), (4096, 32), (6144, 48)] {
        let mut m = cfg.workload.model.clone();
        (m.hidden, m.heads, m.seq_len, m.vocab) = (hidden, heads, 4096, 131072);
        let shape = LayerShape {
            fused_attention: Some(clustersim::ops::FusedAttention::Cudnn),
            ..LayerShape::new(&m, 1, 1, false)
        };
        let within = |what: &str, simulated: f64, prefix: String, (low, high): (f64, f64)| {
            let measured = measured_ms(prefix) / 1e3;
            println!(
                "{what} h {hidden}: {:.3} ms simulated, {:.3} measured",
                simulated * 1e3,
                measured * 1e3
            );
            let error = simulated / measured - 1.0;
            assert!(
                (low..high).contains(&error),
                "{what} h {hidden}: {simulated} s vs {measured}"
            );
        };
        let layer = seconds(shape.forward()) + seconds(shape.backward(Recompute::None));
        within(
            "layer",
            layer,
            format!("gpt-layer,eager,{hidden},4096,{heads},bf16,fwd_bwd_ms_per_layer,"),
            (-0.10, 0.10),
        );
        if hidden <= 4096 {
            let output = seconds(shape.logits_forward()) + seconds(shape.logits_backward());
            within(
                "output",
                output,
                format!("output-layer,eager,{hidden},4096,131072,bf16,fwd_bwd_ms,"),
                (0.0, 0.12),
            );
        }
    }
}

fn errors(rows: &[nccl_tests::CollectiveComparison], op: SweepOp, source: &str, gpus: u32, from: u64) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.op == op && r.source == source && r.gpus == gpus && r.bytes >= from)
        .map(|r| r.error_pct())
        .collect()
}

/// All-reduce over 8 GPUs against the one-process-per-GPU source: within 10% from 64 MiB to 4 GiB
/// (target met there); below, NCCL 2.8's model is 16% fast at 32 MiB and 36% slow at 1 MiB, against
/// a source that ran the NCCL of 2024 (bounds asserted, target 10% not met). Two full nodes
/// (mscclpp, 8 x HDR) within 10% for all-reduce and all-gather; reduce-scatter and all-gather over 8
/// GPUs within 15% of the 2021 source from 256 MiB (from 1 MiB the target is not met: up to 62%
/// fast at mid sizes).
#[test]
fn collectives_match_published_nccl_tests() {
    let hw = config("dgx-a100", "gpt-5.9b", &[]).hardware;
    let rows = nccl_tests::compare(&hw).unwrap();
    // (op, source, GPUs, from bytes, bound %): the met targets, and today's bound where not met
    let series = [
        (SweepOp::AllReduce, "howto-a100-80g-mpirun", 8, 64 << 20, 10.0),
        (SweepOp::AllReduce, "howto-a100-80g-mpirun", 8, 64 << 10, 40.0),
        (SweepOp::AllReduce, "mscclpp-ndmv4", 16, 1 << 20, 10.0),
        (SweepOp::AllGather, "mscclpp-ndmv4", 16, 1 << 20, 10.0),
        (SweepOp::AllGather, "superbench-2021", 8, 256 << 20, 15.0),
        (SweepOp::ReduceScatter, "superbench-2021", 8, 256 << 20, 15.0),
    ];
    for (op, source, gpus, from, bound) in series {
        let errs = errors(&rows, op, source, gpus, from);
        assert!(!errs.is_empty(), "{op:?} {source} {gpus}: no points");
        for e in errs {
            assert!(e.abs() < bound, "{op:?} {source} {gpus} from {from} B: {e:.1}%");
        }
    }
}

/// dgx-a100's streaming rate against the published A100 STREAM measurement
/// (`workloads/reference/hbm-a100.csv`, RRZE gpu-benches): the scale kernel (one load and one
/// store stream, as most training kernels are) reaches 1737 GB/s = 0.852 of the 2039 GB/s
/// datasheet. The preset's `memory_efficiency` (0.487, from Figure 7's batch-independent time) is
/// far below it: the conflict issue 12 asks to report (README, "Assumptions"). It must at least
/// never claim more than the device streams, and the reference row must stay where the README
/// quotes it.
#[test]
fn a100_streaming_is_below_the_published_stream_rate() {
    let csv =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/reference/hbm-a100.csv")).unwrap();
    let scale: f64 = csv
        .lines()
        .find_map(|l| l.strip_prefix("A100-SXM4-80GB,scale,2039,"))
        .expect("the A100 80GB scale row")
        .parse()
        .unwrap();
    assert_eq!(scale, 1737.0);
    let gpu = config("dgx-a100", "gpt-5.9b", &[]).hardware.gpu;
    let preset = gpu.memory_efficiency * gpu.memory_bandwidth.bytes_per_s() / 1e9;
    let published = scale / 2039.0;
    println!(
        "dgx-a100 streams at {preset:.0} GB/s; published STREAM scale {scale} GB/s ({published:.3} of the datasheet)"
    );
    assert!(preset <= scale, "{preset} GB/s exceeds the measured {scale} GB/s");
}
