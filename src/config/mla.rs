//! Multi-head latent attention (DeepSeek-V2 and V3): the `model.mla` section and its checks.
//!
//! MLA replaces the Q, K, V projection of a layer by low-rank ones: the layer input (width h) is
//! projected down to a query latent of width `q_lora_rank` (none when 0: the queries are projected
//! from h directly, as in DeepSeek-V2-Lite) and to a key/value latent of width `kv_lora_rank` plus
//! one shared rotary key of width `qk_rope_head_dim`; each latent passes an RMSNorm and is projected
//! up to every head's query (`qk_nope_head_dim` + `qk_rope_head_dim` wide), key (the same) and value
//! (`v_head_dim` wide). Attention runs per head with those widths, and the output projection maps
//! heads x `v_head_dim` back to h. Names and meaning as in DeepSeek's config.json and
//! Megatron-Core's `MLATransformerConfig`.

use super::{Document, WorkloadSpec};
use crate::error::Result;
use serde::Deserialize;

/// Largest latent or head width accepted (the model's hidden size has the same bound).
const WIDTH_MAX: u64 = 1 << 20;

/// The latent dimensions of a model's multi-head latent attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MlaSpec {
    /// Width of the query latent d'_c; 0 (the default): no query compression, the queries are
    /// projected from the layer input.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub q_lora_rank: u64,
    /// Width of the key/value latent d_c.
    pub kv_lora_rank: u64,
    /// Per-head width of the query and key part without rotary positions, d_h.
    pub qk_nope_head_dim: u64,
    /// Per-head width of the rotary query part, and of the one rotary key all heads share, d_h^R.
    pub qk_rope_head_dim: u64,
    /// Per-head width of the values.
    pub v_head_dim: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl MlaSpec {
    /// Width of one head's queries and keys: d_h + d_h^R.
    pub fn qk_head_dim(&self) -> u64 {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }
}

/// Checks `model.mla` against the rest of the model and the split.
pub fn check(w: &WorkloadSpec, doc: &Document) -> Result<()> {
    let m = &w.model;
    let Some(mla) = &m.mla else {
        return Ok(());
    };
    for (path, v, least) in [
        ("model.mla.q_lora_rank", mla.q_lora_rank, 0),
        ("model.mla.kv_lora_rank", mla.kv_lora_rank, 1),
        ("model.mla.qk_nope_head_dim", mla.qk_nope_head_dim, 1),
        ("model.mla.qk_rope_head_dim", mla.qk_rope_head_dim, 1),
        ("model.mla.v_head_dim", mla.v_head_dim, 1),
    ] {
        if v < least || v > WIDTH_MAX {
            return Err(doc.field_error(path, format!("must be between {least} and {WIDTH_MAX}")));
        }
    }
    if let Some(d) = m.head_dim {
        return Err(doc.field_error(
            "model.head_dim",
            format!(
                "multi-head latent attention (model.mla) sets its own head widths (qk_nope_head_dim, qk_rope_head_dim, \
                 v_head_dim): leave head_dim ({d}) out"
            ),
        ));
    }
    if let Some(kv) = m.kv_heads.filter(|&kv| kv != m.heads) {
        return Err(doc.field_error(
            "model.kv_heads",
            format!(
                "multi-head latent attention (model.mla) projects its latent up to keys and values for every head: \
                 kv_heads {kv} must equal model.heads ({}) or be left out",
                m.heads
            ),
        ));
    }
    if m.bias {
        return Err(doc.field_error(
            "model.bias",
            "multi-head latent attention (model.mla) has no biases (as DeepSeek and Megatron-Core build it): set `bias: false`",
        ));
    }
    Ok(())
}
