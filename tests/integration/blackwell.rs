//! NCCL 2.25 (the first NCCL for Blackwell) on the dgx-b200 preset: what `clustersim collective
//! --hardware dgx-b200` runs and how fast.

use clustersim::config::{builtin_hardware, Document, HardwareSpec};
use clustersim::studies::collective::{algorithm, sweep, SweepOp};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn b200() -> HardwareSpec {
    let doc = Document::parse("dgx-b200", builtin_hardware("dgx-b200").unwrap()).unwrap();
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

/// The preset names NCCL 2.25 and NVLink SHARP, so its tuner runs: on one node ring LL at 1 MiB
/// (15 us of NCCL latency against NVLS's 25), NVLS from 4 MiB; on 2 nodes NVLS tree from 1 MiB.
/// NVLS kernels hold NCCL 2.25's 32 SM100 NVLS channels' SMs; the 1 MiB ring LL on one node the
/// largest nc of 2 x 16 = 32 with nc x 512 threads x 8 B x 8 ranks <= 1 MiB: 32.
#[test]
fn b200_runs_nccl_2_25s_tuner() {
    let hw = b200();
    assert!(hw.network.nccl.is_some() && hw.node.nvlink.sharp);
    let algo = |gpus, bytes| algorithm(&hw, SweepOp::AllReduce, gpus, bytes).unwrap();
    assert_eq!(algo(8, MIB), "Ring/LL, 32 SMs");
    assert_eq!(algo(8, 64 * MIB), "NVLS/Simple, 32 SMs");
    assert_eq!(algo(8, GIB), "NVLS/Simple, 32 SMs");
    assert_eq!(algo(16, GIB), "NVLSTree/Simple, 32 SMs");
}

/// All-reduce of 1 GiB. 8 B200s: NVLS at 8 channels x 80 GB/s x 5/6 = 533.33 GB/s after the 10 us
/// launch and 25 us of latency: 10 + 25 + 2013.27 = 2048.27 us (the NVLink flows, 9/8 GiB at
/// 0.8 x 900 = 720 GB/s = 1677.7 us, are faster), nccl-tests busbw 2^30 / 2048.27 us x 2 x 7/8 =
/// 917.38 GB/s. 16 on 2 nodes: NVLS tree at 8 x 48 x 5/6 = 320 GB/s after 10 + 25 + 2 x 14 us:
/// 63 + 3355.44 = 3418.44 us, busbw 2^30 / 3418.44 us x 2 x 15/16 = 588.94 GB/s.
#[test]
fn b200_all_reduce_bus_bandwidth() {
    let hw = b200();
    let busbw = |gpus| sweep(&hw, SweepOp::AllReduce, gpus, &[GIB]).unwrap()[0].busbw / 1e9;
    let (one, two) = (busbw(8), busbw(16));
    assert!((one - 917.38).abs() < 0.01, "{one}");
    assert!((two - 588.94).abs() < 0.01, "{two}");
}
