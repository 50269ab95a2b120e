//! Device-level fidelity: the compute and collective models against published microbenchmarks
//! (`workloads/reference/gemm-a100.csv`, `workloads/reference/nccl-tests-a100.csv`) on dgx-a100.
//! Where a target of issue 12 is not met, the test says so and asserts today's bound, so that a
//! regression fails; README's validation section lists every point.

use super::common::{config, reference};
use clustersim::studies::collective::SweepOp;
use clustersim::studies::{attention_kernels, gemm, nccl_tests};

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
    let csv = reference("device-h100.csv");
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
    let csv = reference("device-h100.csv");
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
    let csv = reference("sustained.csv");
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
    let csv = reference("hbm-a100.csv");
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

/// The charts released with FlashAttention-2 time the unfused attention core (`pytorch`: batched
/// GEMMs that write and read the s x s scores, softmax, the causal mask added) on an A100 80GB
/// SXM4: a device measurement of the kernels that stream training's score tensors. At
/// `dgx-a100`'s streaming rate (0.487 of 2039 GB/s) the model follows all 20 points; at STREAM's
/// copy rate (0.852) the same kernels would run 1.5-2.1x faster than published, which is why the
/// preset's rate sits below STREAM's.
#[test]
fn a100_unfused_attention_streams_at_the_preset_rate_not_at_stream_s() {
    let gpu = config("dgx-a100", "gpt-5.9b", &[]).hardware.gpu;
    let rows = attention_kernels::compare(&gpu);
    let (mean, max, n) = attention_kernels::errors(&rows, "pytorch", false);
    println!("{}", attention_kernels::markdown(&rows));
    assert_eq!(n, 20, "the A100 chart's PyTorch points");
    assert!(mean < 8.0 && max < 21.0, "mean {mean:.1}%, max {max:.1}%");
    let mut stream = gpu.clone();
    stream.memory_efficiency = 0.852;
    for r in attention_kernels::compare(&stream)
        .iter()
        .filter(|r| r.method == "pytorch")
    {
        assert!(
            r.error_pct() > 40.0,
            "at STREAM's rate {r:?} is only {:+.1}% off",
            r.error_pct()
        );
    }
}

/// The presets' fused-attention rates are read off the same charts where training runs them
/// (causal mask, head dimension 128, sequence 4096 and up): on the A100 directly; on the H100,
/// FlashAttention 1 is the measured FlashAttention-2 rate (`attention_efficiency`, held at the
/// power limit) times the charts' FA1 / FA2 speed ratio (126/294 and 135/308: 0.433).
#[test]
fn fused_attention_rates_follow_the_published_charts() {
    let a100 = attention_kernels::compare(&config("dgx-a100", "gpt-5.9b", &[]).hardware.gpu);
    for method in ["flash1", "flash2"] {
        let (mean, max, n) = attention_kernels::errors(&a100, method, true);
        assert_eq!(n, 3, "{method}: seq 4096, 8192, 16384");
        assert!(mean < 5.0 && max < 7.0, "A100 {method}: mean {mean:.1}%, max {max:.1}%");
    }
    let h100 = config("dgx-h100", "gpt-5.9b", &[]).hardware.gpu;
    let rows = attention_kernels::compare(&h100);
    let published = |method: &str, seq: u64| {
        rows.iter()
            .find(|r| r.method == method && r.causal && r.head_dim == 128 && r.seq_len == seq)
            .map(|r| r.published_tflops)
            .unwrap()
    };
    let ratio = (published("flash1", 4096) / published("flash2", 4096)
        + published("flash1", 8192) / published("flash2", 8192))
        / 2.0;
    let preset = h100.flash1_attention_efficiency.unwrap() / h100.attention_efficiency.unwrap();
    assert!(
        (preset / ratio - 1.0).abs() < 0.02,
        "preset FA1/FA2 {preset:.3}, published {ratio:.3}"
    );
}

/// Korthikanti et al. 2022, Table 4 (`workloads/reference/korthikanti2022-layer.csv`): one layer
/// of a 22B GPT (h 6144, 64 heads, s 2048, microbatch 4) on 8 A100 80GB with tensor parallelism 8,
/// timed by Megatron-LM's authors. Forward includes its 2 all-reduces of b s h x 2 bytes (100.7 MB
/// over 8 GPUs, priced by the collective model); in backward the all-reduces overlap the
/// weight-gradient GEMMs (the paper's section 6.2), so backward is compared as compute alone.
/// Without sequence parallelism the simulated layer is 9-12% slower than published, forward and
/// backward, recompute or not (with it: forward 6% slower, backward 7% faster): the per-layer gap
/// behind Figure 14's uniform pessimism (README, "The A100's streaming rate"). Every time stays
/// within 20%, and selective recomputation costs more than the published 1.3 ms: its score
/// kernels stream at `memory_efficiency`.
#[test]
fn a100_layer_matches_the_published_megatron_layer_times() {
    use clustersim::config::Recompute;
    use clustersim::model::compute::ComputeModel;
    use clustersim::studies::collective::sweep;
    use clustersim::workload::transformer::{LayerShape, Piece};
    let cfg = config("dgx-a100", "gpt-5.9b", &[]);
    let model = ComputeModel::new(&cfg.hardware.gpu);
    let compute = |pieces: &[Piece]| -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, kernels) => kernels.iter().map(|k| model.kernel_seconds(k)).sum(),
                _ => 0.0,
            })
            .sum::<f64>()
            * 1e3
    };
    let tensor_collectives = |pieces: &[Piece]| -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Tensor(op, bytes) => {
                    let op = match op {
                        clustersim::ops::CollectiveOp::AllReduce => SweepOp::AllReduce,
                        clustersim::ops::CollectiveOp::AllGather => SweepOp::AllGather,
                        _ => SweepOp::ReduceScatter,
                    };
                    sweep(&cfg.hardware, op, 8, &[*bytes]).unwrap()[0].time_s * 1e3
                }
                _ => 0.0,
            })
            .sum()
    };
    let mut m = cfg.workload.model.clone();
    (m.hidden, m.heads, m.seq_len, m.vocab) = (6144, 64, 2048, 51200);
    let published = reference("korthikanti2022-layer.csv");
    let row = |name: &str| -> (f64, f64) {
        let f: Vec<f64> = published
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name},")))
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        (f[0], f[1])
    };
    for (name, sp, recompute) in [
        ("no recompute", false, Recompute::None),
        ("sequence parallelism", true, Recompute::None),
        ("full recompute", false, Recompute::Full),
        ("selective recompute", false, Recompute::Selective),
    ] {
        let shape = LayerShape::new(&m, 4, 8, sp);
        let forward = shape.forward();
        let (fwd, bwd) = (
            compute(&forward) + tensor_collectives(&forward),
            compute(&shape.backward(recompute))
                + match recompute {
                    // the recomputed forward's all-reduces are exposed
                    Recompute::Full => compute(&forward) + tensor_collectives(&forward),
                    _ => 0.0,
                },
        );
        let (pub_fwd, pub_bwd) = row(name);
        println!("{name}: forward {fwd:.2} ms (published {pub_fwd}), backward {bwd:.2} ms (published {pub_bwd})");
        for (what, simulated, measured) in [("forward", fwd, pub_fwd), ("backward", bwd, pub_bwd)] {
            let error = simulated / measured - 1.0;
            assert!(error.abs() < 0.20, "{name} {what}: {simulated:.2} ms vs {measured} ms");
        }
    }
    let plain = compute(&LayerShape::new(&m, 4, 8, false).backward(Recompute::None));
    let selective = compute(&LayerShape::new(&m, 4, 8, false).backward(Recompute::Selective));
    println!("selective recompute costs {:.2} ms (published 1.3)", selective - plain);
    assert!(selective - plain > 1.3, "{selective} - {plain}");
}
