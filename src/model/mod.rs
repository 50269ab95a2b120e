//! Performance models: how long compute and communication take on given hardware.
//!
//! Models know nothing of transformers or schedules: compute prices kernels, the network prices
//! collectives and transfers between ranks, storage prices bytes and node counts. They speak the
//! shared vocabulary of [`crate::ops`] and must not import [`crate::workload`].

pub mod cluster;
pub mod compute;
pub mod network;
pub mod storage;
pub mod topology;
