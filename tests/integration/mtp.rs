//! Multi-token prediction (DeepSeek-V3's one module): parameters, FLOPs, the last stage's work, the
//! pipeline layout that leaves the last model chunk to the module and the loss, and bad input.

use crate::common::{config, report};
use clustersim::ops::Kernel;
use clustersim::workload::graph::{TaskGraph, TaskKind};
use clustersim::workload::params::{model_flops_per_iteration, total_params};

/// DeepSeek-V3's module: one more mixture-of-experts layer with MLA (its attention 187 105 280
/// weights and 16 384 norm weights, the router 7168 x 256, 257 experts of 3 x 7168 x 2048:
/// 11 507 286 016, as in mla.rs), the projection 2 x 7168 x 7168 = 102 760 448 and three RMSNorms of
/// 7168 = 21 504: 11 610 067 968 unique parameters (DeepSeek: 14 B with the shared embedding and
/// output head, 0.93 B each, on Hugging Face's 685 B)
#[test]
fn deepseek_v3_with_its_prediction_module_counts_it() {
    let with = config("dgx-h100", "deepseek-v3", &["hardware.nodes=256".into()])
        .workload
        .model;
    let mut base = with.clone();
    base.mtp_layers = 0;
    assert_eq!(with.mtp_layers, 1);
    let module = 187_105_280.0 + 16_384.0 + 7168.0 * 256.0 + 257.0 * 3.0 * 7168.0 * 2048.0;
    let glue = 2.0 * 7168.0 * 7168.0 + 3.0 * 7168.0;
    assert_eq!(total_params(&with) - total_params(&base), module + glue);
    assert!(((total_params(&with) + 2.0 * 129280.0 * 7168.0) / 685e9 - 1.0).abs() < 0.01);
    // model FLOPs: three passes of one more layer's forward (2 per active weight and token, the
    // attention core 2 s^2 a (d_qk + d_v)), the projection (2 x 2h x h per token) and the output
    // layer (2 h V per token), for 4096 tokens
    let s = 4096.0;
    let active = 187_105_280.0 + 7168.0 * 256.0 + 9.0 * 3.0 * 7168.0 * 2048.0;
    let layer = 2.0 * s * active + 2.0 * s * s * 128.0 * (192.0 + 128.0);
    let added = 3.0 * (layer + 2.0 * s * 2.0 * 7168.0 * 7168.0 + 2.0 * s * 7168.0 * 129280.0);
    let delta = model_flops_per_iteration(&with, 1) - model_flops_per_iteration(&base, 1);
    assert!((delta / added - 1.0).abs() < 1e-12, "{delta} vs {added}");
}

/// GEMM kernels on rank `rank` whose (m, n, k) `pick` accepts.
fn gemms(g: &TaskGraph, rank: u32, pick: impl Fn(u64, u64, u64) -> bool) -> usize {
    g.stream(rank, clustersim::workload::graph::Stream::Compute as usize)
        .filter_map(|t| match g.task_kind[t as usize] {
            TaskKind::Compute(op) => Some(&g.ops[op as usize].kernels),
            _ => None,
        })
        .flatten()
        .filter(|k| match **k {
            Kernel::Gemm { m, n, k, .. } | Kernel::Gemm8 { m, n, k, .. } => pick(m, n, k),
            _ => false,
        })
        .count()
}

#[test]
fn the_last_chunk_may_hold_only_the_module_and_the_loss() {
    // DeepSeek-V3 cut to 5 layers (3 dense, 2 MoE) of sequence 1024 on p 2 x v 2, d 2 = e 2, t 1:
    // Megatron-Core's layout "Et|tt|tt|mL" as layers_per_stage [1, 2, 2, 0]; batch 8 = 4 microbatches
    let sets: Vec<String> = [
        "hardware.nodes=1",
        "workload.model.layers=5",
        "workload.model.seq_len=1024",
        "workload.model.mtp_layers=1",
        "workload.parallel.pipeline=2",
        "workload.parallel.interleave=2",
        "workload.schedule=interleaved",
        "workload.parallel.data=2",
        "workload.parallel.expert=2",
        "workload.parallel.layers_per_stage=[1, 2, 2, 0]",
        "workload.batch.global=8",
        "workload.recompute=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = config("dgx-h100", "deepseek-v3", &sets);
    let g = clustersim::workload::generate(&cfg.workload);
    // the last stage (ranks 2 and 3) runs the module's projection (2h = 14336 wide input) forward
    // (k = 2h), and backward its data (n = 2h) and weight (m = 2h) gradients: 3 GEMMs per
    // microbatch, 12 in all; the output layer (n = V = 129 280) forward and its weight gradient
    // twice per microbatch (the next token's and the module's): 16; the first stage neither
    let projection = |m, n, k| m == 14336 || n == 14336 || k == 14336;
    let output = |_, n, _| n == 129280;
    assert_eq!(gemms(&g, 2, projection), 12);
    assert_eq!(gemms(&g, 0, projection), 0);
    assert_eq!(gemms(&g, 2, output), 16);
    assert_eq!(gemms(&g, 0, output), 0);
    // the last stage's copy of the input embedding is kept in step with the first stage's: one
    // all-reduce between them per (tensor, data) pair, t 1 x d 2, besides the optimizer's scalars
    // over each replica's stages, which untied embeddings without the module have alone
    let syncs = |g: &TaskGraph| g.collectives.iter().filter(|c| c.cross_stage).count();
    let plain: Vec<String> = sets.iter().map(|s| s.replace("mtp_layers=1", "mtp_layers=0")).collect();
    let without = clustersim::workload::generate(&config("dgx-h100", "deepseek-v3", &plain).workload);
    assert_eq!(syncs(&g) - syncs(&without), 2);
    // the module's layer (a mixture-of-experts one: attention 187 121 664 with its norms, router
    // 7168 x 256, the shared expert, and 128 of the 256 routed experts of 3 x 7168 x 2048 on each of
    // e = 2 ranks), its projection and norms (2 x 7168^2 + 3 x 7168) and the input embedding's copy
    // (129 280 x 7168) are the last stage's parameters, and only its
    let params = |sets: &[String]| {
        let r = report("dgx-h100", "deepseek-v3", sets);
        assert!(r.iteration_time_s > 0.0);
        r.memory
            .unwrap()
            .per_stage
            .iter()
            .map(|s| s.parameters)
            .collect::<Vec<f64>>()
    };
    let without: Vec<String> = sets.iter().map(|s| s.replace("mtp_layers=1", "mtp_layers=0")).collect();
    let (with, base) = (params(&sets), params(&without));
    let expert = 3.0 * 7168.0 * 2048.0;
    let layer = 187_121_664.0 + 7168.0 * 256.0 + expert + 128.0 * expert;
    let module = layer + 2.0 * 7168.0 * 7168.0 + 3.0 * 7168.0 + 129280.0 * 7168.0;
    assert_eq!(with[0], base[0]);
    assert_eq!(with[1] - base[1], module);
}

#[test]
fn only_the_first_and_last_chunks_may_be_empty() {
    let fails = |sets: &[&str]| {
        let o: Vec<clustersim::config::Override> = sets
            .iter()
            .map(|s| clustersim::config::Override::parse(s).unwrap())
            .collect();
        clustersim::config::load_run_config(
            &clustersim::config::Source::Named("dgx-h100".into()),
            &clustersim::config::Source::Named("deepseek-v3".into()),
            &o,
        )
        .err()
        .map(|e| e.to_string())
    };
    let split = |list: &str| {
        fails(&[
            "hardware.nodes=256",
            "workload.model.layers=5",
            "workload.parallel.pipeline=2",
            "workload.parallel.interleave=2",
            "workload.schedule=interleaved",
            &format!("workload.parallel.layers_per_stage={list}"),
        ])
    };
    assert_eq!(split("[1, 2, 2, 0]"), None);
    assert_eq!(split("[0, 3, 2, 0]"), None);
    let e = split("[1, 0, 4, 0]").unwrap();
    assert!(
        e.contains("parallel.layers_per_stage") && e.contains("the first and the last, which may be 0"),
        "{e}"
    );
}
