//! The one integration-test binary: analytic checks, formulas, determinism and CLI errors.

mod bubbles;
mod chakra;
mod cluster;
mod common;
mod context;
mod deploy;
mod determinism;
mod errors;
mod formulas;
mod fuzz;
mod host;
mod hostile;
mod models;
mod moe;
mod network;
mod nics;
mod planner;
mod pools;
mod published;
mod representative;
mod shards;
mod sweeps;
mod traces;
mod training;
mod validation;
mod whatif;
