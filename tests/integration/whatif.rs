//! What-if studies: slow GPUs, noise, degraded links.

use crate::common::config;
use clustersim::studies::run::{run, RunOptions};

fn run_with(hardware: &str, sets: &[&str], seed: u64) -> clustersim::report::Report {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = config(hardware, "gpt-5.9b", &sets);
    let opts = RunOptions {
        seed,
        ..RunOptions::metrics_only(false)
    };
    run(&cfg, &opts).unwrap().report
}

/// A data-parallel-only job of 8 ranks (one node, batch 8, microbatch 1: 1 microbatch each), no
/// gradient overlap, no host model, so every microbatch's loss all-reduce and the gradient
/// all-reduce wait for the slowest rank.
const DATA_PARALLEL: [&str; 9] = [
    "workload.model.layers=4",
    "workload.parallel.tensor=1",
    "workload.parallel.pipeline=1",
    "workload.parallel.data=8",
    "workload.batch.global=8",
    "workload.batch.micro=1",
    "workload.data_parallel.overlap=false",
    "hardware.node.host_dispatch=0us",
    "hardware.network.model=flow",
];

#[test]
fn a_gpu_at_half_speed_sets_a_data_parallel_iteration() {
    let base = run_with("dgx-a100", &DATA_PARALLEL, 1);
    let mut sets = DATA_PARALLEL.to_vec();
    sets.push("hardware.gpu.slowdown=[{ranks: [3], factor: 2}]");
    let slow = run_with("dgx-a100", &sets, 1);
    // every rank computes C (the mean compute of the fast run) and then all-reduces for A (its
    // exposed communication). Rank 3 computes 2C; the others wait at the all-reduce, which starts
    // when rank 3 arrives: iteration = 2C + A
    let expected = 2.0 * base.breakdown.compute_s + base.breakdown.exposed_comm_s;
    let err = slow.iteration_time_s / expected - 1.0;
    assert!(err.abs() < 0.01, "{} vs {expected} ({err:+.4})", slow.iteration_time_s);
    // the others waited for rank 3, and the report says so
    assert_eq!(slow.sync_wait_caused_by[0].rank, 3);
    // all the synchronisation wait of the run (mean per GPU x 8 GPUs) was waiting for rank 3: the
    // 7 others each waited for its compute before the loss and gradient all-reduces
    let waited = slow.sync_wait_caused_by[0].seconds;
    assert!((waited - 8.0 * slow.breakdown.sync_wait_s).abs() < 1e-6, "{waited}");
    assert!(waited > 7.0 * 0.5 * base.breakdown.compute_s, "{waited}");
}

#[test]
fn a_slow_last_stage_stretches_the_pipeline_by_its_share() {
    // Ideal machine (compute = FLOPs / peak, free communication), no embedding (vocab 0), p = 4,
    // m = 8 microbatches, 1F1B: each stage needs t = f + b per microbatch, T = (m + p - 1) t.
    // With the last stage s times slower it is the bottleneck: the first forward reaches it after
    // (p - 1) f, it then runs m s t without idling (its inputs arrive faster than it consumes them),
    // and the last backward returns through (p - 1) b: T' = (m s + p - 1) t.
    let sets = [
        "workload.model.layers=8",
        "workload.model.vocab=0",
        "workload.parallel.tensor=1",
        "workload.parallel.pipeline=4",
        "workload.parallel.data=1",
        "workload.batch.global=8",
        "workload.batch.micro=1",
        "workload.recompute=none",
    ];
    let base = run_with("ideal", &sets, 1);
    let mut slow_sets = sets.to_vec();
    slow_sets.push("hardware.gpu.slowdown=[{ranks: [3], factor: 2}]");
    let slow = run_with("ideal", &slow_sets, 1);
    let (m, p, s) = (8.0, 4.0, 2.0);
    let t = base.iteration_time_s / (m + p - 1.0);
    let expected = (m * s + p - 1.0) * t;
    assert!(
        (slow.iteration_time_s / expected - 1.0).abs() < 1e-6,
        "{} vs {expected}",
        slow.iteration_time_s
    );
}

#[test]
fn noise_follows_the_seed() {
    let sets = [
        "workload.batch.global=64",
        "hardware.gpu.jitter={distribution: lognormal, sigma: 0.05}",
    ];
    let a = run_with("dgx-a100", &sets, 7).iteration_time_s;
    assert_eq!(
        a,
        run_with("dgx-a100", &sets, 7).iteration_time_s,
        "same seed, same time"
    );
    assert_ne!(
        a,
        run_with("dgx-a100", &sets, 8).iteration_time_s,
        "another seed, another time"
    );
    let quiet = run_with("dgx-a100", &sets[..1], 7).iteration_time_s;
    assert!(a > quiet, "lognormal noise is skewed to slow: {a} vs {quiet}");
}

/// dgx-a100 with one NIC per GPU (no shared PCIe switches, so each transfer keeps to its rail), and `sets`.
fn hardware(sets: &[&str]) -> clustersim::config::HardwareSpec {
    use clustersim::config::{Document, HardwareSpec, Override};
    let mut doc = Document::parse("dgx-a100", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
    // a GPU per PCIe switch, each ring on its own NIC; and no NIC reached through the CPU, which NCCL
    // 2.8's whole-node rings would then take (no member beside the NIC: tests/integration/nics.rs)
    for s in [
        "hardware.node.gpus_per_pcie_switch=1",
        "hardware.node.nic_through_cpu=~",
    ] {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    for s in sets {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn seconds(sets: &[&str], op: clustersim::studies::collective::SweepOp, gpus: u32) -> f64 {
    clustersim::studies::collective::sweep(&hardware(sets), op, gpus, &[1 << 30]).unwrap()[0].time_s
}

#[test]
fn a_nic_at_half_bandwidth_doubles_a_transfer_that_crosses_it() {
    use clustersim::studies::collective::SweepOp;
    // 1 GiB from GPU 0 to GPU 8 (node 1, same rail and leaf): NIC 0 of node 0 up, NIC 0 of node 1
    // down; nothing else. Time = latency + S / rate; at half the NIC's rate the bandwidth term
    // doubles (the latency, a few us, is under 0.01% of the 45 ms)
    let healthy = seconds(&[], SweepOp::SendRecv, 16);
    let half = seconds(
        &["hardware.network.degraded=[{node: 0, nic: 0, factor: 0.5}]"],
        SweepOp::SendRecv,
        16,
    );
    assert!((half / healthy - 2.0).abs() < 1e-3, "{healthy} -> {half}");
    // the NIC down: the GPU's traffic leaves through NIC 1 (idle here), so the transfer keeps its speed
    let down = seconds(
        &["hardware.network.degraded=[{node: 0, nic: 0, down: true}]"],
        SweepOp::SendRecv,
        16,
    );
    assert!((down / healthy - 1.0).abs() < 1e-3, "{healthy} -> {down}");
    // rail 0 at half bandwidth on every node: both ends of the transfer are at half speed
    let rail = seconds(
        &["hardware.network.degraded=[{rail: 0, factor: 0.5}]"],
        SweepOp::SendRecv,
        16,
    );
    assert!((rail / healthy - 2.0).abs() < 1e-3, "{healthy} -> {rail}");
}

#[test]
fn a_failed_nic_doubles_the_load_of_its_neighbour_in_a_ring() {
    use clustersim::studies::collective::SweepOp;
    // all-reduce over 2 nodes: 8 ring channels, one per rail. With NIC 0 of node 0 down its
    // channel leaves through NIC 1, which then carries two channels at half speed each; the
    // collective waits for its slowest channel: twice the bandwidth time
    let healthy = seconds(&[], SweepOp::AllReduce, 16);
    let down = seconds(
        &["hardware.network.degraded=[{node: 0, nic: 0, down: true}]"],
        SweepOp::AllReduce,
        16,
    );
    assert!(down / healthy > 1.9 && down / healthy < 2.01, "{healthy} -> {down}");
}

#[test]
fn bad_what_if_input_names_the_field() {
    use clustersim::config::{Document, HardwareSpec, Override};
    let err = |set: &str| {
        let mut doc = Document::parse("dgx-a100", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
        doc.apply(&Override::parse(set).unwrap()).unwrap();
        HardwareSpec::from_document(&doc).unwrap_err().to_string()
    };
    let e = err("hardware.gpu.slowdown=[{ranks: [99999], factor: 2}]");
    assert!(
        e.contains("gpu.slowdown[0].ranks[0]") && e.contains("no such GPU"),
        "{e}"
    );
    let e = err("hardware.gpu.slowdown=[{ranks: [1], factor: 0}]");
    assert!(e.contains("gpu.slowdown[0].factor"), "{e}");
    let e = err("hardware.gpu.slowdown=[{ranks: [1], nodes: [2], factor: 2}]");
    assert!(e.contains("exactly one of"), "{e}");
    let e = err("hardware.network.degraded=[{node: 999, nic: 0, factor: 0.5}]");
    assert!(e.contains("network.degraded[0].node"), "{e}");
    let e = err("hardware.network.degraded=[{rail: 8, factor: 0.5}]");
    assert!(
        e.contains("network.degraded[0].rail") && e.contains("no such rail"),
        "{e}"
    );
    let e = err("hardware.network.degraded=[{leaf: 1, down: true}]");
    assert!(e.contains("only a NIC can be down"), "{e}");
    let all_down: Vec<String> = (0..8).map(|n| format!("{{node: 3, nic: {n}, down: true}}")).collect();
    let e = err(&format!("hardware.network.degraded=[{}]", all_down.join(", ")));
    assert!(e.contains("every NIC of node 3 is down"), "{e}");
    let e = err("hardware.network.degraded=[{leaf: 99999, factor: 0.5}]");
    assert!(
        e.contains("network.degraded[0].leaf") && e.contains("no such leaf switch"),
        "{e}"
    );
    let e = err("hardware.gpu.jitter={distribution: weird, sigma: 0.1}");
    assert!(e.contains("unknown variant `weird`") && e.contains("lognormal"), "{e}");
    let e = err("hardware.gpu.jitter={distribution: normal, sigma: 2}");
    assert!(e.contains("gpu.jitter.sigma"), "{e}");
}

/// GPT 5.9B, t8 p2 d1 on two nodes, batch 16, with `sets` and, if given, `layers_per_stage=split`.
fn with_split(sets: &[&str], split: Option<&str>) -> clustersim::report::Report {
    let owned = split.map(|s| format!("workload.parallel.layers_per_stage={s}"));
    let mut all = vec![
        "hardware.nodes=2",
        "workload.parallel.tensor=8",
        "workload.parallel.pipeline=2",
        "workload.parallel.data=1",
        "workload.batch.global=16",
    ];
    all.extend_from_slice(sets);
    all.extend(owned.as_deref());
    run_with("dgx-a100", &all, 1)
}

/// dgx-a100's NCCL 2.8 has no kernels for an H100: a machine with DGX-H100 nodes runs 2.21.
const NCCL_FOR_H100: &str = "hardware.network.nccl.version=\"2.21\"";

/// GPT 5.9B over two pipeline stages on one DGX-H100 node (stage 0) and one DGX A100 node
/// (stage 1): an even split leaves the H100 stage waiting; giving it more layers balances them.
fn mixed(split: Option<&str>) -> f64 {
    with_split(
        &["hardware.node_groups=[{count: 1, gpu: dgx-h100}]", NCCL_FOR_H100],
        split,
    )
    .iteration_time_s
}

#[test]
fn a_balanced_layer_split_beats_the_even_one_on_mixed_gpus() {
    let even = mixed(None);
    assert_eq!(even, mixed(Some("[16, 16]")), "the even split is the default");
    // the H100 (989 TFLOP/s dense peak against 312) takes 22 of the 32 layers
    let balanced = mixed(Some("[22, 10]"));
    assert!(balanced < 0.75 * even, "{balanced} vs {even}");
    // and an all-A100 machine is slower than either
    let sets = [
        "hardware.nodes=2",
        "workload.parallel.tensor=8",
        "workload.parallel.pipeline=2",
        "workload.parallel.data=1",
        "workload.batch.global=16",
    ];
    assert!(run_with("dgx-a100", &sets, 1).iteration_time_s > even);
}

/// With interleaving, `layers_per_stage` lists the p x v model chunks in virtual-stage order (entry
/// c p + s is chunk c of stage s, as Megatron-Core numbers them): GPT 5.9B cut to 8 layers, t8 p2 v2.
#[test]
fn an_interleaved_split_lists_every_model_chunk_in_virtual_stage_order() {
    let run_split = |split: Option<&str>| {
        let sets = [
            "workload.model.layers=8",
            "workload.schedule=interleaved",
            "workload.parallel.interleave=2",
        ];
        let r = with_split(&sets, split);
        let memory = r.memory.as_ref().expect("a generated run reports memory");
        let params: Vec<f64> = memory.per_stage.iter().map(|s| s.parameters).collect();
        (params, r.iteration_time_s)
    };
    let (even, even_time) = run_split(None);
    // [2, 2, 2, 2] is the even split; [1, 3, 3, 1] (Megatron-Core's room for embedding and loss) puts
    // chunks 0 and 2 (1 + 3 layers) on stage 0 and chunks 1 and 3 (3 + 1) on stage 1: 4 and 4 again
    assert_eq!(run_split(Some("[2, 2, 2, 2]")), (even.clone(), even_time));
    assert_eq!(run_split(Some("[1, 3, 3, 1]")).0, even);
    // [2, 1, 3, 2]: stage 0 holds 2 + 3 = 5 layers, stage 1 1 + 2 = 3, one layer's parameters moved;
    // [3, 1, 3, 1]: 3 + 3 = 6 and 1 + 1 = 2, two layers' (read stage by stage, entries s v + c, they
    // would be 3 + 1 and 4 + 4: no layer moved, and one moved the other way)
    let (one, _) = run_split(Some("[2, 1, 3, 2]"));
    let (two, two_time) = run_split(Some("[3, 1, 3, 1]"));
    let layer = one[0] - even[0];
    assert!(layer > 0.0, "{one:?} vs {even:?}");
    assert_eq!(even[1] - one[1], layer);
    assert_eq!(two[0] - even[0], 2.0 * layer);
    assert_eq!(even[1] - two[1], 2.0 * layer);
    // and stage 0, with 6 of the 8 layers, makes the iteration longer than the even split's
    assert!(two_time > even_time, "{two_time} vs {even_time}");
}

#[test]
fn a_stage_across_gpu_groups_is_refused() {
    use clustersim::config::{load_run_config, Override, Source};
    let sets: Vec<Override> = [
        "hardware.nodes=2",
        "hardware.node_groups=[{count: 1, gpu: dgx-h100}]",
        NCCL_FOR_H100,
        "workload.parallel.tensor=8",
        "workload.parallel.pipeline=1",
        "workload.parallel.data=2",
        "workload.batch.global=16",
    ]
    .iter()
    .map(|s| Override::parse(s).unwrap())
    .collect();
    let e = load_run_config(
        &Source::Named("dgx-a100".into()),
        &Source::Named("gpt-5.9b".into()),
        &sets,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("stage 0 runs on nodes 0 to 1") && e.contains("node_groups"),
        "{e}"
    );
}

#[test]
fn absurd_repetitions_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::common::clustersim_within(
        dir.path(),
        &["run", "--no-output", "--workload", "gpt-1t", "--iterations", "100000"],
        10,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--iterations 100000: would simulate about"), "{err}");
}

#[test]
fn the_planner_searches_balanced_splits_on_mixed_gpus() {
    use clustersim::config::{Override, Source};
    use clustersim::studies::plan::{balanced_layers, plan};
    // peaks 989 (H100, stage 0) and 312 (A100, stage 1): one layer each, then the 30 others in
    // proportion, 30 x 989 / 1301 = 22.8 and 7.2: 1 + 22 = 23 and 1 + 7 = 8, the remaining layer to
    // the larger remainder (0.8): 24 + 8
    let hw = hardware(&[
        "hardware.nodes=2",
        "hardware.node_groups=[{count: 1, gpu: dgx-h100}]",
        NCCL_FOR_H100,
    ]);
    assert_eq!(balanced_layers(&hw, 32, 2, 8), Some(vec![24, 8]));
    assert_eq!(
        balanced_layers(&hardware(&["hardware.nodes=2"]), 32, 2, 8),
        None,
        "one GPU model"
    );
    let sets: Vec<Override> = [
        "hardware.nodes=2",
        "hardware.node_groups=[{count: 1, gpu: dgx-h100}]",
        NCCL_FOR_H100,
        "workload.batch.global=64",
        "workload.parallel.data=2",
    ]
    .iter()
    .map(|s| Override::parse(s).unwrap())
    .collect();
    let p = plan(
        &Source::Named("dgx-a100".into()),
        &Source::Named("gpt-5.9b".into()),
        &sets,
        16,
        None,
    )
    .unwrap();
    assert_eq!(
        p.ranked[0].candidate.layers_per_stage,
        Some(vec![24, 8]),
        "{:?}",
        p.ranked[0].candidate
    );
}
