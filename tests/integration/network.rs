//! The network: calibration against nccl-tests on DGX A100, contention, and what-ifs.

use super::common::{expect_input_error, report};
use clustersim::config::{Document, HardwareSpec, Override};
use clustersim::ops::CollectiveOp;
use clustersim::sim::{simulate, SimOptions, SpanSink};
use clustersim::studies::collective::{sweep, SweepOp};
use clustersim::units::SimTime;
use clustersim::workload::builder::GraphBuilder;
use clustersim::workload::graph::{Phase, Stream, TaskKind, TaskLabel};
use clustersim::workload::TaskId;

const GIB: u64 = 1 << 30;

fn hardware(sets: &[&str]) -> HardwareSpec {
    let mut doc = Document::parse("dgx-a100", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
    for s in sets {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn busbw(hw: &HardwareSpec, gpus: u32, bytes: u64) -> f64 {
    sweep(hw, SweepOp::AllReduce, gpus, &[bytes]).unwrap()[0].busbw / 1e9
}

/// nccl-tests on DGX A100: about 230 GB/s all-reduce bus bandwidth inside a node at large sizes.
#[test]
fn intra_node_allreduce_reaches_230() {
    let hw = hardware(&[]);
    for bytes in [GIB, 2 * GIB, 8 * GIB] {
        let bw = busbw(&hw, 8, bytes);
        assert!((bw / 230.0 - 1.0).abs() < 0.10, "{bytes}: {bw}");
    }
}

/// nccl-tests on DGX A100 with 8 HDR NICs: 192 GB/s all-reduce bus bandwidth across nodes
/// (8 NICs x 24 GB/s). NCCL 2.8's graph across nodes has a channel per NIC at 24 GB/s, so its model
/// gives rings 8 x 24 = 192 GB/s and trees beyond 2 nodes min(0.92 x 192, 8 x 16) = 128 GB/s
/// (perChMaxTreeBw): the tuner runs rings, whose Simple latency across nodes NCCL's model inflates
/// x 1.9 ("plateau effect"): (8.4 + 224 x 3.4 + 30 x 9.6) x 1.9 = 2.0 ms on 16 nodes against 11.1 ms of
/// transfer for 1 GiB (162 GB/s). So: within 10% of 192 from 1 GiB up to 8 nodes and at 8 GiB up to
/// 64 nodes; at 64 nodes and 1 GiB the ring's 8.1 ms latency leaves both algorithms near 120 GB/s and
/// the tuner takes the tree (17.4 ms against 18.1 ms).
#[test]
fn inter_node_allreduce_reaches_192() {
    let auto = hardware(&[]);
    for nodes in [2u32, 4, 8, 16, 32, 64] {
        for bytes in [GIB, 2 * GIB, 8 * GIB] {
            if nodes > 8 && bytes < 8 * GIB {
                continue;
            }
            let bw = busbw(&auto, nodes * 8, bytes);
            assert!((bw / 192.0 - 1.0).abs() < 0.10, "{nodes} nodes, {bytes} B: {bw}");
        }
    }
    let at_16_nodes = busbw(&auto, 128, GIB);
    assert!((at_16_nodes / 162.4 - 1.0).abs() < 0.01, "{at_16_nodes}");
    let ring = busbw(&hardware(&["hardware.network.algorithm=ring"]), 512, GIB);
    let tree = busbw(&auto, 512, GIB);
    assert!(
        ring < 0.65 * 192.0 && tree > ring,
        "64 nodes, 1 GiB: ring {ring}, auto {tree}"
    );
}

/// Small messages are latency-bound. 8 bytes over 8 GPUs: NCCL's ring/LL, 10 us launch + 3.6 us +
/// 14 NVLink steps x 0.47 us = 20.18 us. Over 2 nodes (16 GPUs) its tree/LL wins: 10 + 4.4 + 2 x
/// (7 NVLink steps x 0.52 x 1.8 (LL across nodes) + 1 network step x 5.0) = 37.504 us, against the
/// ring's 10 + 3.6 + 28 x 0.846 + 2 x 2.7 = 42.69 us.
#[test]
fn small_messages_take_microseconds() {
    let hw = hardware(&[]);
    let t8 = sweep(&hw, SweepOp::AllReduce, 8, &[8]).unwrap()[0].time_s;
    assert!((t8 - 20.18e-6).abs() < 1e-8, "{t8}");
    let t16 = sweep(&hw, SweepOp::AllReduce, 16, &[8]).unwrap()[0].time_s;
    assert!((t16 - 37.504e-6).abs() < 1e-8, "{t16}");
}

/// Without contention the flow model and the analytic model agree.
#[test]
fn flow_model_agrees_with_analytic_without_contention() {
    for op in [
        SweepOp::AllReduce,
        SweepOp::AllGather,
        SweepOp::ReduceScatter,
        SweepOp::Broadcast,
    ] {
        for gpus in [8u32, 16, 64] {
            let flow = sweep(&hardware(&["hardware.network.algorithm=ring"]), op, gpus, &[GIB]).unwrap()[0].time_s;
            let analytic = sweep(
                &hardware(&["hardware.network.model=analytic", "hardware.network.algorithm=ring"]),
                op,
                gpus,
                &[GIB],
            )
            .unwrap()[0]
                .time_s;
            assert!(
                (flow / analytic - 1.0).abs() < 0.01,
                "{op:?} {gpus}: flow {flow} analytic {analytic}"
            );
        }
    }
}

/// End time of every task.
#[derive(Default)]
struct Ends(Vec<(TaskId, SimTime)>);
impl SpanSink for Ends {
    fn wants(&self, _rank: u32) -> bool {
        true
    }
    fn span(&mut self, task: TaskId, _start: SimTime, end: SimTime) {
        self.0.push((task, end));
    }
}

const LABEL: TaskLabel = TaskLabel {
    phase: Phase::Other,
    chunk: 0,
    layer: u16::MAX,
    microbatch: u32::MAX,
};

/// Two transfers through the same NIC get half its bandwidth each: GPU 0 (rail 0) sends 1 GiB to
/// GPU 8 and GPU 16 at once; both leave through NIC 0 of node 0 (24 GB/s), so each takes
/// 2^30 / 12 GB/s = 89.5 ms instead of 2^30 / 24 GB/s = 44.7 ms, plus NCCL's send/receive latency
/// (10 us launch + one Simple network step of 9.6 us).
#[test]
fn two_flows_on_one_link_get_half_each() {
    // one NIC per GPU (on DGX A100's shared PCIe switches a transfer spreads over both NICs)
    let hw = hardware(&["hardware.node.gpus_per_pcie_switch=1"]);
    let time = |dsts: &[u32]| {
        let mut g = GraphBuilder::new(24);
        // each send on its own stream of GPU 0, so that they run at the same time
        for (&d, stream) in dsts.iter().zip([Stream::PipelineSend, Stream::DataParallel]) {
            let x = g.transfer(0, d, GIB);
            g.task(0, stream, TaskKind::Send(x), LABEL);
            g.task(d, Stream::Compute, TaskKind::Recv(x), LABEL);
        }
        simulate(&g.finish(), &hw, SimOptions { seed: 1 }, &mut clustersim::sim::NoSpans)
            .unwrap()
            .makespan
            .as_secs_f64()
    };
    let alone = time(&[8]);
    let shared = time(&[8, 16]);
    let nic = 200e9 / 8.0 * 0.96;
    assert!((alone - (GIB as f64 / nic + 19.6e-6)).abs() < 1e-6, "{alone}");
    assert!((shared - (GIB as f64 / (nic / 2.0) + 19.6e-6)).abs() < 1e-6, "{shared}");
}

/// A communication priced in closed form (seen alone before, its links free) still shares its
/// links with a newcomer exactly as a placed flow would. GPU 0 sends 1 GiB to GPU 8 three times in
/// a row: the first is solved and remembered, the second teaches the memo its rate alone, the third
/// runs in closed form. Half-way through the third (D / 2 after it starts, D = S / C = 2^30 /
/// 24 GB/s), GPU 0 starts a 1 GiB send to GPU 16 through the same NIC. From then both get C / 2:
/// the third send's last S / 2 takes D, so it drains at t3 + 3D / 2; by then the newcomer has moved
/// S / 2 and finishes the rest alone in D / 2, draining at t3 + 2D. With t3 = 2 (D + L) (each send
/// ends L = 19.6 us after it drains), the last receive ends at 4D + 3L.
#[test]
fn a_closed_form_transfer_shares_its_nic_with_a_newcomer() {
    let hw = hardware(&["hardware.node.gpus_per_pcie_switch=1"]);
    let nic = 200e9 / 8.0 * 0.96;
    let (d, l) = (GIB as f64 / nic, 19.6e-6);
    let mut g = GraphBuilder::new(24);
    for _ in 0..3 {
        let x = g.transfer(0, 8, GIB);
        g.task(0, Stream::PipelineSend, TaskKind::Send(x), LABEL);
        g.task(8, Stream::Compute, TaskKind::Recv(x), LABEL);
    }
    let wait = g.delay(clustersim::units::SimDuration::from_secs_f64(2.0 * (d + l) + d / 2.0));
    g.task(0, Stream::DataParallel, TaskKind::Delay(wait), LABEL);
    let x = g.transfer(0, 16, GIB);
    g.task(0, Stream::DataParallel, TaskKind::Send(x), LABEL);
    g.task(16, Stream::Compute, TaskKind::Recv(x), LABEL);
    let end = simulate(&g.finish(), &hw, SimOptions { seed: 1 }, &mut clustersim::sim::NoSpans)
        .unwrap()
        .makespan
        .as_secs_f64();
    assert!(
        (end - (4.0 * d + 3.0 * l)).abs() < 1e-6,
        "{end} vs {}",
        4.0 * d + 3.0 * l
    );
}

/// A 2:1 oversubscribed tree halves cross-leaf all-reduce bus bandwidth. Both fabrics put one node
/// on each leaf (radix 16 at 1:1 and radix 12 at 2:1 both give 8 NIC ports per leaf), so each ring
/// channel crosses a leaf uplink between consecutive nodes: 8 flows per uplink that would each get a
/// NIC's 24 GB/s (192 GB/s; the 1:1 uplink carries 8 x 24) but the 2:1 uplink carries 96 GB/s.
#[test]
fn oversubscription_halves_cross_leaf_busbw() {
    let fabric = |radix: &str, over: &str| {
        hardware(&[
            "hardware.network.algorithm=ring",
            "hardware.network.topology.kind=fat-tree",
            radix,
            over,
            "hardware.nodes=8",
        ])
    };
    let full = busbw(
        &fabric(
            "hardware.network.topology.radix=16",
            "hardware.network.topology.oversubscription=1",
        ),
        64,
        8 * GIB,
    );
    let half = busbw(
        &fabric(
            "hardware.network.topology.radix=12",
            "hardware.network.topology.oversubscription=2",
        ),
        64,
        8 * GIB,
    );
    assert!((full / 192.0 - 1.0).abs() < 0.03, "{full}");
    assert!((half / full - 0.5).abs() < 0.02, "{half} vs {full}");
}

/// A data-parallel all-reduce on rail 0 (GPU 0 of nodes 0-3) and a pipeline send GPU 0 → GPU 8
/// (also rail 0) share NIC 0 of node 0 and NIC 0 of node 1: run together, both finish later.
#[test]
fn data_parallel_allreduce_and_pipeline_send_slow_each_other() {
    let hw = hardware(&["hardware.network.algorithm=ring"]);
    let run = |allreduce: bool, send: bool| {
        let mut g = GraphBuilder::new(32);
        if allreduce {
            let group = g.group(vec![0, 8, 16, 24]);
            let c = g.collective(CollectiveOp::AllReduce, group, GIB);
            for r in [0, 8, 16, 24] {
                g.task(r, Stream::DataParallel, TaskKind::Collective(c), LABEL);
            }
        }
        if send {
            let x = g.transfer(0, 8, GIB);
            g.task(0, Stream::PipelineSend, TaskKind::Send(x), LABEL);
            g.task(8, Stream::Compute, TaskKind::Recv(x), LABEL);
        }
        let graph = g.finish();
        let mut ends = Ends::default();
        simulate(&graph, &hw, SimOptions { seed: 1 }, &mut ends).unwrap();
        let end_on = |stream: usize| {
            let range = graph.stream(0, stream);
            ends.0
                .iter()
                .filter(|(t, _)| range.contains(t))
                .map(|(_, e)| e.as_secs_f64())
                .next()
        };
        (
            end_on(Stream::DataParallel as usize),
            end_on(Stream::PipelineSend as usize),
        )
    };
    let (ar_alone, _) = run(true, false);
    let (_, send_alone) = run(false, true);
    let (ar_shared, send_shared) = run(true, true);
    let (ar_alone, send_alone) = (ar_alone.unwrap(), send_alone.unwrap());
    let (ar_shared, send_shared) = (ar_shared.unwrap(), send_shared.unwrap());
    assert!(ar_shared > ar_alone * 1.2, "all-reduce {ar_alone} -> {ar_shared}");
    assert!(send_shared > send_alone * 1.2, "send {send_alone} -> {send_shared}");
}

/// Halving InfiniBand bandwidth hurts tensor parallelism across nodes (t = 16: every layer's
/// all-reduces cross InfiniBand) more than inside a node (t = 8: only pipeline and data-parallel
/// traffic crosses it). With full NICs a 15.7 MB all-reduce over 2 nodes runs at NCCL's ring/LL128
/// rate, min(0.92 x 8 x 24, 16.9 x 8) = 135 GB/s of bus bandwidth, below the NICs' 192: 2 x 15/16 x
/// S / 135 GB/s = 218 us plus latency. With the NICs halved the links set the pace, 96 GB/s: 307 us.
/// The tuner runs that ring in both cases, so `auto` and `ring` agree. Measured: t 16 +11.1%, t 8
/// +4.8% (at t 16 each rank's 2 score matrices also take Megatron's unfused fp32 softmax, which
/// adds compute beside the communication).
#[test]
fn halving_infiniband_hurts_cross_node_tensor_parallelism_most() {
    let slowdown = |t: u32, d: u32, algorithm: &str| {
        let split = vec![
            format!("workload.parallel.tensor={t}"),
            "workload.parallel.pipeline=2".to_string(),
            format!("workload.parallel.data={d}"),
            "workload.batch.global=64".to_string(),
            format!("hardware.network.algorithm={algorithm}"),
        ];
        // one NIC per GPU: NCCL 2.8's choice of NICs on DGX A100's shared PCIe switches puts the
        // t = 8 data-parallel rings of GPUs 2j and 2j+1 on one NIC (tests/integration/nics.rs),
        // which makes them NIC-bound too and blurs the comparison this test is about
        // (and, with a GPU per switch, no whole-node ring leaves through the CPU: nics.rs)
        let mut split = split;
        split.push("hardware.node.gpus_per_pcie_switch=1".to_string());
        split.push("hardware.node.nic_through_cpu=~".to_string());
        let mut halved = split.clone();
        halved.push("hardware.node.nic.bandwidth=100 Gb/s".into());
        report("dgx-a100", "gpt-5.9b", &halved).iteration_time_s
            / report("dgx-a100", "gpt-5.9b", &split).iteration_time_s
            - 1.0
    };
    let (t16, t8) = (slowdown(16, 2, "ring"), slowdown(8, 4, "ring"));
    let (a16, a8) = (slowdown(16, 2, "auto"), slowdown(8, 4, "auto"));
    assert!(t16 > 0.10 && t16 > 2.0 * t8, "ring: t16 +{t16}, t8 +{t8}");
    assert!(
        (a16 - t16).abs() < 1e-3 && (a8 - t8).abs() < 1e-3,
        "auto: t16 +{a16}, t8 +{a8}"
    );
}

fn fails(args: &[&str], yaml_edit: Option<(&str, &str)>) -> String {
    match yaml_edit {
        Some((from, to)) => {
            let hw = include_str!("../../hardware/dgx-a100.yaml").replace(from, to);
            expect_input_error(&[("hw.yaml", &hw)], &[args, &["--hardware", "hw.yaml"][..]].concat())
        }
        None => expect_input_error(&[], args),
    }
}

#[test]
fn radix_too_small_for_the_node_count() {
    insta::assert_snapshot!(fails(
        &["run", "--no-output"],
        Some(("    levels: 3 ", "    levels: 2 "))
    ));
}

#[test]
fn topology_link_without_bandwidth() {
    insta::assert_snapshot!(fails(
        &["run", "--no-output"],
        Some(("      bandwidth: 200 Gb/s      # HDR port\n", ""))
    ));
}

#[test]
fn unknown_topology_kind() {
    insta::assert_snapshot!(fails(
        &["run", "--no-output", "--set", "hardware.network.topology.kind=torus"],
        None
    ));
}

#[test]
fn collective_on_more_gpus_than_the_machine_has() {
    insta::assert_snapshot!(fails(&["collective", "--gpus", "4096", "--no-output"], None));
}

/// A 98 304-GPU DGX-H100 fabric (12 288 nodes x 8 NDR NICs, rail-optimized, radix-64 switches) needs
/// 12 288 / 32 x 8 = 3072 leaves: more than a 3-level fat tree joins (64^2 / 2 = 2048), within a
/// 4-level one (64^3 / 4 = 65 536). With four levels a 1 GiB all-reduce over every GPU runs (flow
/// model, every rank) and reaches the NICs' 8 x 48 GB/s less its latency.
#[test]
fn four_level_fabric_for_100k_gpus() {
    let err = expect_input_error(
        &[],
        &[
            "collective",
            "--hardware",
            "dgx-h100",
            "--set",
            "hardware.nodes=12288",
            "--no-output",
        ],
    );
    assert!(err.contains("joins at most 2048"), "{err}");
    let mut doc = Document::parse("dgx-h100", clustersim::config::builtin_hardware("dgx-h100").unwrap()).unwrap();
    for s in ["hardware.nodes=12288", "hardware.network.topology.levels=4"] {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    let hw = HardwareSpec::from_document(&doc).unwrap();
    let bw = busbw(&hw, 98_304, GIB);
    assert!(bw > 300.0 && bw < 8.0 * 48.0, "{bw}");
}

/// A flow network without a `topology` section (NICs joined by an ideal fabric) runs: it used to
/// panic summing each leaf's NICs when there were no leaves (found by the fuzzer).
#[test]
fn the_flow_model_runs_without_a_topology() {
    let sets = ["hardware.network.topology=~".to_string()];
    let r = report("dgx-a100", "gpt-5.9b", &sets);
    let with = report("dgx-a100", "gpt-5.9b", &[]);
    // the default fabric never binds (full fat tree), so the same iteration
    assert!(
        (r.iteration_time_s / with.iteration_time_s - 1.0).abs() < 1e-9,
        "{} vs {}",
        r.iteration_time_s,
        with.iteration_time_s
    );
}
