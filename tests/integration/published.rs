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
