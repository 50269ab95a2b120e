//! How gradients are reduced and weights gathered across data-parallel replicas: the
//! `data_parallel` section of a workload (ZeRO stage, overlaps, gradient type, FP8 weights).

use super::document::Document;
use super::software::Precision;
use crate::error::Result;
use serde::Deserialize;

/// Element type of gradients in the data-parallel reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GradDtype {
    /// 2 bytes (Megatron's default with fp16 training).
    #[default]
    Fp16,
    /// 2 bytes.
    Bf16,
    /// 4 bytes (fp32 main gradients).
    Fp32,
}

impl GradDtype {
    /// Bytes per gradient element.
    pub fn bytes(self) -> u64 {
        match self {
            GradDtype::Fp16 | GradDtype::Bf16 => 2,
            GradDtype::Fp32 => 4,
        }
    }
}

/// How gradients are reduced across data-parallel replicas.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DataParallelSpec {
    /// Reduce each layer's gradients during the last backward pass instead of after it.
    #[serde(default)]
    pub overlap: bool,
    /// Gradient element type on the wire.
    #[serde(default)]
    pub grad_dtype: GradDtype,
    /// ZeRO stage: 0 none, 1 optimizer state sharded (Megatron's distributed optimizer),
    /// 2 also gradients, 3 also weights (FSDP).
    #[serde(default)]
    pub zero_stage: u8,
    /// The weight-gradient GEMMs accumulate straight into the gradient buffer (Megatron-LM's
    /// `--gradient-accumulation-fusion`). Off (the default, as in Megatron-LM of 2021 and in plain
    /// PyTorch), every microbatch's weight gradients are added into the buffer by a separate
    /// memory-bound kernel: read the new gradient (2 B) and read and write the buffer
    /// (`grad_dtype` bytes each) per parameter.
    #[serde(default)]
    pub gradient_accumulation_fusion: bool,
    /// Gradients live in one contiguous buffer per dtype (Megatron-LM's
    /// `--use-contiguous-buffers-in-ddp`, later the default). Off, as in the SC'21 runs: the
    /// gradients are the parameters' own `.grad` tensors, which the data-parallel reduction flattens
    /// into one tensor, divides, all-reduces and copies back. fp32 gradients always use the buffer
    /// (Megatron-LM's `--accumulate-allreduce-grads-in-fp32` turns it on).
    #[serde(default)]
    pub contiguous_buffer: bool,
    /// With ZeRO 1 or 2, all-gather the updated weights layer by layer during the next forward
    /// pass instead of after the optimizer step (Megatron-Core's `--overlap-param-gather`): in one
    /// simulated iteration, each layer's gather runs on the data-parallel stream from the start and
    /// the layer's first forward waits for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overlap_param_gather: bool,
    /// Gather the weights of the blocks' linear layers in FP8, 1 byte each instead of 2, wherever
    /// the data-parallel group gathers weights (ZeRO 1 and 2 after the step, ZeRO 3 before each
    /// use): Transformer Engine's FP8 parameters, as Megatron-Core's `--fp8-param-gather` and NeMo's
    /// `fp8_params` keep them. Needs `precision: fp8`; embeddings, norms and routed experts stay
    /// 16-bit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fp8_param_gather: bool,
}

impl DataParallelSpec {
    /// Whether gradients accumulate in a contiguous buffer (asked for, or implied by fp32 gradients).
    pub fn grad_buffer(&self) -> bool {
        self.contiguous_buffer || self.grad_dtype == GradDtype::Fp32
    }

    /// Bytes per parameter of a weight all-gather: 1 for the blocks' linear layers gathered in
    /// FP8, else 2 (16-bit weights).
    pub fn gather_bytes_per_param(&self, linear_layers: bool) -> u64 {
        if self.fp8_param_gather && linear_layers {
            1
        } else {
            2
        }
    }

    /// Checks the section against the rest of the workload; errors name the YAML path.
    pub(super) fn validate(&self, doc: &Document, precision: Precision) -> Result<()> {
        if self.zero_stage > 3 {
            return Err(doc.field_error(
                "data_parallel.zero_stage",
                "unknown ZeRO stage: expected 0 (none), 1 (optimizer state), 2 (+ gradients) or 3 (+ weights)",
            ));
        }
        if self.overlap_param_gather && !matches!(self.zero_stage, 1 | 2) {
            return Err(doc.field_error(
                "data_parallel.overlap_param_gather",
                "overlaps the all-gather of the weights that ZeRO 1 and 2 shard: it needs `data_parallel.zero_stage` 1 or 2",
            ));
        }
        if self.fp8_param_gather && precision != Precision::Fp8 {
            return Err(doc.field_error(
                "data_parallel.fp8_param_gather",
                "gathers FP8 weights, which only FP8 training keeps: it needs `precision: fp8`",
            ));
        }
        Ok(())
    }
}
