//! Workloads: what runs where. The per-rank task graph, the Megatron-style generator that builds it,
//! the trace format that reads and writes it, and the memory a workload needs.
//!
//! A workload knows transformers, schedules and ranks; it must not know how long anything takes
//! (that is [`crate::model`]'s job) nor how the simulation runs it.

pub mod attention;
pub mod builder;
pub mod checkpoint;
pub mod context;
pub mod dispatch;
pub mod expert_layout;
pub mod generate;
pub mod graph;
pub mod layout;
pub mod memory;
pub mod mla;
pub mod moe;
pub mod moe_dispatch;
pub mod mtp;
pub mod params;
pub mod radix;
pub mod replication;
pub mod schedule;
pub mod step;
pub mod tensor_parallel;
pub mod trace;
pub mod transformer;

pub use generate::generate;
pub use graph::{
    CollectiveId, GroupId, OpId, Phase, Pools, Stream, TaskGraph, TaskId, TaskKind, TaskLabel, TransferId,
};
