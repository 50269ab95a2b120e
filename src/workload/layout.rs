//! Where each rank sits in the (tensor, data, pipeline stage) grid.
//!
//! Ranks follow Megatron's order (tensor fastest, then data, then pipeline):
//! `rank = tensor_index + t * (data_index + d * stage)`, so tensor groups sit inside a node.
//! With context parallelism of size c, Megatron-Core's order is tensor, context, data, pipeline;
//! the layout then counts d = data x context positions, position = context index + c x replica, so
//! the same formula gives Megatron-Core's ranks and every position's "data" groups are the
//! data x context groups over which gradients are reduced.

use crate::config::WorkloadSpec;

/// Position of a rank in the (tensor, data, stage) grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankCoord {
    /// Index in the tensor group.
    pub tensor: u32,
    /// Data-parallel position: the replica, or with context parallelism of size c, context index
    /// + c x replica.
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
    /// Data positions: data degree x context size.
    pub d: u32,
    /// Context-parallel size c: each c consecutive data positions hold one replica's sequence.
    pub c: u32,
}

impl Layout {
    /// Layout of a workload.
    pub fn of(w: &WorkloadSpec) -> Self {
        Layout {
            t: w.parallel.tensor,
            p: w.parallel.pipeline,
            d: w.parallel.data * w.parallel.context,
            c: w.parallel.context,
        }
    }
    /// A layout of t x p x d ranks without context parallelism.
    pub fn plain(t: u32, p: u32, d: u32) -> Self {
        Layout { t, p, d, c: 1 }
    }
    /// The data-parallel replica of a coordinate (its data position without the context index).
    pub fn replica(&self, c: RankCoord) -> u32 {
        c.data / self.c.max(1)
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
