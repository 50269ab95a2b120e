//! Sharded sweeps and plans: one run's points split into N deterministic slices that run apart
//! (Slurm array tasks, Kubernetes indexed jobs), each writing a shard file, and merged back into
//! exactly the files the unsharded command writes.
//!
//! - [`slice`]: `--shard K/N` parsed, and the points dealt to the shards by estimated cost.
//! - [`fingerprint`]: the hash of the resolved inputs that ties the shards of one run together.
//! - [`file`]: the shard file format (a manifest and the rows), written and read back with checks.
//! - [`sweep`] and [`plan`]: running one shard of a sweep or a plan.
//! - [`merge`]: checking a set of shard files and rebuilding the complete sweep or plan.

pub mod file;
pub mod fingerprint;
pub mod merge;
pub mod plan;
pub mod slice;
pub mod sweep;

pub use file::{ShardFile, Study};
pub use slice::Shard;
