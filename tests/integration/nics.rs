//! NCCL's choice of NICs where GPUs share a PCIe switch (DGX A100: GPUs 2j and 2j+1 with NICs 2j
//! and 2j+1; `node.gpus_per_pcie_switch: 2`), by NCCL version (src/model/network/nics.rs).

use clustersim::config::{Document, HardwareSpec, Override};
use clustersim::ops::CollectiveOp;
use clustersim::sim::{simulate, NoSpans, SimOptions};
use clustersim::workload::builder::GraphBuilder;
use clustersim::workload::graph::{Phase, Stream, TaskKind, TaskLabel};

const GIB: u64 = 1 << 30;
const LABEL: TaskLabel = TaskLabel {
    phase: Phase::Other,
    chunk: 0,
    layer: u16::MAX,
    microbatch: u32::MAX,
};

fn hardware(sets: &[&str]) -> HardwareSpec {
    let mut doc = Document::parse("dgx-a100", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
    for s in ["hardware.network.algorithm=ring", "hardware.nodes=2"]
        .iter()
        .chain(sets)
    {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

/// Seconds to run 1 GiB all-reduces over each group at once (each group on its own ranks).
fn all_reduces(hw: &HardwareSpec, groups: &[&[u32]]) -> f64 {
    let mut g = GraphBuilder::new(16);
    for ranks in groups {
        let group = g.group(ranks.to_vec());
        let c = g.collective(CollectiveOp::AllReduce, group, GIB);
        for &r in *ranks {
            g.task(r, Stream::DataParallel, TaskKind::Collective(c), LABEL);
        }
    }
    let run = simulate(&g.finish(), hw, SimOptions { seed: 1 }, &mut NoSpans).unwrap();
    run.makespan.as_secs_f64()
}

/// Two rings of one GPU per node, as the data-parallel groups of GPUs 0 and 1 are when tensor
/// parallelism is 8: GPU 0 of nodes 0 and 1, and GPU 1 of nodes 0 and 1. A 2-rank ring sends
/// 2(n-1)/n S = S through one NIC each way. NCCL 2.8 takes NICs in index order, so both rings use
/// NIC 0 of each node, which then carries two flows: each gets 24/2 GB/s and the pair takes twice
/// as long as one ring alone (S / 12 GB/s = 89 ms against 45 ms; the latency, about 0.1 ms, is the
/// same in both). NCCL 2.9.6 on (`version: "2.10"`) rotates the NICs by the first GPU's device
/// number, so GPU 1's ring takes NIC 1 and the pair runs as fast as one ring.
#[test]
fn nccl_2_8_puts_the_one_gpu_rings_of_a_switch_on_one_nic() {
    for (version, expected) in [("2.8", 2.0), ("2.10", 1.0)] {
        let hw = hardware(&[&format!("hardware.network.nccl.version=\"{version}\"")]);
        let alone = all_reduces(&hw, &[&[0, 8]]);
        let pair = all_reduces(&hw, &[&[0, 8], &[1, 9]]);
        let latency = 2e-4;
        assert!(
            (pair / alone - expected).abs() < latency / alone * expected,
            "NCCL {version}: {alone} s alone, {pair} s as a pair"
        );
    }
    // a GPU per switch: every ring on its own rail whatever the version
    let rails = hardware(&["hardware.node.gpus_per_pcie_switch=1"]);
    let (alone, pair) = (
        all_reduces(&rails, &[&[0, 8]]),
        all_reduces(&rails, &[&[0, 8], &[1, 9]]),
    );
    assert!((pair / alone - 1.0).abs() < 1e-9, "{alone} -> {pair}");
}

/// Rings of four GPUs per node (tensor parallelism 2: GPUs 0, 2, 4, 6 and 1, 3, 5, 7): both take
/// NICs 0, 2, 4, 6 under NCCL 2.8, so NICs 1, 3, 5, 7 idle and the pair takes twice one ring's time.
#[test]
fn nccl_2_8_leaves_half_the_nics_idle_for_tensor_parallel_2_data_parallel_rings() {
    let hw = hardware(&[]);
    let even: Vec<u32> = [0, 2, 4, 6].iter().flat_map(|&g| [g, g + 8]).collect();
    let odd: Vec<u32> = even.iter().map(|g| g + 1).collect();
    let alone = all_reduces(&hw, &[&even]);
    let pair = all_reduces(&hw, &[&even, &odd]);
    assert!((pair / alone - 2.0).abs() < 0.01, "{alone} -> {pair}");
}

/// A send has no graph: NCCL hands out the GPU's closest NICs round robin by channel, so 1 GiB
/// from GPU 0 to GPU 8 spreads over NICs 0 and 1 of both nodes and moves at 2 x 24 GB/s: half the
/// time of one NIC (S / 48 GB/s = 22.4 ms against 44.7 ms, plus the same 20 us of latency).
#[test]
fn a_send_spreads_over_both_nics_of_its_switch() {
    let send = |hw: &HardwareSpec| {
        let mut g = GraphBuilder::new(16);
        let x = g.transfer(0, 8, GIB);
        g.task(0, Stream::PipelineSend, TaskKind::Send(x), LABEL);
        g.task(8, Stream::Compute, TaskKind::Recv(x), LABEL);
        simulate(&g.finish(), hw, SimOptions { seed: 1 }, &mut NoSpans)
            .unwrap()
            .makespan
            .as_secs_f64()
    };
    let (shared, rail) = (
        send(&hardware(&[])),
        send(&hardware(&["hardware.node.gpus_per_pcie_switch=1"])),
    );
    let nic = 200e9 / 8.0 * 0.96;
    let latency = rail - GIB as f64 / nic;
    assert!(latency > 0.0 && latency < 1e-4, "{latency}");
    assert!(
        (shared - (GIB as f64 / (2.0 * nic) + latency)).abs() < 1e-6,
        "{shared} vs {rail}"
    );
}

#[test]
fn gpus_per_pcie_switch_must_divide_the_node() {
    let out = super::common::expect_input_error(
        &[(
            "hw.yaml",
            &clustersim::config::builtin_hardware("dgx-a100")
                .unwrap()
                .replace("gpus_per_pcie_switch: 2", "gpus_per_pcie_switch: 3"),
        )],
        &["run", "--hardware", "hw.yaml", "--no-output"],
    );
    insta::assert_snapshot!(out);
}

/// Before PXN (NCCL 2.12) a ring leaves each node from its last GPU there; when no other member sits
/// behind the NIC's PCIe switch (four GPUs per node, each on its own switch) that GPU sends through
/// the CPU, without GPUDirect RDMA, at `node.nic_through_cpu` (16 GB/s on a DGX A100) per NIC.
/// Two such rings (tensor parallelism 2) share NICs 0, 2, 4, 6: each channel's exit gets 16 / 2 = 8
/// GB/s where the NIC itself would give it 25 x 0.96 / 2 = 12, so the pair takes 1.5x as long as
/// without that path (each channel: 2(n-1)/n S / C = 1.75 x 1 GiB / 4 = 470 MB, 58.7 ms against
/// 39.1 ms; the same ~0.1 ms latency in both). Rings of a whole node (a member beside every
/// NIC) and of one GPU per node (its own NIC) leave by GPUDirect RDMA either way, and NCCL 2.21's
/// PXN never goes through the CPU.
#[test]
fn before_pxn_rings_of_gpus_on_separate_switches_leave_through_the_cpu() {
    let through = hardware(&[]);
    let direct = hardware(&["hardware.node.nic_through_cpu=~"]);
    let even: Vec<u32> = [0, 2, 4, 6].iter().flat_map(|&g| [g, g + 8]).collect();
    let odd: Vec<u32> = even.iter().map(|g| g + 1).collect();
    let (slow, fast) = (
        all_reduces(&through, &[&even, &odd]),
        all_reduces(&direct, &[&even, &odd]),
    );
    let bytes = 1.75 * GIB as f64 / 4.0;
    let latency = fast - bytes / (24e9 / 2.0);
    assert!(latency > 0.0 && latency < 2e-4, "{latency}");
    assert!((slow - (bytes / 8e9 + latency)).abs() < 1e-5, "{slow} vs {fast}");
    let whole: Vec<u32> = (0..16).collect();
    for groups in [vec![whole], vec![vec![0, 8], vec![1, 9]]] {
        let groups: Vec<&[u32]> = groups.iter().map(Vec::as_slice).collect();
        assert_eq!(all_reduces(&through, &groups), all_reduces(&direct, &groups));
    }
    let pxn = hardware(&["hardware.network.nccl.version=\"2.21\""]);
    let pxn_direct = hardware(&[
        "hardware.network.nccl.version=\"2.21\"",
        "hardware.node.nic_through_cpu=~",
    ]);
    assert_eq!(
        all_reduces(&pxn, &[&even, &odd]),
        all_reduces(&pxn_direct, &[&even, &odd])
    );
}

/// `node.nic_through_cpu` is a bandwidth in range, named when it is not.
#[test]
fn nic_through_cpu_out_of_range_names_the_field() {
    for value in ["0 GB/s", "2 PB/s"] {
        let out = super::common::expect_input_error(
            &[],
            &[
                "run",
                "--no-output",
                "--set",
                &format!("hardware.node.nic_through_cpu={value}"),
            ],
        );
        assert!(out.contains("node.nic_through_cpu"), "{value}: {out}");
    }
}

/// The analytic model (`plan` ranks with it) prices the same ring at the path's rate, with the
/// group of GPUs 1, 3, 5, 7 reducing at the same time on the same NICs (NCCL 2.8 gives both NICs
/// 0, 2, 4, 6): four channels (4 GPUs x 1 NIC each) at min(24, 16) / 2 GB/s instead of 24 / 2, so the
/// bandwidth time of a 1 GiB all-reduce over GPUs 0, 2, 4, 6 of two nodes grows 1.5x: 2(n-1)/n S
/// / (4 x 8 GB/s) = 58.7 ms against 39.1 ms, the latency the same. Whole-node rings keep their time.
#[test]
fn the_analytic_model_prices_the_cpu_path_too() {
    let with = hardware(&["hardware.network.model=analytic"]);
    let without = hardware(&["hardware.network.model=analytic", "hardware.node.nic_through_cpu=~"]);
    let even: Vec<u32> = [0, 2, 4, 6].iter().flat_map(|&g| [g, g + 8]).collect();
    let (slow, fast) = (all_reduces(&with, &[&even]), all_reduces(&without, &[&even]));
    let bytes = 1.75 * GIB as f64;
    assert!(
        ((slow - fast) - (bytes / 32e9 - bytes / 48e9)).abs() < 1e-5,
        "{slow} vs {fast}"
    );
    let whole: Vec<u32> = (0..16).collect();
    assert_eq!(all_reduces(&with, &[&whole]), all_reduces(&without, &[&whole]));
}
