//! Helpers shared by the integration tests.

use clustersim::config::{load_run_config, Override, RunConfig, Source};
use clustersim::report::timeline::TimelineRanks;
use clustersim::report::Report;
use clustersim::run::{run, RunOptions};
use std::process::{Command, Output};

/// Loads presets with `--set` style overrides.
pub fn config(hardware: &str, workload: &str, sets: &[String]) -> RunConfig {
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    load_run_config(
        &Source::Named(hardware.into()),
        &Source::Named(workload.into()),
        &overrides,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Simulates and returns the report (no files, no spans).
pub fn report(hardware: &str, workload: &str, sets: &[String]) -> Report {
    let cfg = config(hardware, workload, sets);
    run(
        &cfg,
        &RunOptions {
            seed: 1,
            timeline: TimelineRanks::None,
            representative: false,
        },
    )
    .unwrap()
    .report
}

/// Runs the `clustersim` binary in `dir` with `args`.
pub fn clustersim(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clustersim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs")
}
