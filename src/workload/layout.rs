//! Where each rank sits in the (tensor, data, pipeline stage) grid.
//!
//! Ranks follow Megatron's order (tensor fastest, then data, then pipeline):
//! `rank = tensor_index + t * (data_index + d * stage)`, so tensor groups sit inside a node.

use crate::config::WorkloadSpec;

/// Position of a rank in the (tensor, data, stage) grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankCoord {
    /// Index in the tensor group.
    pub tensor: u32,
    /// Data-parallel replica.
    pub data: u32,
    /// Pipeline stage.
    pub stage: u32,
}

/// The rank layout of a workload.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Tensor degree.
    pub t: u32,
    /// Pipeline degree.
    pub p: u32,
    /// Data degree.
    pub d: u32,
}

impl Layout {
    /// Layout of a workload.
    pub fn of(w: &WorkloadSpec) -> Self {
        Layout {
            t: w.parallel.tensor,
            p: w.parallel.pipeline,
            d: w.parallel.data,
        }
    }
    /// Rank of a coordinate.
    pub fn rank(&self, c: RankCoord) -> u32 {
        c.tensor + self.t * (c.data + self.d * c.stage)
    }
    /// Coordinate of a rank.
    pub fn coord(&self, rank: u32) -> RankCoord {
        RankCoord {
            tensor: rank % self.t,
            data: (rank / self.t) % self.d,
            stage: rank / (self.t * self.d),
        }
    }
    /// Total ranks.
    pub fn ranks(&self) -> u32 {
        self.t * self.p * self.d
    }
}
