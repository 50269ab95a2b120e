//! How the software runs a workload's kernels: attention kernels, precision of the linear layers,
//! the pipeline schedule and activation recomputation.

use serde::Deserialize;

/// Attention kernel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    /// Separate kernels storing the s x s scores (Megatron-LM 2021).
    #[default]
    Standard,
    /// FlashAttention-2 (fused, no s x s activations).
    Flash,
    /// FlashAttention 1.x (Dao et al. 2022): fused like FlashAttention-2, at its own, slower kernel
    /// speed (`gpu.flash1_attention_efficiency`); what Transformer Engine ran before July 2023.
    Flash1,
    /// cuDNN's fused flash attention, as Transformer Engine runs it on Hopper (fused, no s x s
    /// activations; its own kernel speed, `gpu.cudnn_attention_efficiency`).
    Cudnn,
}

impl Attention {
    /// The 2021 separate kernels (left out of written documents).
    pub(super) fn is_standard(&self) -> bool {
        *self == Attention::Standard
    }
    /// The fused kernels' library; none for the 2021 separate kernels.
    pub fn fused(self) -> Option<crate::ops::FusedAttention> {
        match self {
            Attention::Standard => None,
            Attention::Flash => Some(crate::ops::FusedAttention::Flash2),
            Attention::Flash1 => Some(crate::ops::FusedAttention::Flash1),
            Attention::Cudnn => Some(crate::ops::FusedAttention::Cudnn),
        }
    }
}

/// Precision of the linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 16-bit (BF16 or FP16) GEMMs.
    #[default]
    Bf16,
    /// FP8 GEMMs.
    Fp8,
}

impl Precision {
    /// 16-bit linear layers (left out of written documents).
    pub(super) fn is_16_bit(&self) -> bool {
        *self == Precision::Bf16
    }
}

/// Pipeline schedules as Megatron-LM implements them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
pub enum Schedule {
    /// All forwards, then all backwards.
    #[serde(rename = "gpipe")]
    GPipe,
    /// PipeDream-Flush: warm-up forwards, steady one-forward-one-backward, cool-down.
    #[default]
    #[serde(rename = "1f1b")]
    OneFOneB,
    /// 1F1B over v model chunks per device.
    #[serde(rename = "interleaved")]
    Interleaved,
}

impl Schedule {
    /// The YAML spelling.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::GPipe => "gpipe",
            Schedule::OneFOneB => "1f1b",
            Schedule::Interleaved => "interleaved",
        }
    }
}

/// Activation recomputation in the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Recompute {
    /// Keep all activations.
    #[default]
    None,
    /// Recompute the attention core (scores, softmax, dropout, context) only.
    Selective,
    /// Recompute each layer's whole forward before its backward.
    Full,
}

impl Recompute {
    /// The YAML spelling.
    pub fn name(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    }
}
