//! Whole experts (`parallel.expert_tensor: 1`, Megatron-Core's "MoE parallel folding", as NVIDIA
//! runs Qwen3-235B-A22B on 256 H100s at TP2 PP8 EP32 ETP1: Megatron-MoE-ModelZoo,
//! best_practice/Qwen3/readme.md): expert-parallel groups over the tensor x data ranks of a stage, no tensor all-gather
//! around the experts, E / e whole experts per rank with their gradients reduced over the folded
//! expert-data-parallel group, memory, and representative runs.

use crate::common::{assert_representative_is_exact, config, report};
use crate::moe::both;
use crate::representative::assert_same;
use clustersim::config::ModelSpec;
use clustersim::ops::CollectiveOp;
use clustersim::workload::graph::TaskGraph;
use clustersim::workload::params::layer_params_split;
use std::collections::BTreeSet;

/// Mixtral 8x7B (8 SwiGLU experts of width 14 336, top 2, h 4096) shrunk to `layers` layers of
/// sequence 1024, pipeline `p`, tensor `t` (sequence parallel), data `d`, expert size `e`,
/// expert-tensor size `u`, microbatch 1, global batch 8 (m = 8 / d microbatches), on DGX-H100s.
fn folded(layers: u32, [p, t, d, e, u]: [u32; 5], more: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        format!("workload.model.layers={layers}"),
        "workload.model.seq_len=1024".into(),
        format!("workload.parallel.pipeline={p}"),
        format!("workload.parallel.tensor={t}"),
        format!("workload.parallel.sequence_parallel={}", t > 1),
        format!("workload.parallel.data={d}"),
        format!("workload.parallel.expert={e}"),
        format!("workload.parallel.expert_tensor={u}"),
        "workload.batch.global=8".into(),
    ];
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

fn graph(sets: &[String]) -> TaskGraph {
    clustersim::workload::generate(&config("dgx-h100", "mixtral-8x7b", sets).workload)
}

/// (group, bytes) of every collective of `op`.
fn collectives(g: &TaskGraph, op: CollectiveOp) -> Vec<(Vec<u32>, u64)> {
    g.collectives
        .iter()
        .filter(|c| c.op == op)
        .map(|c| (g.groups[c.group as usize].clone(), c.bytes))
        .collect()
}

fn groups(found: &[(Vec<u32>, u64)]) -> BTreeSet<Vec<u32>> {
    found.iter().map(|(g, _)| g.clone()).collect()
}

#[test]
fn qwen3_235b_layers_hold_four_whole_experts_per_rank_at_tp2_ep32() {
    // Qwen3-235B-A22B's layer (config.json of Qwen/Qwen3-235B-A22B: h 4096, 128 routed experts of
    // SwiGLU width 1536, top 8) at NVIDIA's H100 split TP2 EP32 with expert-tensor size 1: each
    // rank holds 128 / 32 = 4 whole experts, 4 x 3 x 4096 x 1536 = 75.5M parameters per layer;
    // split over the tensor ranks (expert-tensor 2) it would hold half of each
    let m: ModelSpec = serde_yaml::from_str(
        "{ layers: 94, hidden: 4096, heads: 64, kv_heads: 4, ffn_hidden: 12288, mlp: swiglu, norm: rmsnorm, \
           tied_embeddings: false, bias: false, position_embeddings: false, seq_len: 4096, vocab: 151936, \
           head_dim: 128, qk_norm: true, moe: { experts: 128, top_k: 8, ffn_hidden: 1536 } }",
    )
    .unwrap();
    let (dense, whole) = layer_params_split(&m, 0, 2, 32, 1);
    assert_eq!(whole, 4 * 3 * 4096 * 1536);
    let (dense_split, split) = layer_params_split(&m, 0, 2, 32, 2);
    assert_eq!((dense_split, split), (dense, whole / 2));
}

#[test]
fn whole_experts_fold_the_tensor_ranks_into_the_expert_parallel_groups() {
    // t 2 d 4 p 1 (8 ranks, rank = tensor + 2 data), e 4, expert-tensor 1: the expert-parallel
    // groups are 4 consecutive ranks, {0, 1, 2, 3} and {4, 5, 6, 7} (tensor peers together), each
    // rank holding 8 / 4 = 2 whole experts; the ranks at the same index of their group, {r, r + 4},
    // hold the same experts: the expert-data-parallel group of t d / e = 2 ranks. Local DDP without
    // overlap and fp16 gradients: one all-reduce of the dense gradients per data group ({0, 2, 4,
    // 6} and {1, 3, 5, 7}) and one of the experts' per expert-data group, 2 x (2 layers x 2
    // experts x 3 x 4096 x 14336) bytes
    let ddp = [
        "workload.data_parallel.overlap=false",
        "workload.data_parallel.zero_stage=0",
        "workload.data_parallel.grad_dtype=fp16",
    ];
    let g = graph(&folded(2, [1, 2, 4, 4, 1], &ddp));
    let a2a = collectives(&g, CollectiveOp::AllToAll);
    let expected: BTreeSet<Vec<u32>> = [vec![0, 1, 2, 3], vec![4, 5, 6, 7]].into();
    assert_eq!(groups(&a2a), expected);
    let expert = 3 * 4096 * 14336;
    let reduces: BTreeSet<(Vec<u32>, u64)> = collectives(&g, CollectiveOp::AllReduce).into_iter().collect();
    for r in 0..4 {
        assert!(
            reduces.contains(&(vec![r, r + 4], 2 * 2 * 2 * expert)),
            "{r}: {reduces:?}"
        );
    }
    assert!(reduces.iter().any(|(g, b)| g == &vec![0, 2, 4, 6] && *b > 1 << 20));
    // the experts split over the tensor ranks (expert-tensor 2): groups of 4 data positions of
    // one tensor rank, {0, 2, 4, 6} and {1, 3, 5, 7}, and d / e = 1 rank per expert-data group
    let g = graph(&folded(2, [1, 2, 4, 4, 2], &ddp));
    let expected: BTreeSet<Vec<u32>> = [vec![0, 2, 4, 6], vec![1, 3, 5, 7]].into();
    assert_eq!(groups(&collectives(&g, CollectiveOp::AllToAll)), expected);
    // ZeRO-1 (the preset's): the whole experts' optimizer state is sharded over their 2-rank
    // expert-data group. Whole: 2 layers x 2 experts = 4 experts' parameters per rank, 12 x 4 / 2
    // bytes of optimizer state each; split: 2 layers x 2 half experts = 2, 12 x 2 / 1: the same
    // optimizer state, twice the weights (2 bytes x 2 experts' more)
    let zero1 = |u: u32| report("dgx-h100", "mixtral-8x7b", &folded(2, [1, 2, 4, 4, u], &[]));
    let (a, b) = (zero1(1), zero1(2));
    let (a, b) = (
        &a.memory.as_ref().unwrap().per_stage[0],
        &b.memory.as_ref().unwrap().per_stage[0],
    );
    assert_eq!(a.optimizer_bytes, b.optimizer_bytes);
    assert_eq!(a.weights_bytes - b.weights_bytes, 2.0 * 2.0 * expert as f64);
}

#[test]
fn an_eight_layer_model_with_whole_experts_drops_the_tensor_gather_and_keeps_its_parameters() {
    // t 2 d 4 p 1 on one DGX-H100, 8 MoE layers, m = 8 / 4 = 2 microbatches. Whole experts, e 8
    // (the node's 8 ranks, one expert each) against experts split over t, e 4 (4 data positions,
    // 2 half experts each): the same expert parameters per rank (8 / 8 = 2 x 1/2), the same
    // all-to-all buffer per rank (T k h 16-bit = 1024 / 2 tokens x 2 x 4096 x 2 B = 8 MiB), the
    // same expert FLOPs, but the split experts all-gather each group's 2 x 1024 received rows over
    // the tensor group before them and reduce-scatter after, forward and backward: 2 x 2 more
    // collectives of 2 x 1024 x 4096 x 2 B = 16 MiB per layer, microbatch and tensor group,
    // 4 x 8 x 2 x 4 = 256 in all, which the whole experts do not wait for
    let (whole_sets, split_sets) = (folded(8, [1, 2, 4, 8, 1], &[]), folded(8, [1, 2, 4, 4, 2], &[]));
    let (whole_g, split_g) = (graph(&whole_sets), graph(&split_sets));
    let tensor = |g: &TaskGraph| {
        [CollectiveOp::AllGather, CollectiveOp::ReduceScatter]
            .iter()
            .flat_map(|&op| collectives(g, op))
            .filter(|(group, _)| group.len() == 2)
            .map(|(_, bytes)| bytes)
            .collect::<Vec<_>>()
    };
    let (whole_t, split_t) = (tensor(&whole_g), tensor(&split_g));
    assert_eq!(split_t.len() - whole_t.len(), 256);
    let gathers = |t: &[u64]| t.iter().filter(|&&b| b == 2 * 1024 * 4096 * 2).count();
    assert_eq!((gathers(&split_t) - gathers(&whole_t), gathers(&whole_t)), (256, 0));
    // all-to-alls: 4 per layer and microbatch per group, 1 group of 8 against 2 groups of 4
    let a2a = |g: &TaskGraph| {
        let found = collectives(g, CollectiveOp::AllToAll);
        let sizes: BTreeSet<(usize, u64)> = found.iter().map(|(g, b)| (g.len(), *b)).collect();
        (found.len(), sizes)
    };
    assert_eq!(a2a(&whole_g), (4 * 8 * 2, [(8, 8 << 20)].into()));
    assert_eq!(a2a(&split_g), (4 * 8 * 2 * 2, [(4, 8 << 20)].into()));
    let (whole, split) = (
        report("dgx-h100", "mixtral-8x7b", &whole_sets),
        report("dgx-h100", "mixtral-8x7b", &split_sets),
    );
    let (wm, sm) = (
        &whole.memory.as_ref().unwrap().per_stage[0],
        &split.memory.as_ref().unwrap().per_stage[0],
    );
    assert_eq!((wm.parameters, wm.weights_bytes), (sm.parameters, sm.weights_bytes));
    // the whole experts store their 1024 received rows as input, not the tensor group's 2048:
    // 4 x 1024 x 4096 B less per layer and pass in flight (1 with p 1), x 8 layers = 128 MiB
    assert_eq!(sm.activation_bytes - wm.activation_bytes, 8.0 * 4.0 * 1024.0 * 4096.0);
    // with nothing to wait for in place of the gathers, the iteration is shorter and less of its
    // communication is exposed
    assert!(
        whole.iteration_time_s < split.iteration_time_s,
        "{} vs {}",
        whole.iteration_time_s,
        split.iteration_time_s
    );
    assert!(whole.breakdown.exposed_comm_s < split.breakdown.exposed_comm_s);
    // and expert_tensor written as t is the default
    let unset: Vec<String> = split_sets
        .iter()
        .filter(|s| !s.contains("expert_tensor"))
        .cloned()
        .collect();
    let default = report("dgx-h100", "mixtral-8x7b", &unset);
    assert_eq!(default.iteration_time_s, split.iteration_time_s);
}

#[test]
fn representative_runs_equal_every_rank_runs_with_whole_experts() {
    // flow model on one DGX-H100: groups holding whole tensor groups (t 2 e 8, e 4, e 2 = t,
    // with pipeline 2), groups inside a tensor group (t 4 d 2 e 2: tensor blocks of 2; t 4 d 1
    // e 2, whose expert-data groups of 2 are tensor peers of the one replica), no expert
    // parallelism (t 2 e 1: every rank of the stage holds every expert, one expert-data group)
    let cases = [
        folded(2, [1, 2, 4, 8, 1], &[]),
        folded(2, [1, 2, 4, 4, 1], &[]),
        folded(4, [2, 2, 2, 2, 1], &[]),
        folded(2, [1, 4, 2, 2, 1], &[]),
        folded(2, [1, 4, 1, 2, 1], &[]),
        folded(2, [1, 2, 4, 1, 1], &[]),
    ];
    for sets in cases {
        assert_representative_is_exact("dgx-h100", "mixtral-8x7b", &sets);
    }
    // t 2 d 3 e 3 (6 experts): group {0, 1, 2} holds tensor group {0, 1} and half of {2, 3}; no
    // shift of the grid takes rank 0's program to rank 2's: every rank runs, and says why
    let sets = folded(
        2,
        [1, 2, 3, 3, 1],
        &["workload.model.moe.experts=6", "workload.batch.global=6"],
    );
    let (every, rep) = both(&sets);
    let why = rep.every_rank_because.as_deref().unwrap_or("");
    assert!(why.contains("expert_tensor"), "{why}");
    assert_same("t2 d3 e3", &every, &rep);
}
