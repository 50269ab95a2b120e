//! Context parallelism: the `parallel.context` split and what it can run with.
//!
//! Context parallelism of size c splits every sequence over c ranks, as Megatron-Core does it:
//! the sequence is cut into 2c chunks and rank k holds chunks k and 2c - 1 - k (the load-balanced
//! "zig-zag" assignment, so that under the causal mask every rank has the same attention work),
//! and attention runs as a ring: the ranks pass their keys and values around the
//! context-parallel group by send/receive while each computes attention against the chunk it
//! holds (see [`crate::workload::context`]). The context-parallel group sits between tensor and
//! data in Megatron-Core's rank order (tp-cp-ep-dp-pp): rank = tensor + t (context + c (data + d
//! stage)). Weights are the same on every rank of the group, so gradients are reduced over data x
//! context. A mixture-of-experts model's expert-parallel groups are carved out of data x context
//! (see [`super::moe`]).

use super::{Document, WorkloadSpec};
use crate::error::Result;

/// "tensor x pipeline x data = t x p x d = N" (with the context size between tensor and pipeline
/// when it is above 1), for messages about the GPU count.
pub fn split_product(w: &WorkloadSpec) -> String {
    let p = &w.parallel;
    if p.context > 1 {
        format!(
            "tensor x context x pipeline x data = {} x {} x {} x {} = {}",
            p.tensor,
            p.context,
            p.pipeline,
            p.data,
            w.gpus_needed()
        )
    } else {
        format!(
            "tensor x pipeline x data = {} x {} x {} = {}",
            p.tensor,
            p.pipeline,
            p.data,
            w.gpus_needed()
        )
    }
}

/// Checks `parallel.context` against the model and the software.
pub fn check(w: &WorkloadSpec, doc: &Document) -> Result<()> {
    let c = w.parallel.context;
    if c == 0 {
        return Err(doc.field_error("parallel.context", "must be at least 1 (1: no context parallelism)"));
    }
    if c == 1 {
        return Ok(());
    }
    if w.attention.fused().is_none() {
        return Err(doc.field_error(
            "attention",
            format!(
                "context parallelism (parallel.context = {c}) runs ring attention on fused kernels, as Megatron-Core does, \
                 not on the separate 2021 kernels (`standard`, the default, which store whole s x s scores): \
                 use `attention: flash` or `cudnn`"
            ),
        ));
    }
    let s = w.model.seq_len;
    if s % (2 * c as u64) != 0 {
        return Err(doc.field_error(
            "parallel.context",
            format!(
                "model.seq_len ({s}) cannot be cut into 2 x context = {} equal chunks (each rank holds two, for the causal load balance)",
                2 * c as u64
            ),
        ));
    }
    Ok(())
}
