//! `run --iterations N`: the same iteration simulated with more seeds (noise, seeded stragglers).

use crate::config::RunConfig;
use crate::error::Result;
use crate::sim::{network_for, simulate_on, NoSpans, SimOptions};
use crate::workload::TaskGraph;

/// Iteration times of `graph` with seeds `seed + 1` to `seed + extra` (the run with `seed` itself
/// is the caller's).
pub fn more_iterations(cfg: &RunConfig, graph: &TaskGraph, seed: u64, extra: u32) -> Result<Vec<f64>> {
    (1..=extra as u64)
        .map(|i| {
            let net = network_for(graph, &cfg.hardware).map_err(crate::error::Error::Internal)?;
            let out = simulate_on(
                graph,
                &cfg.hardware,
                net,
                SimOptions {
                    seed: seed.wrapping_add(i),
                },
                &mut NoSpans,
            )?;
            Ok(out.makespan.as_secs_f64())
        })
        .collect()
}
