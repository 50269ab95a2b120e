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

use crate::config::{Mlp, ModelSpec, Norm};

/// Weights of one layer's matrices (no biases, no norms).
fn matrix_params(m: &ModelSpec) -> u64 {
    let (h, kv, ffn) = (m.hidden, m.kv_dim(), m.ffn());
    let mlp = match m.mlp {
        Mlp::Gelu => 2 * h * ffn,
        Mlp::Swiglu => 3 * h * ffn,
    };
    h * (h + 2 * kv) + h * h + mlp
}

/// Parameters of one layer: matrices, biases and norms.
pub fn layer_params(m: &ModelSpec) -> u64 {
    let (h, kv, ffn) = (m.hidden, m.kv_dim(), m.ffn());
    let biases = if m.bias {
        let mlp = match m.mlp {
            Mlp::Gelu => ffn + h,
            Mlp::Swiglu => 2 * ffn + h,
        };
        (h + 2 * kv) + h + mlp
    } else {
        0
    };
    let norms = match m.norm {
        Norm::Layernorm => 4 * h,
        Norm::Rmsnorm => 2 * h,
    };
    matrix_params(m) + biases + norms
}

/// Parameters of one transformer layer held by one tensor rank (GPT: (12 h^2 + 13 h) / t).
pub fn layer_params_per_rank(model: &ModelSpec, tensor: u32) -> u64 {
    layer_params(model) / tensor as u64
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
    let (l, h, v, s) = (
        model.layers as f64,
        model.hidden as f64,
        model.vocab as f64,
        model.seq_len as f64,
    );
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
    l * layer_params(model) as f64 + words + position + final_norm
}

/// Forward FLOPs for one sequence: (the layers', the logits').
fn forward_flops_per_sequence(model: &ModelSpec) -> (f64, f64) {
    let (l, h, v, s) = (
        model.layers as f64,
        model.hidden as f64,
        model.vocab as f64,
        model.seq_len as f64,
    );
    (
        l * (2.0 * s * matrix_params(model) as f64 + 4.0 * s * s * h),
        2.0 * s * h * v,
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
