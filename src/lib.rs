//! # clustersim
//!
//! A discrete-event performance simulator for GPU clusters that train large models.
//!
//! Data flows one way:
//!
//! ```text
//! hardware/*.yaml, workloads/*.yaml, --set ─→ config (validated specs)
//!   ─→ workload (per-rank TaskGraph: generated, or read from a trace)  ┐
//!   ─→ model (compute, network, storage: how long things take)        ├→ sim (engine runs events)
//!   ─→ engine (event queue)                                           ┘
//!   ─→ report (metrics, JSON, Chrome trace, plots) ─→ studies (run, sweep, plan, ...) ─→ commands
//! ```
//!
//! Rooms, lowest first: [`units`], [`fasthash`], [`error`], [`ops`] (the kernel and collective vocabulary),
//! [`config`], [`engine`], [`model`], [`workload`], [`sim`], [`report`], [`studies`], [`cli`],
//! [`commands`]. A room imports only rooms below it. Configs know nothing of the engine; the engine
//! knows nothing of GPUs; models know nothing of transformers; only [`sim`] joins them.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod fasthash;
pub mod model;
pub mod ops;
pub mod report;
pub mod sim;
pub mod studies;
pub mod units;
pub mod workload;
