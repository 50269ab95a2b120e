//! Context parallelism: the ring's K/V traffic, gradients over data x context, activation memory,
//! iteration time on a long sequence, representative runs, and workloads without it left alone.

use crate::common::{config, report};
use crate::representative::assert_same;
use clustersim::ops::CollectiveOp;
use clustersim::studies::run::{run, RunOptions};
use clustersim::workload::graph::{Stream, TaskGraph};

/// Llama 3 8B shrunk for tests: `layers` layers, sequence `seq`, tensor 2, pipeline 1, with
/// overrides (the preset has FlashAttention, sequence parallelism, ZeRO-1, overlapped gradients).
fn small(layers: u32, seq: u32, sets: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        format!("workload.model.layers={layers}"),
        format!("workload.model.seq_len={seq}"),
        "workload.parallel.data=1".into(),
        "workload.batch.global=1".into(),
    ];
    v.extend(sets.iter().map(|s| s.to_string()));
    v
}

/// The transfers sent on the context stream: (source, destination, bytes).
fn ring_transfers(g: &TaskGraph) -> Vec<(u32, u32, u64)> {
    g.transfers
        .iter()
        .filter(|x| g.task_stream[x.send as usize] == Stream::ContextComm as u8)
        .map(|x| (x.src, x.dst, x.bytes))
        .collect()
}

#[test]
fn each_rank_passes_its_keys_and_values_to_the_next_rank_of_the_ring() {
    // t 2, c 4, sequence 4096: each rank holds b s / c = 1024 tokens, K and V of kv_heads / t = 4
    // heads of 128: K/V = 1024 x 2 x 512 x 2 B = 2 MiB. Per layer and microbatch each rank sends
    // forward c - 1 = 3 K/V, backward K/V, K/V + dK/dV twice and dK/dV (2 (c - 1) = 6 K/V): 7
    // messages, 9 K/V. 2 layers x 1 microbatch x 8 ranks x 7 = 112 messages.
    let cfg = config(
        "dgx-h100",
        "llama3-8b",
        &small(2, 4096, &["workload.parallel.context=4"]),
    );
    assert_eq!(cfg.workload.gpus_needed(), 8);
    let g = clustersim::workload::generate(&cfg.workload);
    let kv = 1024 * 2 * 512 * 2;
    assert_eq!(kv, 2 << 20);
    let sent = ring_transfers(&g);
    assert_eq!(sent.len(), 2 * 8 * 7);
    for rank in 0..8 {
        // Megatron-Core's order tp-cp-dp-pp: rank = tensor + 2 x context index, so the ring of
        // tensor rank r is r, r + 2, r + 4, r + 6 and each sends to the next
        let (tensor, k) = (rank % 2, rank / 2);
        let next = tensor + 2 * ((k + 1) % 4);
        let mine: Vec<&(u32, u32, u64)> = sent.iter().filter(|x| x.0 == rank).collect();
        assert!(mine.iter().all(|x| x.1 == next), "rank {rank}: {mine:?}");
        assert_eq!(mine.iter().map(|x| x.2).sum::<u64>(), 2 * 9 * kv);
    }
    // without context parallelism nothing goes on the context stream
    let plain = config("dgx-h100", "llama3-8b", &small(2, 4096, &[]));
    assert!(ring_transfers(&clustersim::workload::generate(&plain.workload)).is_empty());
}

#[test]
fn gradients_are_reduced_over_data_x_context() {
    // t 2, c 2, d 2: the distributed optimizer's reduce-scatters (ZeRO-1, overlapped) run over
    // the 4 ranks of each tensor index that hold the same weights: r, r + 2, r + 4, r + 6
    let cfg = config(
        "dgx-h100",
        "llama3-8b",
        &small(
            2,
            4096,
            &[
                "workload.parallel.context=2",
                "workload.parallel.data=2",
                "workload.batch.global=2",
            ],
        ),
    );
    let g = clustersim::workload::generate(&cfg.workload);
    let mut groups: Vec<Vec<u32>> = g
        .collectives
        .iter()
        .filter(|c| c.op == CollectiveOp::ReduceScatter && g.groups[c.group as usize].len() > 2)
        .map(|c| g.groups[c.group as usize].to_vec())
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups, vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
}

#[test]
fn activation_memory_is_divided_by_the_context_size() {
    // FlashAttention with sequence parallelism keeps 34 s b h / t per layer (Korthikanti's count
    // without the s x s scores) and the last stage 6 s b V / t of logits: every term is linear in
    // s, and a rank of a ring of c holds s / c tokens, so activations fall by c exactly. Weights,
    // gradients and the optimizer state per rank are the same (sharded by ZeRO-1 over d x c = 4
    // ranks in both runs: d 4 without context parallelism, d 1 x c 4 with it).
    let memory = |sets: &[&str]| {
        let r = report("dgx-h100", "llama3-8b", &small(2, 32768, sets));
        r.memory.unwrap().per_stage[0].clone()
    };
    let plain = memory(&["workload.parallel.data=4", "workload.batch.global=4"]);
    let splits: [(f64, &[&str]); 2] = [
        (
            2.0,
            &[
                "workload.parallel.context=2",
                "workload.parallel.data=2",
                "workload.batch.global=2",
            ],
        ),
        (4.0, &["workload.parallel.context=4"]),
    ];
    for (c, sets) in splits {
        let ring = memory(sets);
        assert!(
            (ring.activation_bytes / (plain.activation_bytes / c) - 1.0).abs() < 1e-12,
            "c {c}"
        );
        assert_eq!(ring.optimizer_bytes, plain.optimizer_bytes);
        assert_eq!(ring.weights_bytes, plain.weights_bytes);
    }
}

#[test]
fn context_parallelism_shortens_an_iteration_of_long_sequences() {
    // Llama 3 8B, 4 layers, one 32768-token sequence on t 2: every kernel of a rank of a ring of c
    // works on s / c tokens and its attention does 1/c of the causal work, so compute per rank
    // falls by c; the K/V sends (16 MiB per step at c = 2 over NVLink, about 0.1 ms) hide behind
    // attention steps of several ms. So the iteration is close to 1/c of the plain one: at
    // least 1.8x faster with c = 2 and 3.4x with c = 4 (on 4 and 8 GPUs of one DGX-H100)
    let time = |c: u32| {
        report(
            "dgx-h100",
            "llama3-8b",
            &small(4, 32768, &[&format!("workload.parallel.context={c}")]),
        )
        .iteration_time_s
    };
    let (one, two, four) = (time(1), time(2), time(4));
    assert!(one / two > 1.8, "{one} vs {two}");
    assert!(one / four > 3.4, "{one} vs {four}");
    assert!(one / four < 4.0, "{one} vs {four}");
}

#[test]
fn representative_runs_equal_every_rank_runs_with_context_parallelism() {
    // flow model: rings inside a node (t 2 c 4 d 2 on 2 nodes: a ring of 4 ranks per tensor
    // index, replicas on different nodes; t 2 c 2 p 2 d 2 with pipeline sends and ZeRO-1
    // gathers): a ring's rotations map every K/V transfer onto one alike, so one rank stands for
    // all. A ring of 2 across nodes (t 8 c 2 d 2 on 4 nodes: ranks r and r + 8) too: both its
    // steps, r -> r + 8 and back, cross the fabric alike (each direction a copy of the other)
    let symmetric = [
        small(
            2,
            8192,
            &[
                "hardware.nodes=4",
                "workload.parallel.tensor=8",
                "workload.parallel.context=2",
                "workload.parallel.data=2",
                "workload.batch.global=2",
            ],
        ),
        small(
            2,
            8192,
            &[
                "hardware.nodes=2",
                "workload.parallel.context=4",
                "workload.parallel.data=2",
                "workload.batch.global=4",
            ],
        ),
        small(
            4,
            8192,
            &[
                "hardware.nodes=2",
                "workload.parallel.context=2",
                "workload.parallel.pipeline=2",
                "workload.parallel.data=2",
                "workload.batch.global=4",
            ],
        ),
    ];
    let both = |sets: &[String]| {
        let cfg = config("dgx-h100", "llama3-8b", sets);
        let every = run(&cfg, &RunOptions::metrics_only(false)).unwrap().report;
        let rep = run(&cfg, &RunOptions::metrics_only(true)).unwrap().report;
        (every, rep)
    };
    for sets in symmetric {
        let (every, rep) = both(&sets);
        assert_eq!(rep.every_rank_because, None, "{sets:?}");
        assert_same(&format!("{sets:?}"), &every, &rep);
    }
    // t 2 c 8: the ring of each tensor index spans 16 GPUs on 2 nodes, and its transfer 6 -> 8
    // crosses the fabric where 0 -> 2 stays in the node: not symmetric, so every rank runs (and
    // says why), with the every-rank result
    let (every, rep) = both(&small(2, 8192, &["hardware.nodes=2", "workload.parallel.context=8"]));
    let why = rep.every_rank_because.as_deref().unwrap_or("");
    assert!(why.contains("another latency"), "{why}");
    assert_eq!(every.iteration_time_s, rep.iteration_time_s);
}

#[test]
fn context_one_is_no_context_parallelism() {
    // `context: 1` stated changes nothing, down to the serialized report (the field is left out)
    let absent = report("dgx-h100", "llama3-8b", &small(2, 4096, &[]));
    let one = report(
        "dgx-h100",
        "llama3-8b",
        &small(2, 4096, &["workload.parallel.context=1"]),
    );
    let json = |r| serde_json::to_string(&r).unwrap();
    assert_eq!(json(absent), json(one));
}
