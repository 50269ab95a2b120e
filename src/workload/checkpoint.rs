//! What a Megatron-style checkpoint holds and which nodes write and read it; how long that takes is
//! the storage model's business.

use super::layout::{Layout, RankCoord};
use super::transformer::total_params;
use crate::config::WorkloadSpec;

/// Bytes per parameter in a Megatron checkpoint: 16-bit weights (2), fp32 master weights (4),
/// Adam momentum and variance (4 + 4). For GPT-1T: 14 x 1.0e12 = 14 TB, as SC'21 reports 13.8 TB.
pub const CHECKPOINT_BYTES_PER_PARAM: u64 = 14;

/// A checkpoint of a workload: its size and the nodes that move it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointShape {
    /// Total bytes.
    pub bytes: f64,
    /// Nodes that write it: those of data-parallel replica 0 (each model-parallel rank writes its shard).
    pub writer_nodes: u32,
    /// Nodes that read it back: all nodes of the job.
    pub reader_nodes: u32,
}

/// The checkpoint of `w` when its ranks fill nodes of `gpus_per_node` GPUs in rank order.
pub fn checkpoint_shape(w: &WorkloadSpec, gpus_per_node: u32) -> CheckpointShape {
    let bytes = CHECKPOINT_BYTES_PER_PARAM as f64 * total_params(&w.model);
    let lay = Layout::of(w);
    let mut writers: Vec<u32> = (0..lay.p)
        .flat_map(|stage| (0..lay.t).map(move |tensor| lay.rank(RankCoord { tensor, data: 0, stage }) / gpus_per_node))
        .collect();
    writers.sort_unstable();
    writers.dedup();
    CheckpointShape {
        bytes,
        writer_nodes: writers.len() as u32,
        reader_nodes: lay.ranks().div_ceil(gpus_per_node),
    }
}
