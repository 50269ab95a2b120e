//! Multi-head latent attention (DeepSeek-V2/V3) and mixture-of-experts models whose first layers
//! stay dense: published parameter counts, the preset, the dense layers' place, and representative
//! runs.

use crate::common::{assert_representative_is_exact, config, report};
use clustersim::ops::CollectiveOp;
use clustersim::studies::run::{run, RunOptions};
use clustersim::workload::params::{active_params, layer_params_split, total_params};

/// DeepSeek-V3's per-layer counts (config_671B.json: h 7168, 128 heads, q 1536, c 512, n 128, r 64,
/// v 128, dense width 18 432, 256 routed and 1 shared expert of width 2048, vocabulary 129 280).
/// MLA: query down 7168 x 1536 = 11 010 048, query up 1536 x 128 x 192 = 37 748 736, key/value
/// down 7168 x 576 = 4 128 768, key/value up 512 x 128 x 256 = 16 777 216, output 16 384 x 7168 =
/// 117 440 512: 187 105 280 weights; latent RMSNorms 1536 + 512 and the layer's two 2 x 7168:
/// 16 384.
const ATTENTION: u64 = 187_105_280 + 16_384;
/// One SwiGLU expert: 3 x 7168 x 2048 = 44 040 192.
const EXPERT: u64 = 3 * 7168 * 2048;

#[test]
fn deepseek_v3_has_its_published_parameter_counts() {
    let mut preset = config("dgx-h100", "deepseek-v3", &["hardware.nodes=256".to_string()])
        .workload
        .model;
    // the preset trains with the one multi-token-prediction module (tests/integration/mtp.rs); the
    // published counts are the main model's
    assert_eq!(preset.mtp_layers, 1);
    preset.mtp_layers = 0;
    let m = &preset;
    // dense layers 0-2: the attention and a SwiGLU of 3 x 7168 x 18 432 = 396 361 728
    let dense = ATTENTION + 3 * 7168 * 18432;
    assert_eq!(layer_params_split(m, 2, 1, 1, 1), (dense, 0));
    // layers 3-60: the attention, the router 7168 x 256 = 1 835 008 and the shared expert stay
    // dense; the 256 routed experts 11 274 289 152
    let router = 7168 * 256;
    assert_eq!(
        layer_params_split(m, 3, 1, 1, 1),
        (ATTENTION + router + EXPERT, 256 * EXPERT)
    );
    // 3 x 583 483 392 + 58 x 11 507 286 016 = 669 173 039 104 in the layers; untied embeddings 2 x
    // 129 280 x 7168 = 1 853 358 080; the final norm 7168: 671 026 404 352 (published: 671 B,
    // without the 11.5 B of the multi-token-prediction module)
    let moe_layer = ATTENTION + router + 257 * EXPERT;
    let total = 3.0 * dense as f64 + 58.0 * moe_layer as f64 + 2.0 * 129280.0 * 7168.0 + 7168.0;
    assert_eq!(total, 671_026_404_352.0);
    assert_eq!(total_params(m), total);
    assert!((total / 671e9 - 1.0).abs() < 0.01, "{total}");
    // activated: 8 of the 256 routed experts, 248 x 44 040 192 = 10 921 967 616 fewer per MoE
    // layer: 671.03 B - 58 x 10.92 B = 37 552 282 624 with both embedding tables. DeepSeek counts
    // the output head (0.9 B) but not the input table, a lookup (README_WEIGHTS.md: "36.7B
    // (including 0.9B for Embedding and 0.9B for the output Head)"; its two 0.93 B tables and the
    // layers' 35.70 B make 37.55 B, so the figure fits only without the input table): 36.63 B
    // against the paper's 37 B (Section 4.2) and README_WEIGHTS' 36.7 B
    let active = active_params(m);
    assert_eq!(active, total - 58.0 * 248.0 * EXPERT as f64);
    assert_eq!(active, 37_552_282_624.0);
    let without_input_table = active - 129280.0 * 7168.0;
    assert!(
        (without_input_table / 36.7e9 - 1.0).abs() < 0.01,
        "{without_input_table}"
    );
    assert!(
        (without_input_table / 37e9 - 1.0).abs() < 0.011,
        "{without_input_table}"
    );
}

#[test]
fn deepseek_v2_lite_without_query_compression_has_its_published_counts() {
    // DeepSeek-V2-Lite (DeepSeek-V2 paper, arXiv 2405.04434, Appendix B: 15.7 B parameters, 2.4 B
    // activated; shapes as in Megatron-LM's examples/post_training/modelopt/conf/deepseek-ai/
    // DeepSeek-V2-Lite.sh and the Hugging Face config.json, vocabulary 102 400): 27 layers, h 2048,
    // 16 heads, no query latent, c 512, n 128, r 64, v 128; layer 0 dense (SwiGLU 10 944), the
    // others 64 routed experts (top 6) and 2 shared, of width 1408.
    let m: clustersim::config::ModelSpec = serde_yaml::from_str(
        "{ layers: 27, hidden: 2048, heads: 16, ffn_hidden: 10944, mlp: swiglu, norm: rmsnorm,
           tied_embeddings: false, bias: false, position_embeddings: false, seq_len: 4096, vocab: 102400,
           mla: { kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128 },
           moe: { experts: 64, top_k: 6, ffn_hidden: 1408, shared_experts: 2, first_dense_layers: 1 } }",
    )
    .unwrap();
    let m = &m;
    // MLA: query 2048 x 16 x 192 = 6 291 456, key/value down 2048 x 576 = 1 179 648, up 512 x 16 x
    // 256 = 2 097 152, output 2048 x 2048 = 4 194 304: 13 762 560; norms 512 + 2 x 2048
    let attention = 13_762_560 + 512 + 4096;
    let expert = 3 * 2048 * 1408;
    let dense = attention + 3 * 2048 * 10944;
    let moe_layer = attention + 2048 * 64 + 66 * expert;
    let total = dense as f64 + 26.0 * moe_layer as f64 + 2.0 * 102400.0 * 2048.0 + 2048.0;
    assert_eq!(total_params(m), total);
    assert!((total / 15.7e9 - 1.0).abs() < 0.01, "{total}");
    // activated without the input table (as DeepSeek counts): 2.45 B against the published 2.4 B
    let active = active_params(m) - 102400.0 * 2048.0;
    assert_eq!(active, total - 26.0 * 58.0 * expert as f64 - 102400.0 * 2048.0);
    assert!((active / 2.4e9 - 1.0).abs() < 0.03, "{active}");
}

/// DeepSeek-V3 shrunk for tests: `layers` layers (the first dense), sequence 1024, 64 experts
/// (top 8), on two DGX-H100 nodes (p2, d8, expert 8, batch 16), with overrides.
fn small(layers: u32, sets: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "hardware.nodes=2".to_string(),
        format!("workload.model.layers={layers}"),
        "workload.model.seq_len=1024".into(),
        "workload.model.moe.experts=64".into(),
        "workload.model.moe.first_dense_layers=1".into(),
        "workload.parallel.pipeline=2".into(),
        "workload.parallel.layers_per_stage=null".into(),
        "workload.parallel.data=8".into(),
        "workload.parallel.expert=8".into(),
        "workload.batch.global=16".into(),
        // the main model alone (the prediction module has its tests in mtp.rs)
        "workload.model.mtp_layers=0".into(),
    ]
    .into();
    v.extend(sets.iter().map(|s| s.to_string()));
    v
}

#[test]
fn the_first_layers_stay_dense_and_every_n_counts_from_layer_zero() {
    // 4 layers, the first dense: layers 1-3 dispatch tokens, 4 all-to-alls each per microbatch
    // (forward dispatch and combine, backward the same) and 2 more under full recompute (the
    // preset's), over the one expert-parallel group of each stage (e = d = 8): 3 layers x 6 x 2
    // microbatches (B / d = 16 / 8) = 36
    let a2a = |sets: &[&str]| {
        let g = clustersim::workload::generate(&config("dgx-h100", "deepseek-v3", &small(4, sets)).workload);
        g.collectives.iter().filter(|c| c.op == CollectiveOp::AllToAll).count()
    };
    assert_eq!(a2a(&[]), 3 * 6 * 2);
    // every second layer past the first dense one: layer i is MoE when i >= 1 and 2 divides i, so
    // only layer 2 of 0-3 (DeepSeek's rule, first_k_dense_replace with moe_layer_freq)
    assert_eq!(a2a(&["workload.model.moe.every_n_layers=2"]), 6 * 2);
    // no dense layers first: layers 0-3 all MoE
    assert_eq!(a2a(&["workload.model.moe.first_dense_layers=0"]), 4 * 6 * 2);
    // the dense layer's MLP is model.ffn_hidden wide, and counts in the parameters as such
    let m = config("dgx-h100", "deepseek-v3", &small(4, &[])).workload.model;
    assert_eq!(layer_params_split(&m, 0, 1, 8, 1), (ATTENTION + 3 * 7168 * 18432, 0));
    assert_eq!(layer_params_split(&m, 1, 1, 8, 1).1, 8 * EXPERT);
}

#[test]
fn mla_representative_runs_equal_every_rank_runs() {
    // the preset's split shrunk, and with tensor parallelism 2 and sequence parallelism (the
    // latents all-gathered, their gradients reduce-scattered), overlapped or not
    let cases = [
        small(4, &[]),
        small(
            4,
            &[
                "workload.parallel.tensor=2",
                "workload.parallel.data=4",
                "workload.parallel.expert=4",
                "workload.parallel.sequence_parallel=true",
            ],
        ),
        small(
            4,
            &[
                "workload.parallel.tensor=2",
                "workload.parallel.data=4",
                "workload.parallel.expert=4",
                "workload.parallel.sequence_parallel=true",
                "workload.tp_comm_overlap=true",
            ],
        ),
    ];
    for sets in cases {
        let every = assert_representative_is_exact("dgx-h100", "deepseek-v3", &sets);
        assert!(every.memory.as_ref().unwrap().fits);
    }
}

#[test]
fn the_preset_runs_at_full_scale_in_representative_mode() {
    // 2048 GPUs (256 DGX-H100 nodes), pipeline 16 x data 128 with expert 64, 120 microbatches of
    // 4096 tokens: one rank per stage simulated. It fits in 80 GB (full recompute), reports the
    // 671 B parameters and the prediction module's 11.6 B (mtp.rs), and its first stage (embedding
    // and the 3 dense layers) computes less than a stage of 4 MoE layers, whose all-to-alls cross
    // 8 nodes
    let cfg = config("dgx-h100", "deepseek-v3", &["hardware.nodes=256".to_string()]);
    let r = run(&cfg, &RunOptions::metrics_only(true)).unwrap().report;
    assert_eq!(r.parameters, 671_026_404_352.0 + 11_610_067_968.0);
    let mem = r.memory.as_ref().unwrap();
    assert!(mem.fits, "{}", mem.peak_bytes_per_gpu);
    assert!(
        r.iteration_time_s > 0.0 && r.mfu > 0.0 && r.mfu < 1.0,
        "{} {}",
        r.iteration_time_s,
        r.mfu
    );
    // without more nodes it does not fit the default 128-node machine
    let e = clustersim::config::load_run_config(
        &clustersim::config::Source::Named("dgx-h100".into()),
        &clustersim::config::Source::Named("deepseek-v3".into()),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("= 2048 GPUs, but"), "{e}");
}

#[test]
fn mla_stores_wider_activations_than_multi_head_attention_of_the_same_width() {
    // the same model with standard attention (h 7168, 128 heads of 56) against MLA's heads of 192
    // and 128: without recompute MLA stores more for each of the last stage's 2 layers (1 pass in
    // flight there under 1F1B with p 2); full recompute keeps only each layer's input, the same for
    // both, plus the one layer being recomputed: one layer's difference
    let act = |sets: &[&str]| {
        let r = report("dgx-h100", "deepseek-v3", &small(4, sets));
        let stage = &r.memory.as_ref().unwrap().per_stage[1];
        assert_eq!(stage.passes_in_flight, 1);
        stage.activation_bytes
    };
    let (none, mha) = ("workload.recompute=none", "workload.model.mla=null");
    let stored = act(&[none]) - act(&[none, mha]);
    assert!(stored > 0.0);
    let full = act(&[]) - act(&[mha]);
    assert!((2.0 * full / stored - 1.0).abs() < 1e-12, "{full} vs {stored}");
    // the report has no MLA fields for models without it (byte-identical outputs)
    let json = serde_json::to_string(&config("dgx-h100", "llama3-8b", &[]).workload).unwrap();
    assert!(!json.contains("mla") && !json.contains("first_dense_layers"), "{json}");
}
