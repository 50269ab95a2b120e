//! Mixture of experts and expert parallelism: parameter counts, all-to-all sizes, expert-parallel
//! gradient groups, load imbalance, representative runs, and dense models left as they were.

use crate::common::{assert_representative_is_exact, config, every_rank_and_representative, report};
use clustersim::ops::CollectiveOp;
use clustersim::report::Report;
use clustersim::workload::graph::TaskGraph;
use clustersim::workload::params::{active_params, layer_params_split, total_params};

/// Mixtral 8x7B shrunk for tests: `layers` layers, sequence 1024, on one DGX-H100 node
/// (t1 p2 d4, expert size 2, batch 8), with overrides.
fn small(layers: u32, sets: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        format!("workload.model.layers={layers}"),
        "workload.model.seq_len=1024".into(),
        "workload.parallel.pipeline=2".into(),
        "workload.parallel.data=4".into(),
        "workload.parallel.expert=2".into(),
        "workload.batch.global=8".into(),
    ]
    .into();
    v.extend(sets.iter().map(|s| s.to_string()));
    v
}

/// The all-to-alls of a graph: (group size, bytes) of each.
fn all_to_alls(g: &TaskGraph) -> Vec<(usize, u64)> {
    g.collectives
        .iter()
        .filter(|c| c.op == CollectiveOp::AllToAll)
        .map(|c| (g.groups[c.group as usize].len(), c.bytes))
        .collect()
}

#[test]
fn mixtral_8x7b_has_its_published_parameter_counts() {
    let m = &config("dgx-h100", "mixtral-8x7b", &[]).workload.model;
    // per layer: Q, K, V 4096 x (4096 + 2 x 8 x 128) = 25.17M, output 4096^2 = 16.78M; router
    // 4096 x 8 = 32 768; 8 SwiGLU experts of 3 x 4096 x 14336 = 176.16M each = 1409.29M; two
    // RMSNorms 8192: 1451.27M per layer, x 32 = 46.441B; untied embeddings 2 x 32000 x 4096 =
    // 262.1M; final norm 4096: 46.703B (published: 46.7B)
    let per_layer = 4096 * 6144 + 4096 * 4096 + 4096 * 8 + 8 * 3 * 4096 * 14336 + 2 * 4096;
    assert_eq!(
        layer_params_split(m, 0, 1, 1, 1),
        (4096 * 6144 + 4096 * 4096 + 4096 * 8 + 2 * 4096, 8 * 3 * 4096 * 14336)
    );
    let total = 32.0 * per_layer as f64 + 2.0 * 32000.0 * 4096.0 + 4096.0;
    assert_eq!(total_params(m), total);
    assert!((total / 46.7e9 - 1.0).abs() < 0.01, "{total}");
    // active: 2 of the 8 experts per layer, 6 x 176.16M = 1056.96M fewer per layer:
    // 46.703B - 32 x 1.05697B = 12.879B (published: 12.9B)
    let active = active_params(m);
    assert_eq!(active, total - 32.0 * 6.0 * (3 * 4096 * 14336) as f64);
    assert!((active / 12.9e9 - 1.0).abs() < 0.01, "{active}");
    // the report's parameter count is the total
    let r = report("dgx-h100", "mixtral-8x7b", &[]);
    assert_eq!(r.parameters, total);
    assert!(r.memory.as_ref().unwrap().fits);
}

#[test]
fn each_moe_layer_moves_tokens_x_top_k_x_hidden_in_each_all_to_all() {
    // per microbatch and rank T = b s = 1 x 1024 tokens, each to k = 2 experts: the dispatch
    // buffer is T k h 16-bit elements = 1024 x 2 x 4096 x 2 B = 16 MiB, and the combine returns as
    // much; forward dispatch + combine, backward the same two in reverse: 4 all-to-alls per layer
    // and microbatch over the e = 2 ranks of each expert-parallel group. 4 layers x 2 microbatches
    // (B / d = 8 / 4) x 4 all-to-alls x 2 groups per stage x 1 tensor rank = 64 in all
    let cfg = config("dgx-h100", "mixtral-8x7b", &small(4, &[]));
    let g = clustersim::workload::generate(&cfg.workload);
    let a2a = all_to_alls(&g);
    assert_eq!(a2a.len(), 4 * 2 * 4 * 2);
    assert!(a2a.iter().all(|&x| x == (2, 1024 * 2 * 4096 * 2)), "{a2a:?}");
    // full recompute runs the forward again: 6 per layer and microbatch
    let cfg = config("dgx-h100", "mixtral-8x7b", &small(4, &["workload.recompute=full"]));
    assert_eq!(
        all_to_alls(&clustersim::workload::generate(&cfg.workload)).len(),
        4 * 2 * 6 * 2
    );
    // capacity factor 1.25: each expert's slot is ceil(T k c / E) = ceil(1024 x 2 x 1.25 / 8) =
    // 320 rows, padded: E x 320 = 2560 rows of 4096 x 2 B
    let cfg = config(
        "dgx-h100",
        "mixtral-8x7b",
        &small(4, &["workload.model.moe.capacity_factor=1.25"]),
    );
    let a2a = all_to_alls(&clustersim::workload::generate(&cfg.workload));
    assert!(a2a.iter().all(|&x| x == (2, 2560 * 4096 * 2)), "{a2a:?}");
    // every other layer a mixture of experts: layers 0 and 2 of 4, half the all-to-alls; and
    // none at all without expert parallelism (the tokens stay on the rank)
    let cfg = config(
        "dgx-h100",
        "mixtral-8x7b",
        &small(4, &["workload.model.moe.every_n_layers=2"]),
    );
    assert_eq!(
        all_to_alls(&clustersim::workload::generate(&cfg.workload)).len(),
        2 * 2 * 4 * 2
    );
    let cfg = config("dgx-h100", "mixtral-8x7b", &small(4, &["workload.parallel.expert=1"]));
    assert!(all_to_alls(&clustersim::workload::generate(&cfg.workload)).is_empty());
}

#[test]
fn expert_gradients_are_reduced_over_the_expert_data_parallel_group() {
    // d = 4, e = 2: the dense weights' gradients (attention, norms, router, embeddings) are
    // all-reduced over the 4 replicas, the routed experts' over the d / e = 2 replicas that hold
    // the same experts (replicas r and r + 2). Local DDP without overlap: one all-reduce of each per
    // stage and tensor group; stage 0 holds layers 0-1 and the input embedding
    let sets = small(
        4,
        &[
            "workload.data_parallel.overlap=false",
            "workload.data_parallel.zero_stage=0",
            "workload.data_parallel.grad_dtype=fp16",
        ],
    );
    let cfg = config("dgx-h100", "mixtral-8x7b", &sets);
    let m = &cfg.workload.model;
    let (dense, experts) = layer_params_split(m, 0, 1, 2, 1);
    // 4 of the 8 experts per rank
    assert_eq!(experts, 4 * 3 * 4096 * 14336);
    let g = clustersim::workload::generate(&cfg.workload);
    let reduces: Vec<(Vec<u32>, u64)> = g
        .collectives
        .iter()
        .filter(|c| c.op == CollectiveOp::AllReduce && c.bytes > 1 << 20)
        .map(|c| (g.groups[c.group as usize].clone(), c.bytes))
        .collect();
    let embedding = 32000 * 4096;
    // stage 0 (ranks 0-3): dense over all four, experts over {0, 2} and {1, 3}
    assert!(
        reduces.contains(&(vec![0, 1, 2, 3], 2 * (2 * dense + embedding))),
        "{reduces:?}"
    );
    assert!(reduces.contains(&(vec![0, 2], 2 * 2 * experts)));
    assert!(reduces.contains(&(vec![1, 3], 2 * 2 * experts)));
    // stage 1 (ranks 4-7) likewise, with the output layer
    assert!(reduces.contains(&(vec![4, 5, 6, 7], 2 * (2 * dense + embedding))));
    assert!(reduces.contains(&(vec![4, 6], 2 * 2 * experts)));
    // and the expert-parallel groups are the consecutive replicas {0, 1} and {2, 3}
    let a2a_groups: std::collections::BTreeSet<Vec<u32>> = g
        .collectives
        .iter()
        .filter(|c| c.op == CollectiveOp::AllToAll)
        .map(|c| g.groups[c.group as usize].clone())
        .collect();
    let expected: std::collections::BTreeSet<Vec<u32>> =
        [vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7]].into_iter().collect();
    assert_eq!(a2a_groups, expected);
    // ZeRO-1: the optimizer state of the experts is sharded over 2, the dense one over 4
    let zero1 = report("dgx-h100", "mixtral-8x7b", &small(4, &[]));
    let stage0 = &zero1.memory.as_ref().unwrap().per_stage[0];
    let expected = 12.0 * ((2 * dense + embedding) as f64 / 4.0 + (2 * experts) as f64 / 2.0);
    assert!(
        (stage0.optimizer_bytes / expected - 1.0).abs() < 1e-12,
        "{}",
        stage0.optimizer_bytes
    );
}

/// Mixtral 8x7B with `sets`, run on every rank and representative (flow model).
pub(crate) fn both(sets: &[String]) -> (Report, Report) {
    every_rank_and_representative("dgx-h100", "mixtral-8x7b", sets)
}

#[test]
fn imbalance_makes_a_straggler_deterministically_and_runs_every_rank() {
    let balanced = report("dgx-h100", "mixtral-8x7b", &small(4, &[]));
    let skewed = |seed: &str| {
        report(
            "dgx-h100",
            "mixtral-8x7b",
            &small(4, &["workload.model.moe.imbalance=1", seed]),
        )
    };
    let (a, b, c) = (
        skewed("workload.model.moe.seed=1"),
        skewed("workload.model.moe.seed=1"),
        skewed("workload.model.moe.seed=2"),
    );
    // the hot experts' ranks get more tokens: their all-to-alls and grouped GEMMs take longer and
    // everyone waits for them at the next all-to-all
    assert!(
        a.iteration_time_s > 1.02 * balanced.iteration_time_s,
        "{} vs {}",
        a.iteration_time_s,
        balanced.iteration_time_s
    );
    assert_eq!(a.iteration_time_s, b.iteration_time_s);
    assert_ne!(a.iteration_time_s, c.iteration_time_s);
    // the expert-parallel ranks no longer run the same program: a representative run runs every
    // rank and says why, with the every-rank run's result
    let (every, rep) = both(&small(4, &["workload.model.moe.imbalance=1"]));
    let why = rep.every_rank_because.as_deref().unwrap_or("");
    assert!(why.contains("model.moe.imbalance"), "{why}");
    assert_eq!(every.iteration_time_s, rep.iteration_time_s);
    // a capacity caps every expert's buffer: the skew drops tokens instead of slowing anyone
    let capped = |imbalance: &str| {
        report(
            "dgx-h100",
            "mixtral-8x7b",
            &small(4, &["workload.model.moe.capacity_factor=1.5", imbalance]),
        )
        .iteration_time_s
    };
    assert_eq!(
        capped("workload.model.moe.imbalance=0"),
        capped("workload.model.moe.imbalance=1")
    );
}

#[test]
fn balanced_moe_representative_runs_equal_every_rank_runs() {
    // flow model; expert-parallel groups inside a node (e 2 of d 4) and across two nodes (one
    // 16-rank group, t1 p1 d16 e16 on 2 nodes), with tensor parallelism and ZeRO-1 (the experts'
    // weights all-gathered over their expert-data-parallel group)
    let cases = [
        small(4, &[]),
        small(
            4,
            &[
                "workload.parallel.tensor=2",
                "workload.parallel.data=2",
                "workload.parallel.sequence_parallel=true",
            ],
        ),
        small(
            2,
            &[
                "hardware.nodes=2",
                "workload.parallel.pipeline=1",
                "workload.parallel.data=16",
                "workload.parallel.expert=8",
                "workload.batch.global=16",
            ],
        ),
        small(
            2,
            &[
                "hardware.nodes=2",
                "workload.parallel.pipeline=1",
                "workload.parallel.data=16",
                "workload.parallel.expert=8",
                "workload.model.moe.experts=16",
                "workload.parallel.expert=16",
                "workload.batch.global=16",
            ],
        ),
    ];
    for sets in cases {
        assert_representative_is_exact("dgx-h100", "mixtral-8x7b", &sets);
    }
}

#[test]
fn dense_models_are_unchanged_and_write_no_moe_fields() {
    // without model.moe nothing about MoE reaches the resolved config (report.json's `config`)
    let cfg = config("dgx-a100", "gpt-5.9b", &[]);
    let json = serde_json::to_string(&cfg.workload).unwrap();
    assert!(!json.contains("moe") && !json.contains("expert"), "{json}");
    // one expert taking every token (top 1) of the dense width is the dense MLP plus a router of h
    // weights per layer
    let dense = config("dgx-h100", "llama3-8b", &[]).workload.model;
    let moe = config(
        "dgx-h100",
        "llama3-8b",
        &["workload.model.moe={experts: 1, top_k: 1}".to_string()],
    )
    .workload
    .model;
    assert_eq!(total_params(&moe), total_params(&dense) + 32.0 * 4096.0);
    // expert parallelism needs a mixture of experts
    let e = clustersim::config::load_run_config(
        &clustersim::config::Source::Named("dgx-a100".into()),
        &clustersim::config::Source::Named("gpt-5.9b".into()),
        &[clustersim::config::Override::parse("workload.parallel.expert=2").unwrap()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("parallel.expert") && e.contains("needs `model.moe`"), "{e}");
}

#[test]
fn tensor_parallel_experts_need_sequence_parallelism() {
    // Megatron-Core refuses MoE with tensor parallelism but without sequence parallelism: each
    // tensor rank routes its own sequence shard
    let o: Vec<clustersim::config::Override> = ["workload.parallel.tensor=2", "workload.parallel.data=8"]
        .iter()
        .map(|s| clustersim::config::Override::parse(s).unwrap())
        .collect();
    let e = clustersim::config::load_run_config(
        &clustersim::config::Source::Named("dgx-h100".into()),
        &clustersim::config::Source::Named("mixtral-8x7b".into()),
        &o,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("parallel.sequence_parallel") && e.contains("needs sequence parallelism"),
        "{e}"
    );
}

#[test]
fn qwen3_30b_a3b_preset_has_its_published_sizes_and_names_its_all_to_alls() {
    // 30.5B parameters, 3.3B active (Qwen3's model card; the arithmetic is in params.rs's unit test)
    let m = &config("dgx-h100", "qwen3-30b-a3b", &["hardware.nodes=2".into()])
        .workload
        .model;
    assert!((total_params(m) / 30.5e9 - 1.0).abs() < 0.01, "{}", total_params(m));
    assert!((active_params(m) / 3.3e9 - 1.0).abs() < 0.02, "{}", active_params(m));
    assert_eq!(m.kv_dim(), 4 * 128);
    // 235B-A22B: 235B and 22B (its model card); whole experts (expert-tensor size 1) over 32 ranks
    let big = config("dgx-h100", "qwen3-235b-a22b", &["hardware.nodes=32".into()]).workload;
    assert!(
        (total_params(&big.model) / 235e9 - 1.0).abs() < 0.01,
        "{}",
        total_params(&big.model)
    );
    assert!(
        (active_params(&big.model) / 22e9 - 1.0).abs() < 0.02,
        "{}",
        active_params(&big.model)
    );
    assert_eq!((big.parallel.expert, big.parallel.expert_tensor_size()), (32, 1));
    // a 2-layer, 4-GPU cut of it: the token dispatch and combine are expert-parallel all-to-alls,
    // named so in the timeline (not "tp": there is no tensor parallelism here)
    let timeline = crate::common::timeline_of(&[
        "--hardware",
        "dgx-h100",
        "--workload",
        "qwen3-30b-a3b",
        "--set",
        "workload.model.layers=2",
        "--set",
        "workload.parallel.data=4",
        "--set",
        "workload.parallel.expert=4",
        "--set",
        "workload.batch.global=8",
        "--set",
        "workload.model.seq_len=1024",
        "--set",
        "hardware.nodes=1",
    ]);
    assert!(
        timeline.contains("\"ep all-to-all · forward mb0"),
        "no expert-parallel all-to-all span"
    );
    assert!(!timeline.contains("tp all-to-all"));
}

/// Qwen3-30B-A3B cut to 4 layers, sequence 1024, on 4 GPUs of one node (data 4 = expert 4), batch
/// 16: 4 microbatches per rank, with overrides.
fn qwen_cut(sets: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "hardware.nodes=1",
        "workload.model.layers=4",
        "workload.model.seq_len=1024",
        "workload.parallel.data=4",
        "workload.parallel.expert=4",
        "workload.batch.global=16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(sets.iter().map(|s| s.to_string()));
    v
}

#[test]
fn overlapped_all_to_alls_run_beside_the_other_microbatchs_compute() {
    use clustersim::workload::graph::{Stream, TaskKind};
    let plain = config("dgx-h100", "qwen3-30b-a3b", &qwen_cut(&[]));
    let over = config(
        "dgx-h100",
        "qwen3-30b-a3b",
        &qwen_cut(&["workload.ep_comm_overlap=true"]),
    );
    let (gp, go) = (
        clustersim::workload::generate(&plain.workload),
        clustersim::workload::generate(&over.workload),
    );
    // the same all-to-alls, sizes included: 4 microbatches x 4 layers x 4 (dispatch and combine,
    // forward and backward) on each of the 4 ranks' one expert group
    let (mut a, mut b) = (all_to_alls(&gp), all_to_alls(&go));
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    assert_eq!(a.len(), 4 * 4 * 4);
    // without a pipeline the schedule is F0, (F1 B0), (F2 B1), (F3 B2), B3: 3 of 4 forwards and
    // 3 of 4 backwards run combined, so 3/4 of rank 0's 64 all-to-alls are on the expert stream
    let on_side = |g: &TaskGraph| {
        g.stream(0, Stream::ExpertComm as usize)
            .filter(|&t| matches!(g.task_kind[t as usize], TaskKind::Collective(_)))
            .count()
    };
    assert_eq!(on_side(&gp), 0);
    assert_eq!(on_side(&go), 48);
    // the same kernels (with communication free of SMs); the all-to-alls partly hidden behind the
    // other pass's compute
    let free = "hardware.network.nccl.sm_contention=false";
    let (rp, ro) = (
        report("dgx-h100", "qwen3-30b-a3b", &qwen_cut(&[free])),
        report(
            "dgx-h100",
            "qwen3-30b-a3b",
            &qwen_cut(&["workload.ep_comm_overlap=true", free]),
        ),
    );
    let (bp, bo) = (&rp.breakdown, &ro.breakdown);
    // equal up to the nanosecond each task's duration is rounded to (48 ms of kernels in both)
    assert!(
        (bp.compute_s - bo.compute_s).abs() < 1e-7,
        "{} vs {}",
        bp.compute_s,
        bo.compute_s
    );
    // with NCCL's blocks holding SMs, the compute beside the all-to-alls takes longer
    let shared = report(
        "dgx-h100",
        "qwen3-30b-a3b",
        &qwen_cut(&["workload.ep_comm_overlap=true"]),
    );
    assert!(
        shared.breakdown.compute_s > bo.compute_s * 1.001,
        "{:?}",
        shared.breakdown
    );
    assert!(bo.exposed_comm_s < bp.exposed_comm_s && bo.overlapped_comm_s > bp.overlapped_comm_s);
    assert!(ro.iteration_time_s < rp.iteration_time_s);
    // one more forward in flight: the activations of two microbatches, not one
    let mem = |r: &Report| r.memory.as_ref().unwrap().per_stage[0].passes_in_flight;
    assert_eq!((mem(&rp), mem(&ro)), (1, 2));
}

#[test]
fn overlapped_all_to_alls_with_interleaving_run_and_representative_runs_stay_exact() {
    // pipeline 2 x 2 chunks (1 layer each), data 2 = expert 2 on 4 GPUs, 8 microbatches: the
    // interleaved schedule's steady state combined; a representative run is exact (the stages are
    // alike, the ranks of a stage symmetric)
    let sets: Vec<String> = [
        "hardware.nodes=1",
        "workload.model.layers=4",
        "workload.model.seq_len=1024",
        "workload.parallel.pipeline=2",
        "workload.parallel.interleave=2",
        "workload.schedule=interleaved",
        "workload.parallel.data=2",
        "workload.parallel.expert=2",
        "workload.batch.global=16",
        "workload.ep_comm_overlap=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = assert_representative_is_exact("dgx-h100", "qwen3-30b-a3b", &sets);
    let plain = report("dgx-h100", "qwen3-30b-a3b", &sets[..sets.len() - 1]);
    assert!(r.breakdown.overlapped_comm_s > plain.breakdown.overlapped_comm_s);
    // the same kernels, where communication holds no SMs
    let free = |sets: &[String]| {
        let mut v = sets.to_vec();
        v.push("hardware.network.nccl.sm_contention=false".into());
        report("dgx-h100", "qwen3-30b-a3b", &v)
    };
    let (over, plain) = (free(&sets), free(&sets[..sets.len() - 1]));
    // equal up to the nanosecond each task's duration is rounded to
    assert!((over.breakdown.compute_s - plain.breakdown.compute_s).abs() < 1e-7);
}
