//! Workloads: the per-rank task graph and the generators that build it.

pub mod generate;
pub mod graph;
pub mod memory;
pub mod schedule;
pub mod trace;
pub mod transformer;

pub use generate::generate;
pub use graph::{
    CollectiveId, CollectiveOp, GroupId, Kernel, OpId, Phase, Stream, TaskGraph, TaskId, TaskKind, TaskLabel,
    TransferId,
};
