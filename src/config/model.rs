//! The model's shape: GPT's (Megatron notation l, h, a, s, V) and Llama-style variants.

use serde::Deserialize;

fn yes() -> bool {
    true
}

/// Model shape (Megatron notation: l, h, a, s, V), with Llama-style options.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Transformer layers l.
    pub layers: u32,
    /// Hidden size h.
    pub hidden: u64,
    /// Attention heads a.
    pub heads: u64,
    /// Sequence length s.
    pub seq_len: u64,
    /// Vocabulary V; 0 leaves out the embedding and output layers (schedule studies).
    pub vocab: u64,
    /// Key/value heads (grouped-query attention); `heads` unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u64>,
    /// Width of one attention head's queries, keys and values; h / a unless stated (Qwen3 sets
    /// 128 whatever h and a are, so its query width a x 128 need not be h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// RMSNorm over each head's queries and keys before attention (Qwen3's `qk_layernorm`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub qk_norm: bool,
    /// MLP width; 4 h unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_hidden: Option<u64>,
    /// MLP kind: `gelu` (GPT: two matrices) or `swiglu` (Llama: three).
    #[serde(default, skip_serializing_if = "Mlp::is_gelu")]
    pub mlp: Mlp,
    /// Normalisation: `layernorm` (scale and shift) or `rmsnorm` (scale only).
    #[serde(default, skip_serializing_if = "Norm::is_layernorm")]
    pub norm: Norm,
    /// Input embedding and output layer share their weights (GPT) or not (Llama).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub tied_embeddings: bool,
    /// Linear layers have biases (GPT) or not (Llama).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub bias: bool,
    /// Learned position embeddings (GPT: s x h parameters) or rotary ones (Llama: none).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub position_embeddings: bool,
    /// Mixture-of-experts layers (absent: every layer has the dense MLP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<super::moe::MoeSpec>,
    /// Multi-head latent attention (absent: multi-head or grouped-query attention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<super::mla::MlaSpec>,
    /// Multi-token prediction depth D (DeepSeek-V3: 1; Megatron-Core's `--mtp-num-layers`): after the
    /// last layer, D modules each embed the tokens one further ahead, join them to the previous
    /// depth's hidden states (two RMSNorms and a 2h x h projection), run one more transformer layer
    /// (global layer index `layers` + k, a mixture-of-experts layer by the same rule as the others)
    /// and predict through the shared output layer; all on the last pipeline stage.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub mtp_layers: u32,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// MLP kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// h -> ffn -> h with GeLU (two matrices).
    #[default]
    Gelu,
    /// SwiGLU: gate and up h -> ffn, SiLU(gate) x up, down ffn -> h (three matrices).
    Swiglu,
}

impl Mlp {
    fn is_gelu(&self) -> bool {
        *self == Mlp::Gelu
    }
}

/// Normalisation layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// LayerNorm: scale and shift (2 h parameters).
    #[default]
    Layernorm,
    /// RMSNorm: scale only (h parameters).
    Rmsnorm,
}

impl Norm {
    fn is_layernorm(&self) -> bool {
        *self == Norm::Layernorm
    }
}

impl ModelSpec {
    /// Key/value heads.
    pub fn kv_heads(&self) -> u64 {
        self.kv_heads.unwrap_or(self.heads)
    }
    /// MLP width.
    pub fn ffn(&self) -> u64 {
        self.ffn_hidden.unwrap_or(4 * self.hidden)
    }
    /// Transformer layers including the multi-token-prediction modules' (global indices
    /// 0 .. layers + mtp_layers).
    pub fn all_layers(&self) -> u32 {
        self.layers + self.mtp_layers
    }
    /// The mixture-of-experts section when global layer `layer` is a mixture-of-experts layer.
    pub fn moe_at(&self, layer: u32) -> Option<&super::moe::MoeSpec> {
        self.moe.as_ref().filter(|m| m.is_moe_layer(layer))
    }
    /// Width of one head without multi-head latent attention: `head_dim`, or h / a.
    pub fn head_dim(&self) -> u64 {
        self.head_dim.unwrap_or(self.hidden / self.heads.max(1))
    }
    /// Width of the keys (and of the values): kv_heads x head dimension.
    pub fn kv_dim(&self) -> u64 {
        self.kv_heads() * self.head_dim()
    }
    /// Width of one head's queries and keys: the head dimension, or d_h + d_h^R with multi-head
    /// latent attention.
    pub fn qk_head_dim(&self) -> u64 {
        self.mla.map_or(self.head_dim(), |m| m.qk_head_dim())
    }
    /// Width of one head's values: the head dimension, or `v_head_dim` with multi-head latent
    /// attention.
    pub fn v_head_dim(&self) -> u64 {
        self.mla.map_or(self.head_dim(), |m| m.v_head_dim)
    }
}
