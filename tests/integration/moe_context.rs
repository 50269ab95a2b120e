//! A mixture of experts with context parallelism, as Megatron-Core (core_r0.11.0's
//! `parallel_state.py`) lays it out: the expert-parallel groups carved out of data x context, the
//! dispatch and combine all-to-alls and grouped GEMMs sized by a context rank's s / c tokens, expert
//! gradients over what remains (the expert-data-parallel group), memory, and representative runs.

use crate::common::{config, report};
use crate::moe::both;
use crate::representative::assert_same;
use clustersim::ops::CollectiveOp;
use clustersim::workload::graph::{Stream, TaskGraph};
use std::collections::BTreeSet;

/// Mixtral 8x7B shrunk for tests: 2 layers of sequence `seq`, pipeline 1, on DGX-H100s, split
/// tensor t (sequence parallel when above 1) x context c x data d with expert size e and one
/// sequence per replica (batch d), with `more` overrides (FlashAttention, ZeRO-1 and overlapped
/// gradients from the preset).
fn split(seq: u32, [t, c, d, e]: [u32; 4], more: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "workload.model.layers=2".into(),
        format!("workload.model.seq_len={seq}"),
        "workload.parallel.pipeline=1".into(),
        format!("workload.parallel.tensor={t}"),
        format!("workload.parallel.sequence_parallel={}", t > 1),
        format!("workload.parallel.context={c}"),
        format!("workload.parallel.data={d}"),
        format!("workload.parallel.expert={e}"),
        format!("workload.batch.global={d}"),
    ];
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

/// The task graph of `split`'s Mixtral.
fn graph(sets: &[String]) -> TaskGraph {
    clustersim::workload::generate(&config("dgx-h100", "mixtral-8x7b", sets).workload)
}

/// The distinct groups of the collectives of `op` of at least `bytes`.
fn groups(g: &TaskGraph, op: CollectiveOp, bytes: u64) -> BTreeSet<Vec<u32>> {
    g.collectives
        .iter()
        .filter(|c| c.op == op && c.bytes >= bytes)
        .map(|c| g.groups[c.group as usize].clone())
        .collect()
}

#[test]
fn each_context_rank_dispatches_the_tokens_it_holds() {
    // seq 2048, one sequence per replica (batch = d = 2), e = 2, k = 2 of 8 experts, h 4096.
    // c = 1 (2 GPUs): a rank routes T = b s = 2048 tokens and each all-to-all moves T k h 16-bit
    // elements = 2048 x 2 x 4096 x 2 B = 32 MiB; c = 2 (4 GPUs): a rank holds s / c = 1024 tokens,
    // 1024 x 2 x 4096 x 2 B = 16 MiB, half. Either way 4 all-to-alls per layer and microbatch
    // (dispatch and combine, forward and backward) on every rank: 2 layers x 4 = 8 per expert group,
    // 1 group with c = 1 and 2 with c = 2 (positions {0, 1} and {2, 3})
    let a2a = |c: u32| {
        let g = graph(&split(2048, [1, c, 2, 2], &[]));
        g.collectives
            .iter()
            .filter(|c| c.op == CollectiveOp::AllToAll)
            .map(|c| (g.groups[c.group as usize].len(), c.bytes))
            .collect::<Vec<_>>()
    };
    let mib = 1 << 20;
    assert_eq!(2048 * 2 * 4096 * 2, 32 * mib);
    assert_eq!(a2a(1), vec![(2, 32 * mib); 8]);
    assert_eq!(a2a(2), vec![(2, 16 * mib); 16]);
}

#[test]
fn expert_groups_are_carved_out_of_data_x_context() {
    // t1 c2 d4 e4 on 8 GPUs (Megatron-Core's RankGenerator, order tp-cp-ep-dp-pp): dense ranks
    // = context + 2 replica, so the rings are {0, 1} {2, 3} {4, 5} {6, 7} and dense gradients go
    // over data x context, all 8; the expert generator (context 1, expert-data size 8 / (1 x 4 x
    // 1) = 2) has rank = expert index + 4 x expert-data index: expert-parallel groups {0, 1, 2, 3}
    // and {4, 5, 6, 7} (two replicas' rings each), expert-data groups {0, 4} {1, 5} {2, 6} {3, 7}.
    // Local DDP without overlap: one all-reduce of each kind
    let g = graph(&split(
        2048,
        [1, 2, 4, 4],
        &[
            "workload.data_parallel.overlap=false",
            "workload.data_parallel.zero_stage=0",
        ],
    ));
    let set = |v: &[&[u32]]| v.iter().map(|x| x.to_vec()).collect::<BTreeSet<_>>();
    assert_eq!(
        groups(&g, CollectiveOp::AllToAll, 0),
        set(&[&[0, 1, 2, 3], &[4, 5, 6, 7]])
    );
    // gradient all-reduces (above 1 MiB): the dense part over all 8, the experts (2 of 8 per
    // rank) over their expert-data groups
    assert_eq!(
        groups(&g, CollectiveOp::AllReduce, 1 << 20),
        set(&[&[0, 1, 2, 3, 4, 5, 6, 7], &[0, 4], &[1, 5], &[2, 6], &[3, 7]])
    );
    let rings: BTreeSet<(u32, u32)> = g
        .transfers
        .iter()
        .filter(|x| g.task_stream[x.send as usize] == Stream::ContextComm as u8)
        .map(|x| (x.src, x.dst))
        .collect();
    assert_eq!(
        rings,
        [(0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4), (6, 7), (7, 6)].into()
    );
    // t2 c2 d2 e2 (sequence parallel): rank = tensor + 2 (context + 2 replica); the expert
    // generator's rank = tensor + 2 (expert index + 2 expert-data index): expert-parallel groups
    // {0, 2} {1, 3} {4, 6} {5, 7} (each replica's ring), expert-data groups {0, 4} {1, 5} {2, 6}
    // {3, 7}; e = c x d / 2, so it runs with d = 1 too
    let g = graph(&split(2048, [2, 2, 2, 2], &[]));
    assert_eq!(
        groups(&g, CollectiveOp::AllToAll, 0),
        set(&[&[0, 2], &[1, 3], &[4, 6], &[5, 7]])
    );
    // ZeRO-1 (overlapped): the dense gradients reduce-scattered over data x context ({0, 2, 4, 6}
    // and {1, 3, 5, 7}), the experts' over the expert-data groups (beside the tensor groups'
    // sequence-parallel reduce-scatters)
    let scattered = groups(&g, CollectiveOp::ReduceScatter, 1 << 20);
    let expected = set(&[&[0, 2, 4, 6], &[1, 3, 5, 7], &[0, 4], &[1, 5], &[2, 6], &[3, 7]]);
    assert!(scattered.is_superset(&expected), "{scattered:?}");
    // t1 c2 d1 e2: the expert-parallel group is the one replica's ring, nothing remains for
    // expert-data parallelism (c d / e = 1: no expert gradient reduction)
    let g = graph(&split(2048, [1, 2, 1, 2], &[]));
    assert_eq!(groups(&g, CollectiveOp::AllToAll, 0), set(&[&[0, 1]]));
    let reduced: BTreeSet<Vec<u32>> = [CollectiveOp::AllReduce, CollectiveOp::ReduceScatter]
        .into_iter()
        .flat_map(|op| groups(&g, op, 1 << 20))
        .collect();
    assert_eq!(
        reduced,
        set(&[&[0, 1]]),
        "the dense gradients over data x context, the ring"
    );
}

#[test]
fn activation_memory_falls_by_the_context_size_and_model_states_stay() {
    // dropless, balanced: every extra term of a mixture-of-experts layer (router probabilities
    // 4 T E, dispatched rows 4 T k h, expert intermediates, less the dense MLP's 16 T h) is linear
    // in the tokens a rank holds, T = b s / c, as Korthikanti's dense terms and the logits are; so
    // activations fall by c exactly. d x c = 4 in both runs and e = 2: the dense states are sharded
    // over 4 (ZeRO-1) and the experts' over d c / e = 2, alike
    let memory = |c: u32, d: u32| {
        let r = report("dgx-h100", "mixtral-8x7b", &split(16384, [1, c, d, 2], &[]));
        r.memory.unwrap().per_stage[0].clone()
    };
    let (plain, ring) = (memory(1, 4), memory(2, 2));
    assert!(
        (ring.activation_bytes / (plain.activation_bytes / 2.0) - 1.0).abs() < 1e-12,
        "{} vs {}",
        ring.activation_bytes,
        plain.activation_bytes
    );
    assert_eq!(ring.weights_bytes, plain.weights_bytes);
    assert_eq!(ring.gradients_bytes, plain.gradients_bytes);
    assert_eq!(ring.optimizer_bytes, plain.optimizer_bytes);
}

#[test]
fn representative_runs_equal_every_rank_runs_with_experts_on_rings() {
    // flow model. One node: c 2 e 4 (an expert group holds two rings), c 4 e 2 (a ring holds two
    // expert groups: no rotation keeps both, so collectives are copied along the expert groups and
    // ring transfers along the rings), t 2 c 2 e 2 with sequence parallelism. Two nodes: c 2 d 8
    // e 8 (an expert group per node) and e 16 (one group across both). Each rank's communications
    // are then copies of the representative's, all of them
    let two = ["hardware.nodes=2"];
    let cases = [
        split(2048, [1, 2, 4, 4], &[]),
        split(2048, [1, 4, 2, 2], &[]),
        split(2048, [2, 2, 2, 2], &[]),
        split(2048, [1, 2, 8, 8], &two),
        split(
            2048,
            [1, 2, 8, 16],
            &["hardware.nodes=2", "workload.model.moe.experts=16"],
        ),
    ];
    for sets in cases {
        let (every, rep) = both(&sets);
        assert_eq!(rep.every_rank_because, None, "{sets:?}");
        assert_same(&format!("{sets:?}"), &every, &rep);
    }
    // t 2 c 8 e 2 on 2 nodes: each ring spans 16 GPUs and its step 6 -> 8 crosses the fabric where
    // 0 -> 2 stays in the node: every rank runs, says why, and gives the every-rank result
    let (every, rep) = both(&split(2048, [2, 8, 1, 2], &two));
    let why = rep.every_rank_because.as_deref().unwrap_or("");
    assert!(why.contains("another latency"), "{why}");
    assert_eq!(every.iteration_time_s, rep.iteration_time_s);
}
