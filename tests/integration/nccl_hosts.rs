//! NCCL's tables by GPU generation and host CPU (`gpu.architecture`, `node.cpu`): an NCCL release
//! computes with the rows of the machine it runs on, and refuses GPUs it has no kernels for.

use super::common::expect_input_error;
use clustersim::config::{Document, GpuArchitecture, HardwareSpec, Override};
use clustersim::studies::collective::{sweep, SweepOp};

fn hardware(preset: &str, sets: &[&str]) -> HardwareSpec {
    let mut doc = Document::parse(preset, clustersim::config::builtin_hardware(preset).unwrap()).unwrap();
    for s in sets {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn all_reduce_s(hw: &HardwareSpec, gpus: u32, bytes: u64) -> f64 {
    sweep(hw, SweepOp::AllReduce, gpus, &[bytes]).unwrap()[0].time_s
}

const V2_21: &str = "hardware.network.nccl.version=\"2.21\"";

/// NCCL 2.21 on one DGX A100 (12 channels x 21 GB/s = 252 GB/s of bus bandwidth), 1 MiB
/// all-reduce over 8 GPUs: ring LL wins (latency 10 us launch + 6.6 + 14 steps x 0.6 = 25 us;
/// LL128's 10 + 14 + 14 x 1.9 = 50.6 us is higher before any data moves) at min(llMaxBw, 252 / 2).
/// On an A100 NCCL reads the Ampere row, 87.7 GB/s: 25 us + 1 MiB x 14/8 / 87.7 GB/s = 45.92 us.
/// Told it is a Hopper (its row 141: min(141, 126) = 126 GB/s) the same machine takes
/// 25 + 14.56 = 39.56 us, which is what the 2.21 table gave every GPU before it read the rows.
#[test]
fn an_a100_takes_ampere_rows() {
    let a100 = hardware("dgx-a100", &[V2_21]);
    let as_hopper = hardware("dgx-a100", &[V2_21, "hardware.gpu.architecture=hopper"]);
    let mib = 1 << 20;
    let expect = |ll_bw: f64| 25e-6 + mib as f64 * 14.0 / 8.0 / (ll_bw * 1e9);
    for (hw, bw) in [(&a100, 87.7), (&as_hopper, 126.0)] {
        let t = all_reduce_s(hw, 8, mib);
        assert!((t / expect(bw) - 1.0).abs() < 0.01, "{t} s against {} s", expect(bw));
    }
}

/// Across nodes NCCL 2.21 adds a network post overhead to every NVLink step of a ring, 1 us on
/// Intel hosts and 2 us on AMD ones (`getNetOverhead`). A ring of 16 GPUs on 2 DGX H100 nodes
/// (`network.algorithm: ring`), 8 KiB all-reduce, LL: 2(n-1) = 30 steps of which 2N = 4 cross the
/// network (2.21), so 26 NVLink steps at max(0.6, overhead): 26 us more on AMD. The LL cap across
/// 2 nodes is also the CPU's (Intel 39, AMD 22.5 GB/s, under the 8 x 48 / 2 of the graph): the
/// 8 KiB x 30/16 moved per rank adds 0.39 us against 0.68 us. So AMD - Intel = 26.3 us.
#[test]
fn an_amd_host_pays_nccl_2_21_network_overhead() {
    let sets = ["hardware.nodes=2", "hardware.network.algorithm=ring"];
    let intel = hardware("dgx-h100", &sets);
    let amd = hardware("dgx-h100", &[sets[0], sets[1], "hardware.node.cpu=amd"]);
    let bytes = 8 << 10;
    let data = |bw: f64| bytes as f64 * 30.0 / 16.0 / (bw * 1e9);
    let expect = 26e-6 + data(22.5) - data(39.0);
    let diff = all_reduce_s(&amd, 16, bytes) - all_reduce_s(&intel, 16, bytes);
    assert!((diff - expect).abs() < 0.5e-6, "{diff} s against {expect} s");
}

/// A release has no kernels for GPUs newer than itself: NCCL 2.8 on an H100 (Hopper needs 2.15)
/// and 2.21 on a B200 (Blackwell needs 2.25) exit 2 naming the version and where the GPU's
/// generation comes from; on a machine mixing A100 and H100 nodes the H100 group is named.
#[test]
fn an_nccl_older_than_the_gpu_is_refused() {
    let run = |hw: &str, set: &str| expect_input_error(&[], &["run", "--no-output", "--hardware", hw, "--set", set]);
    insta::assert_snapshot!(run("dgx-h100", "hardware.network.nccl.version=\"2.8\""));
    insta::assert_snapshot!(run("dgx-b200", V2_21));
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "run",
            "--no-output",
            "--set",
            "hardware.nodes=2",
            "--set",
            "hardware.node_groups=[{count: 1, gpu: dgx-h100}]",
        ]
    ));
    insta::assert_snapshot!(run("dgx-a100", "hardware.gpu.architecture=volta"));
}

/// A GPU's generation comes from `gpu.architecture`, else from the marketing name.
#[test]
fn the_generation_is_read_from_the_model_name() {
    for (name, arch) in [
        ("A100-SXM4-80GB", Some(GpuArchitecture::Ampere)),
        ("NVIDIA A800", Some(GpuArchitecture::Ampere)),
        ("H100-SXM5-80GB", Some(GpuArchitecture::Hopper)),
        ("GH200", Some(GpuArchitecture::Hopper)),
        ("h200", Some(GpuArchitecture::Hopper)),
        ("B200-SXM-180GB", Some(GpuArchitecture::Blackwell)),
        ("NVIDIA GB200", Some(GpuArchitecture::Blackwell)),
        ("NVIDIA-H100", Some(GpuArchitecture::Hopper)),
        ("HGX-H100", Some(GpuArchitecture::Hopper)),
        ("DGX A100", Some(GpuArchitecture::Ampere)),
        ("nvidia_b200", Some(GpuArchitecture::Blackwell)),
        ("ideal-gpu", None),
        ("AMD MI300X", None),
        ("H", None),
        ("", None),
    ] {
        assert_eq!(GpuArchitecture::from_model_name(name), arch, "{name}");
    }
    // a name NCCL's tables cannot place runs with the table of the release as written (DGX A100
    // rows for 2.8): the preset's own times
    let named = hardware(
        "dgx-a100",
        &["hardware.gpu.model=my-gpu", "hardware.gpu.architecture=~"],
    );
    let preset = hardware("dgx-a100", &[]);
    for bytes in [1 << 20, 1 << 30] {
        assert_eq!(all_reduce_s(&named, 8, bytes), all_reduce_s(&preset, 8, bytes));
    }
}

/// NCCL runs LL128 and NVLS only where a communicator's GPUs share a compute capability: an H100
/// node beside an H200 node (both 9.0) keeps them, so a 16-GPU all-reduce runs as on two H100
/// nodes (tree LL128 at 256 KiB, NVLS tree at 1 GiB: the same times), where an A100 node beside an
/// H100 one loses LL128.
#[test]
fn gpus_of_one_generation_are_not_mixed() {
    let sets = ["hardware.nodes=2"];
    let h100 = hardware("dgx-h100", &sets);
    let with_h200 = hardware(
        "dgx-h100",
        &[sets[0], "hardware.node_groups=[{count: 1, gpu: dgx-h200}]"],
    );
    for bytes in [256 << 10, 1 << 30] {
        assert_eq!(
            all_reduce_s(&h100, 16, bytes),
            all_reduce_s(&with_h200, 16, bytes),
            "{bytes} B"
        );
    }
    let with_h100 = hardware(
        "dgx-a100",
        &[sets[0], "hardware.node_groups=[{count: 1, gpu: dgx-h100}]", V2_21],
    );
    let a100 = hardware("dgx-a100", &[sets[0], V2_21]);
    let (mixed, alike) = (all_reduce_s(&with_h100, 16, 4 << 20), all_reduce_s(&a100, 16, 4 << 20));
    assert!(mixed > alike, "LL128 off: {mixed} s against {alike} s at 4 MiB");
}
