//! Helpers shared by the integration tests.

use clustersim::config::{load_run_config, Override, RunConfig, Source};
use clustersim::report::Report;
use clustersim::studies::run::{run, RunOptions};
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
    run(&cfg, &RunOptions::metrics_only(false)).unwrap().report
}

/// Simulates every rank and then one rank per stage: (every rank's report, the representative one).
pub fn every_rank_and_representative(hardware: &str, workload: &str, sets: &[String]) -> (Report, Report) {
    let cfg = config(hardware, workload, sets);
    let every = run(&cfg, &RunOptions::metrics_only(false)).unwrap().report;
    let rep = run(&cfg, &RunOptions::metrics_only(true)).unwrap().report;
    (every, rep)
}

/// Asserts that a representative run stands for every rank: it needs none of them, and gives the
/// same iteration time and exposed communication (to rounding).
pub fn assert_representative_is_exact(hardware: &str, workload: &str, sets: &[String]) -> Report {
    let (every, rep) = every_rank_and_representative(hardware, workload, sets);
    assert!(
        rep.every_rank_because.is_none(),
        "{sets:?}: {:?}",
        rep.every_rank_because
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    assert!(
        close(every.iteration_time_s, rep.iteration_time_s),
        "{sets:?}: every rank {} vs representative {}",
        every.iteration_time_s,
        rep.iteration_time_s
    );
    assert!(close(every.breakdown.exposed_comm_s, rep.breakdown.exposed_comm_s));
    every
}

/// Runs the `clustersim` binary in `dir` with `args`.
pub fn clustersim(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clustersim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs")
}

/// Runs the binary in `dir` with `args`, killing it (and failing the test) after `seconds`: a hang
/// is a bug.
pub fn clustersim_within(dir: &std::path::Path, args: &[&str], seconds: u64) -> Output {
    // CLUSTERSIM_BIN: a copy of the binary, for long runs that must not see rebuilds
    let bin = std::env::var("CLUSTERSIM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_clustersim").to_string());
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed().as_secs() >= seconds {
            let _ = child.kill();
            panic!("clustersim {args:?} still running after {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs the binary in a fresh folder holding `files` and expects bad input: exit code 2, no panic.
/// Returns "exit 2" and the error output, for snapshots.
pub fn expect_input_error(files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    expect_input_error_in(dir.path(), args)
}

/// Runs the binary in `dir` with `args` and expects bad input: exit code 2, no panic. Returns
/// "exit 2" and the error output, for snapshots.
pub fn expect_input_error_in(dir: &std::path::Path, args: &[&str]) -> String {
    let o = clustersim_within(dir, args, 10);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    format!("exit 2\n{stderr}")
}

/// The text of a file of `workloads/reference/`.
pub fn reference(file: &str) -> String {
    std::fs::read_to_string(format!("{}/workloads/reference/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Runs `clustersim run --out o` with `args` in a scratch folder and returns the timeline.json
/// it wrote.
pub fn timeline_of(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let o = clustersim(dir.path(), &[&["run", "--out", "o"][..], args].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(dir.path().join("o/timeline.json")).unwrap()
}
