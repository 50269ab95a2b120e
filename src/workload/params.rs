//! Parameter and FLOP counts of a model's shapes: GPT (Megatron-LM's closed forms) and
//! Llama-style layers (grouped-query attention, SwiGLU, RMSNorm, untied embeddings), from one
//! count of each weight matrix.
//!
//! Per layer: attention Q, K, V h x (h + 2 kv_dim) and output h x h; MLP 2 h ffn (GeLU) or 3 h ffn
//! (SwiGLU); biases (h + 2 kv_dim) + h and ffn + h (GeLU: one up bias) or 2 ffn + h (SwiGLU) when the
//! model has them; two norms of 2 h (LayerNorm) or h (RMSNorm). For GPT (kv_dim = h, ffn = 4 h,
//! biases, LayerNorm) that is Megatron's 12 h^2 + 13 h.
//! Forward FLOPs per sequence of s tokens: 2 s per weight of every layer's matrices, 4 s^2 h per
//! layer for the attention scores and context, and 2 s h V for the logits. Megatron's eq. 3 counts
//! 4 forwards of the layers (forward, backward = 2, one recompute) and 3 of the logits:
//! 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) for GPT; model FLOPs (no recompute) 3 forwards:
//! 72 B l s h^2 (1 + s/(6h) + V/(12 h l)).
//!
//! A mixture-of-experts layer (`model.moe`) has the same attention and norms, a router of h x E
//! weights, and E routed plus S shared experts, each an MLP of the model's kind and width f_e, in
//! place of the dense MLP; a token's forward uses the router and k + S experts (its *active*
//! parameters), so its FLOPs count 2 s per active weight.
//!
//! With the head dimension set apart from h / a (`model.head_dim` d, Qwen3) the queries and the
//! attention output are a d wide: Q, K, V h x (a d + 2 kv_dim) and output a d x h, and the scores
//! and context take 4 s^2 a d; Qwen3's query and key norms (`qk_norm`) add one norm of d each.
//!
//! Multi-head latent attention (`model.mla`: query latent q, key/value latent c, per-head widths n,
//! r, v, d_qk = n + r) replaces Q, K, V and the output projection by h q + q a d_qk (h a d_qk
//! without query compression) + h (c + r) + c a (n + v) + a v h weights and adds the latents'
//! norms (q + c); its scores and context take 2 s^2 a (d_qk + d_v) FLOPs per layer in place of
//! 4 s^2 h. The down projections and latent norms are whole on every tensor rank.

use crate::config::{Mlp, ModelSpec, MoeSpec, Norm};

/// Weights of one MLP of width `ffn` (no biases): 2 h ffn (GeLU) or 3 h ffn (SwiGLU).
fn mlp_matrices(m: &ModelSpec, ffn: u64) -> u64 {
    match m.mlp {
        Mlp::Gelu => 2 * m.hidden * ffn,
        Mlp::Swiglu => 3 * m.hidden * ffn,
    }
}

/// Biases of one MLP of width `ffn`, when the model has them.
fn mlp_biases(m: &ModelSpec, ffn: u64) -> u64 {
    match (m.bias, m.mlp) {
        (false, _) => 0,
        (true, Mlp::Gelu) => ffn + m.hidden,
        (true, Mlp::Swiglu) => 2 * ffn + m.hidden,
    }
}

/// Weights of the attention block's matrices: Q, K, V and the output projection; with
/// multi-head latent attention the down projections h q and h (c + r) (or the query projection
/// h a d_qk without query compression), the up projections q a d_qk and c a (n + v), and the
/// output projection a v h.
fn attention_matrices(m: &ModelSpec) -> u64 {
    let (h, kv) = (m.hidden, m.kv_dim());
    let Some(mla) = &m.mla else {
        let q = m.heads * m.head_dim(); // h unless the head dimension is set
        return h * (q + 2 * kv) + q * h;
    };
    let a = m.heads;
    let query = match mla.q_lora_rank {
        0 => h * a * mla.qk_head_dim(),
        q => h * q + q * a * mla.qk_head_dim(),
    };
    let (c, r) = (mla.kv_lora_rank, mla.qk_rope_head_dim);
    query + h * (c + r) + c * a * (mla.qk_nope_head_dim + mla.v_head_dim) + a * mla.v_head_dim * h
}

/// Parameters of a norm over `width` elements: scale and shift, or scale only.
fn norm_params(m: &ModelSpec, width: u64) -> u64 {
    match m.norm {
        Norm::Layernorm => 2 * width,
        Norm::Rmsnorm => width,
    }
}

/// The attention block's biases and the layer's two norms (and the latents' norms with
/// multi-head latent attention, which has no biases).
fn attention_biases_and_norms(m: &ModelSpec) -> u64 {
    let (h, kv) = (m.hidden, m.kv_dim());
    let biases = if m.bias {
        (m.heads * m.qk_head_dim() + 2 * kv) + h
    } else {
        0
    };
    let latents = m
        .mla
        .map_or(0, |mla| norm_params(m, mla.q_lora_rank + mla.kv_lora_rank));
    // Qwen3's query and key norms: one over a head's width each, shared by the heads
    let qk_norms = if m.qk_norm { 2 * norm_params(m, m.head_dim()) } else { 0 };
    biases + 2 * norm_params(m, h) + latents + qk_norms
}

/// Parameters of a layer's attention block that every tensor rank holds whole: multi-head latent
/// attention's down projections and latent norms (Megatron-Core duplicates them on every tensor
/// rank); none otherwise.
fn replicated_params(m: &ModelSpec) -> u64 {
    let Some(mla) = &m.mla else {
        return 0;
    };
    let (h, q, c) = (m.hidden, mla.q_lora_rank, mla.kv_lora_rank);
    h * (q + c + mla.qk_rope_head_dim) + norm_params(m, q + c)
}

/// Parameters of global layer `layer` that every tensor rank holds whole and that, with sequence
/// parallelism, each rank's sequence shard gives only part of the gradient of, so Megatron-Core
/// all-reduces their gradients over the tensor group after the backward passes (its
/// `_allreduce_layernorm_grads`, for the weights marked `sequence_parallel`): the layer's two norms,
/// Qwen3's query and key norms, multi-head latent attention's down projections and latent norms,
/// and a mixture-of-experts layer's router.
pub fn sequence_parallel_params(m: &ModelSpec, layer: u32) -> u64 {
    let qk_norms = if m.qk_norm { 2 * norm_params(m, m.head_dim()) } else { 0 };
    let router = m.moe_at(layer).map_or(0, |moe| m.hidden * moe.experts);
    2 * norm_params(m, m.hidden) + qk_norms + replicated_params(m) + router
}

/// Parameters held by one of `tensor` ranks when `params` include the replicated ones: the rest
/// split over the ranks.
fn per_rank(m: &ModelSpec, params: u64, tensor: u32) -> u64 {
    let replicated = replicated_params(m);
    (params - replicated) / tensor as u64 + replicated
}

/// Width of the attention core's products per token pair: a (d_qk + d_v), 2 h without
/// multi-head latent attention and a head dimension of its own (scores over d_qk, context over
/// d_v, per head).
fn core_width(m: &ModelSpec) -> u64 {
    m.heads * (m.qk_head_dim() + m.v_head_dim())
}

/// Weights of one (dense) layer's matrices (no biases, no norms).
fn matrix_params(m: &ModelSpec) -> u64 {
    attention_matrices(m) + mlp_matrices(m, m.ffn())
}

/// Parameters of one dense layer: matrices, biases and norms.
pub fn layer_params(m: &ModelSpec) -> u64 {
    matrix_params(m) + mlp_biases(m, m.ffn()) + attention_biases_and_norms(m)
}

/// Parameters of one expert (routed or shared): its MLP's matrices and biases.
fn expert_params(m: &ModelSpec, moe: &MoeSpec) -> u64 {
    let ffn = moe.ffn(m.ffn());
    mlp_matrices(m, ffn) + mlp_biases(m, ffn)
}

/// Parameters of one mixture-of-experts layer: attention, norms, router, every expert.
pub fn moe_layer_params(m: &ModelSpec, moe: &MoeSpec) -> u64 {
    let experts = (moe.experts + moe.shared_experts) * expert_params(m, moe);
    attention_matrices(m) + attention_biases_and_norms(m) + m.hidden * moe.experts + experts
}

/// Weights one token's forward multiplies in a mixture-of-experts layer: attention, router, and
/// the matrices of its top_k routed and the shared experts.
fn moe_active_matrices(m: &ModelSpec, moe: &MoeSpec) -> u64 {
    let expert = mlp_matrices(m, moe.ffn(m.ffn()));
    attention_matrices(m) + m.hidden * moe.experts + (moe.top_k + moe.shared_experts) * expert
}

/// Layers of the model that are mixture-of-experts layers, the multi-token-prediction modules'
/// included (0 without `model.moe`).
pub fn moe_layers(m: &ModelSpec) -> u32 {
    m.moe.as_ref().map_or(0, |moe| moe.moe_layers(m.all_layers()))
}

/// Weights of one multi-token-prediction module besides its transformer layer: the 2h x h
/// projection that joins the embedded tokens to the hidden states, and three norms of h (the
/// two inputs' and its output's).
pub fn mtp_glue_params(m: &ModelSpec) -> u64 {
    let h = m.hidden;
    2 * h * h + 3 * norm_params(m, h)
}

/// Parameters of one dense transformer layer held by one tensor rank (GPT: (12 h^2 + 13 h) / t;
/// multi-head latent attention's replicated down projections whole on every rank).
pub fn layer_params_per_rank(model: &ModelSpec, tensor: u32) -> u64 {
    per_rank(model, layer_params(model), tensor)
}

/// Parameters of global layer `layer` held by one rank of tensor degree `tensor`, expert degree
/// `expert` and expert-tensor degree `expert_tensor`: (dense, expert). The dense part is reduced
/// over the data-parallel group, the expert part (its E / e routed experts) over the
/// expert-data-parallel group. Attention, norms and shared experts are split over the tensor
/// ranks, the router is replicated on each, and each routed expert is split over the
/// expert-tensor ranks: the tensor ranks (Megatron-Core's default expert-tensor size t), or none
/// (expert-tensor size 1: E / e whole experts per rank).
pub fn layer_params_split(model: &ModelSpec, layer: u32, tensor: u32, expert: u32, expert_tensor: u32) -> (u64, u64) {
    let et = expert_tensor.max(1) as u64;
    let Some(moe) = model.moe_at(layer) else {
        return (layer_params_per_rank(model, tensor), 0);
    };
    let one = expert_params(model, moe);
    let shared = attention_matrices(model) + attention_biases_and_norms(model) + moe.shared_experts * one;
    let local = moe.experts / expert.max(1) as u64;
    (
        per_rank(model, shared, tensor) + model.hidden * moe.experts,
        local * one / et,
    )
}

/// Embedding parameters held by one tensor rank on the first stage (and the last: the tied
/// output layer, or an untied one of the same size).
pub fn embedding_params_per_rank(model: &ModelSpec, tensor: u32) -> u64 {
    model.vocab * model.hidden / tensor as u64
}

/// Total parameters: layers, word embeddings (twice when untied), position embeddings (learned),
/// and the final norm. GPT: Megatron eq. 2, 12 l h^2 (1 + 13/(12h) + (V+s)/(12 l h)), which leaves
/// out the final LayerNorm's 2 h.
pub fn total_params(model: &ModelSpec) -> f64 {
    let (h, v, s) = (model.hidden as f64, model.vocab as f64, model.seq_len as f64);
    let words = if model.tied_embeddings { v * h } else { 2.0 * v * h };
    let position = if model.position_embeddings { s * h } else { 0.0 };
    let final_norm = if model.tied_embeddings && model.position_embeddings {
        0.0 // Megatron's eq. 2
    } else {
        match model.norm {
            Norm::Layernorm => 2.0 * h,
            Norm::Rmsnorm => h,
        }
    };
    let (dense, moe) = layer_counts(model);
    let moe_params = model.moe.as_ref().map_or(0.0, |e| moe_layer_params(model, e) as f64);
    let mtp = model.mtp_layers as f64 * mtp_glue_params(model) as f64;
    dense * layer_params(model) as f64 + moe * moe_params + mtp + words + position + final_norm
}

/// Parameters one token's forward uses: [`total_params`] with only the top_k routed experts of
/// each mixture-of-experts layer (the same as the total for a dense model).
pub fn active_params(model: &ModelSpec) -> f64 {
    let Some(moe) = &model.moe else {
        return total_params(model);
    };
    let unused = ((moe.experts - moe.top_k) * expert_params(model, moe)) as f64;
    total_params(model) - moe_layers(model) as f64 * unused
}

/// (dense layers, mixture-of-experts layers) as floating point counts, the multi-token-prediction
/// modules' layers included.
fn layer_counts(model: &ModelSpec) -> (f64, f64) {
    let moe = moe_layers(model);
    ((model.all_layers() - moe) as f64, moe as f64)
}

/// Forward FLOPs for one sequence: (the layers', the logits').
fn forward_flops_per_sequence(model: &ModelSpec) -> (f64, f64) {
    let (h, v, s) = (model.hidden as f64, model.vocab as f64, model.seq_len as f64);
    let (dense, moe) = layer_counts(model);
    let moe_matrices = model.moe.as_ref().map_or(0.0, |e| moe_active_matrices(model, e) as f64);
    // the scores and context of every head: 2 s^2 a (d_qk + d_v), 4 s^2 h when d_qk = d_v = h / a
    let core = 2.0 * s * s * core_width(model) as f64;
    let moe_flops = moe * (2.0 * s * moe_matrices + core);
    // each multi-token-prediction module: its projection (2h x h) and one more pass of the output layer
    let mtp = model.mtp_layers as f64;
    (
        dense * (2.0 * s * matrix_params(model) as f64 + core) + moe_flops + mtp * 2.0 * s * 2.0 * h * h,
        (1.0 + mtp) * 2.0 * s * h * v,
    )
}

/// Megatron's reported FLOPs per iteration (eq. 3): four forwards of the layers (forward,
/// backward = 2, one recompute) and three of the logits (not recomputed); for GPT
/// F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
pub fn megatron_flops_per_iteration(model: &ModelSpec, global_batch: u64) -> f64 {
    let (layers, logits) = forward_flops_per_sequence(model);
    global_batch as f64 * (4.0 * layers + 3.0 * logits)
}

/// Model FLOPs per iteration without recomputation (Korthikanti et al. 2022, eq. 7): three
/// forwards; for GPT 72 B l s h^2 (1 + s/(6h) + V/(12 h l)).
pub fn model_flops_per_iteration(model: &ModelSpec, global_batch: u64) -> f64 {
    let (layers, logits) = forward_flops_per_sequence(model);
    3.0 * global_batch as f64 * (layers + logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(yaml: &str) -> ModelSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn gpt_counts_are_megatrons_closed_forms() {
        let gpt175 = model("{ layers: 96, hidden: 12288, heads: 96, seq_len: 2048, vocab: 51200 }");
        let (l, h, v, s) = (96.0, 12288.0, 51200.0, 2048.0);
        // eq. 2: 12 l h^2 (1 + 13/(12h) + (V+s)/(12 l h)) = 174.6e9
        let eq2 = 12.0 * l * h * h * (1.0 + 13.0 / (12.0 * h) + (v + s) / (12.0 * l * h));
        assert!((total_params(&gpt175) / eq2 - 1.0).abs() < 1e-12);
        assert!((eq2 / 1e9 - 174.6).abs() < 0.1);
        // eq. 3: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)); model FLOPs 72 B l s h^2 (1 + s/(6h) + V/(12 h l))
        let b = 1536.0;
        let eq3 = 96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
        assert!((megatron_flops_per_iteration(&gpt175, 1536) / eq3 - 1.0).abs() < 1e-12);
        let korthikanti = 72.0 * b * l * s * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * h * l));
        assert!((model_flops_per_iteration(&gpt175, 1536) / korthikanti - 1.0).abs() < 1e-12);
    }

    const LLAMA: &str = "mlp: swiglu, norm: rmsnorm, tied_embeddings: false, bias: false, position_embeddings: false, seq_len: 8192, vocab: 128256";

    #[test]
    fn llama_3_parameter_counts_match_the_published_ones() {
        // 8B: per layer Q,K,V 4096 x (4096 + 2 x 8 x 128) = 25.17M, output 16.78M, SwiGLU
        // 3 x 4096 x 14336 = 176.16M, two RMSNorms 8192: 218.11M; x 32 = 6.980B; untied
        // embeddings 2 x 128256 x 4096 = 1.051B; final norm 4096: 8.030B (published: 8.03B)
        let m8 = model(&format!(
            "{{ layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn_hidden: 14336, {LLAMA} }}"
        ));
        assert_eq!(
            layer_params(&m8),
            4096 * 6144 + 4096 * 4096 + 3 * 4096 * 14336 + 2 * 4096
        );
        assert!((total_params(&m8) / 8.03e9 - 1.0).abs() < 0.01, "{}", total_params(&m8));
        // 70B: per layer 8192 x 10240 + 8192^2 + 3 x 8192 x 28672 + 16384 = 855.65M; x 80 = 68.45B;
        // embeddings 2 x 128256 x 8192 = 2.101B: 70.55B (published: 70.6B)
        let m70 = model(&format!(
            "{{ layers: 80, hidden: 8192, heads: 64, kv_heads: 8, ffn_hidden: 28672, {LLAMA} }}"
        ));
        assert!(
            (total_params(&m70) / 70.6e9 - 1.0).abs() < 0.01,
            "{}",
            total_params(&m70)
        );
    }

    /// Qwen3's mixture-of-experts models (config.json of Qwen/Qwen3-30B-A3B and Qwen3-235B-A22B):
    /// 128 routed experts, top 8, no shared expert, head dimension 128 whatever h / a is, query
    /// and key norms, untied embeddings of vocabulary 151936.
    const QWEN3: &str = "mlp: swiglu, norm: rmsnorm, tied_embeddings: false, bias: false, position_embeddings: false, \
                         seq_len: 4096, vocab: 151936, head_dim: 128, qk_norm: true";

    #[test]
    fn qwen3_moe_parameter_counts_match_the_published_ones() {
        // 30B-A3B (h 2048, 32 heads of 128, 4 kv heads, 48 layers, expert width 768): attention
        // 2048 x (4096 + 2 x 512) + 4096 x 2048 = 18.87M; router 2048 x 128 = 0.26M; experts
        // 128 x 3 x 2048 x 768 = 603.98M; norms 2 x 2048 + 2 x 128: 623.12M per layer, x 48 =
        // 29.910B; embeddings 2 x 151936 x 2048 = 0.622B; final norm: 30.53B (published: 30.5B).
        // Active: attention, router and 8 experts (37.75M): 56.89M x 48 + 0.622B = 3.35B (3.3B)
        let m30 = model(&format!(
            "{{ layers: 48, hidden: 2048, heads: 32, kv_heads: 4, ffn_hidden: 6144, {QWEN3}, \
               moe: {{ experts: 128, top_k: 8, ffn_hidden: 768 }} }}"
        ));
        let attention = 2048 * (4096 + 2 * 512) + 4096 * 2048;
        let layer = attention + 2048 * 128 + 128 * 3 * 2048 * 768 + 2 * 2048 + 2 * 128;
        assert_eq!(moe_layer_params(&m30, m30.moe.as_ref().unwrap()), layer);
        assert!(
            (total_params(&m30) / 30.5e9 - 1.0).abs() < 0.01,
            "{}",
            total_params(&m30)
        );
        assert!(
            (active_params(&m30) / 3.3e9 - 1.0).abs() < 0.02,
            "{}",
            active_params(&m30)
        );
        // 235B-A22B (h 4096, 64 heads of 128, 4 kv heads, 94 layers, expert width 1536):
        // attention 4096 x (8192 + 1024) + 8192 x 4096 = 71.30M; experts 128 x 3 x 4096 x 1536 =
        // 2.416B; per layer 2.487B, x 94 = 233.8B; embeddings 1.245B: 235.0B (published: 235B).
        // Active: 71.30M + 0.52M + 8 x 18.87M = 222.8M x 94 + 1.245B = 22.2B (22B)
        let m235 = model(&format!(
            "{{ layers: 94, hidden: 4096, heads: 64, kv_heads: 4, ffn_hidden: 12288, {QWEN3}, \
               moe: {{ experts: 128, top_k: 8, ffn_hidden: 1536 }} }}"
        ));
        assert!(
            (total_params(&m235) / 235e9 - 1.0).abs() < 0.01,
            "{}",
            total_params(&m235)
        );
        assert!(
            (active_params(&m235) / 22e9 - 1.0).abs() < 0.02,
            "{}",
            active_params(&m235)
        );
        // the scores and context over a x d = 8192 wide queries, not h = 4096: 4 s^2 a d per layer
        let m = model(&format!(
            "{{ layers: 1, hidden: 4096, heads: 64, kv_heads: 4, {QWEN3} }}"
        ));
        let (s, v) = (4096.0, 151936.0);
        let matrices = 4096.0 * (8192.0 + 1024.0) + 8192.0 * 4096.0 + 3.0 * 4096.0 * 16384.0;
        let forward = 2.0 * s * matrices + 4.0 * s * s * 8192.0 + 2.0 * s * 4096.0 * v;
        assert!((model_flops_per_iteration(&m, 1) / (3.0 * forward) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn llama_flops_count_every_weight_twice_per_token_plus_attention() {
        // forward per sequence: 2 s (matrix weights) l + 4 s^2 h l + 2 s h V; three forwards for
        // model FLOPs: for 8B at s = 8192, 6 x 8192 x 6.98B = 3.43e14 from the layers alone
        let m8 = model(&format!(
            "{{ layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn_hidden: 14336, {LLAMA} }}"
        ));
        let (s, h, l, v) = (8192.0, 4096.0, 32.0, 128256.0);
        let matrices = (4096.0 * 6144.0 + 4096.0 * 4096.0 + 3.0 * 4096.0 * 14336.0) * l;
        let forward = 2.0 * s * matrices + 4.0 * s * s * h * l + 2.0 * s * h * v;
        assert!((model_flops_per_iteration(&m8, 1) / (3.0 * forward) - 1.0).abs() < 1e-12);
        let logits = 2.0 * s * h * v;
        let eq3 = 4.0 * (forward - logits) + 3.0 * logits;
        assert!((megatron_flops_per_iteration(&m8, 1) / eq3 - 1.0).abs() < 1e-12);
    }
}
