//! Performance models: how long compute and communication take on given hardware.
//!
//! Models know nothing of transformers or schedules: compute prices kernels, the network prices
//! collectives and transfers between ranks.

pub mod cluster;
pub mod compute;
pub mod network;
pub mod storage;
pub mod topology;
