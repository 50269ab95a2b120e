//! Inputs the command-line audit found silently misread (an option ignored, a sweep column that
//! does not say what ran, a plot of nothing) or reported in Rust's words, and output folders shared
//! by two runs at once. Refusals exit 2 with a snapshot of the message.

use super::common::{clustersim, expect_input_error, expect_input_error_in};
use std::path::Path;

const TRACE_HEADER_ONLY: &str = "{\"format\":\"clustersim-trace\",\"version\":1,\"name\":\"empty\",\"ranks\":2}\n";

/// A one-key sweep spec with `rest` appended (more axes, a plot).
fn spec(rest: &str) -> String {
    format!("name: s\naxes:\n  - {{ key: workload.batch.global, values: [64] }}\n{rest}")
}

/// `clustersim sweep` of a spec with this text: exit 2 and the message.
fn sweep_error(text: &str) -> String {
    expect_input_error(&[("s.yaml", text)], &["sweep", "s.yaml", "--out", "o"])
}

/// `clustersim cluster` of a spec with this text: exit 2 and the message.
fn cluster_error(text: &str) -> String {
    expect_input_error(&[("c.yaml", text)], &["cluster", "--no-output", "c.yaml"])
}

#[test]
fn sweep_axis_key_given_twice() {
    let s = spec("  - { key: workload.batch.global, values: [128] }\n");
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_axis_key_twice_in_a_zip() {
    let s = spec("  - zip: { workload.batch.micro: [1, 2], workload.batch.global: [64, 128] }\n");
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_plot_x_not_an_axis() {
    let s = spec("plot: { file: p, x: [workload.batch.micro], y: tflops_per_gpu }\n");
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_plot_series_not_an_axis() {
    let s = spec("plot: { file: p, x: [workload.batch.global], y: mfu, series: [workload.batch.micro] }\n");
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_plot_y_not_a_metric() {
    let s = spec("plot: { file: p, x: [workload.batch.global], y: speed }\n");
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_set_with_an_unknown_key() {
    let s = format!("set: [workload.batch.glob=3]\n{}", spec(""));
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_set_without_equals() {
    let s = format!("set: [workload.batch.global]\n{}", spec(""));
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn sweep_axis_key_of_no_document() {
    let s = "name: s\naxes: [{ key: foo.bar, values: [1] }]\n";
    insta::assert_snapshot!(sweep_error(s));
}

#[test]
fn sweep_hardware_file_missing() {
    let s = format!("hardware: nohw.yaml\n{}", spec(""));
    insta::assert_snapshot!(sweep_error(&s));
}

#[test]
fn cluster_job_names_twice() {
    let job = "{ name: a, workload: gpt-5.9b, set: [\"workload.parallel.tensor=8\", \"workload.parallel.pipeline=1\", \"workload.parallel.data=1\", \"workload.batch.global=8\"] }";
    let c = format!("name: c\nset: [\"hardware.nodes=2\"]\njobs:\n  - {job}\n  - {job}\n");
    insta::assert_snapshot!(cluster_error(&c));
}

#[test]
fn cluster_placement_not_a_policy() {
    let c = "name: c\njobs:\n  - { name: a, placement: nowhere }\n";
    insta::assert_snapshot!(cluster_error(c));
}

#[test]
fn workload_that_is_a_list() {
    insta::assert_snapshot!(expect_input_error(
        &[("w.yaml", "- 1\n- 2\n")],
        &["run", "--no-output", "--workload", "w.yaml"]
    ));
}

#[test]
fn whole_number_in_exponent_notation() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &["run", "--no-output", "--set", "workload.batch.global=1e12"]
    ));
}

#[test]
fn trace_without_tasks() {
    insta::assert_snapshot!(expect_input_error(
        &[("t.jsonl", TRACE_HEADER_ONLY)],
        &["run", "--no-output", "--trace", "t.jsonl"]
    ));
}

#[test]
fn trace_run_with_iterations() {
    insta::assert_snapshot!(expect_input_error(
        &[("t.jsonl", TRACE_HEADER_ONLY)],
        &["run", "--no-output", "--trace", "t.jsonl", "--iterations", "3"]
    ));
}

/// The report's seed as JSON text from `run --config report.json ARGS`.
fn rerun_seed(dir: &Path, args: &[&str]) -> String {
    let o = clustersim(
        dir,
        &[
            &["run", "--no-output", "--format", "json", "--config", "r/report.json"],
            args,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    report["seed"].to_string()
}

/// `--config` reruns the recorded seed unless `--seed` gives another.
#[test]
fn config_rerun_takes_the_given_seed() {
    let dir = tempfile::tempdir().unwrap();
    let o = clustersim(dir.path(), &["run", "--out", "r", "--seed", "3", "--timeline", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rerun_seed(dir.path(), &[]), "3");
    assert_eq!(rerun_seed(dir.path(), &["--seed", "5"]), "5");
}

#[test]
fn config_with_a_negative_seed() {
    let dir = tempfile::tempdir().unwrap();
    let o = clustersim(dir.path(), &["run", "--out", "r", "--timeline", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(dir.path().join("r/report.json")).unwrap();
    let text = text.replace("\"seed\": 1,", "\"seed\": -1,");
    insta::assert_snapshot!(expect_input_error(
        &[("report.json", &text)],
        &["run", "--no-output", "--config", "report.json"]
    ));
}

/// Two different runs into one folder at once, 12 times: the folder always holds one run's
/// complete set of files (report, stages, timeline and schedule of the same run), never a mix.
#[test]
fn concurrent_different_runs_leave_one_complete_set() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_clustersim");
    let args = |batch: &str, out: &str| {
        vec![
            "run".to_string(),
            "--out".into(),
            out.into(),
            "--set".into(),
            format!("workload.batch.global={batch}"),
        ]
    };
    const FILES: [&str; 5] = [
        "report.json",
        "stages.csv",
        "timeline.json",
        "schedule.png",
        "schedule.svg",
    ];
    for (batch, out) in [("64", "a"), ("128", "b")] {
        assert!(clustersim(
            dir.path(),
            &args(batch, out).iter().map(String::as_str).collect::<Vec<_>>()
        )
        .status
        .success());
    }
    let read = |folder: &str| -> Vec<Vec<u8>> {
        FILES
            .iter()
            .map(|f| std::fs::read(dir.path().join(folder).join(f)).unwrap())
            .collect()
    };
    let (a, b) = (read("a"), read("b"));
    for _ in 0..12 {
        let _ = std::fs::remove_dir_all(dir.path().join("shared"));
        let children: Vec<_> = ["64", "128"]
            .iter()
            .map(|batch| {
                std::process::Command::new(bin)
                    .args(args(batch, "shared"))
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let shared = read("shared");
        assert!(shared == a || shared == b, "the folder mixes the two runs' files");
    }
}

/// A list element's error inside a `--set` names the `--set`, not the file it was applied to.
#[test]
fn slowdown_of_a_missing_gpu_names_the_set() {
    let set = "hardware.gpu.slowdown=[{ranks: [99999], factor: 2}]";
    insta::assert_snapshot!(expect_input_error(&[], &["run", "--no-output", "--set", set]));
}

/// `run` of two nodes split t8 p2 with `set` as one more `--set`: exit 2 and the message.
fn two_nodes_error(set: &str) -> String {
    let split = "hardware.nodes=2 workload.parallel.tensor=8 workload.parallel.pipeline=2 workload.parallel.data=1";
    let mut args = vec!["run", "--no-output"];
    for s in split.split(' ').chain([set]) {
        args.extend(["--set", s]);
    }
    expect_input_error(&[("w.yaml", "name: w\n")], &args)
}

#[test]
fn node_group_gpu_file_missing() {
    insta::assert_snapshot!(two_nodes_error("hardware.node_groups=[{count: 1, gpu: nonexist.yaml}]"));
}

#[test]
fn node_group_gpu_file_not_hardware() {
    insta::assert_snapshot!(two_nodes_error("hardware.node_groups=[{count: 1, gpu: w.yaml}]"));
}

#[test]
fn node_group_gpu_neither_name_nor_section() {
    insta::assert_snapshot!(two_nodes_error("hardware.node_groups=[{count: 1, gpu: 5}]"));
}

/// `--no-output` with `--out`: contradictory, refused (it used to drop `--out` silently).
#[test]
fn out_and_no_output_together() {
    for command in [
        "run",
        "plan --gpus 8",
        "collective",
        "train --tokens 1e9",
        "cluster c.yaml",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--no-output", "--out", "o"]);
        let message = expect_input_error(&[], &args);
        assert!(message.contains("cannot be used with"), "{command}: {message}");
    }
}

/// A named pipe with no writer, given as an input file, is refused at once (opening it used to wait
/// for a writer forever); a folder is refused too. A pipe with a writer reads as a file.
#[test]
fn input_that_is_a_pipe_or_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe.yaml"))
        .status();
    assert!(made.map(|s| s.success()).unwrap_or(false), "mkfifo runs");
    std::fs::create_dir(dir.path().join("folder.yaml")).unwrap();
    for (args, says) in [
        (
            ["run", "--no-output", "--workload", "pipe.yaml"],
            "a named pipe with nothing written to it",
        ),
        (
            ["run", "--no-output", "--hardware", "pipe.yaml"],
            "a named pipe with nothing written to it",
        ),
        (
            ["run", "--no-output", "--trace", "pipe.yaml"],
            "a named pipe with nothing written to it",
        ),
        (
            ["run", "--no-output", "--workload", "folder.yaml"],
            "a folder, not a file",
        ),
    ] {
        let message = expect_input_error_in(dir.path(), &args);
        assert!(message.contains(says), "{args:?}: {message}");
    }
    let message = expect_input_error_in(dir.path(), &["sweep", "pipe.yaml", "--out", "o"]);
    assert!(message.contains("a named pipe with nothing written to it"), "{message}");
    // a writer: the shell's `<(cat w.yaml)` is such a pipe
    let workload = std::fs::read_to_string(format!("{}/workloads/gpt-5.9b.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let pipe = dir.path().join("pipe.yaml");
    let writer = std::thread::spawn(move || std::fs::write(pipe, workload).unwrap());
    // the writer waits in open() for a reader (and counts as the pipe's writer) before clustersim reads
    std::thread::sleep(std::time::Duration::from_millis(100));
    let o = super::common::clustersim_within(dir.path(), &["run", "--no-output", "--workload", "pipe.yaml"], 10);
    writer.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A run killed mid-write leaves its temporary behind; the next run writing the folder removes it,
/// and leaves alone a temporary whose process still runs (here: this test's).
#[test]
fn temporaries_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    // 4294967295 is above any Linux pid_max (at most 2^22): no process has it
    let stale = out.join(".report.4294967295.0.partial.json");
    let live = out.join(format!(".report.{}.0.partial.json", std::process::id()));
    std::fs::write(&stale, "{").unwrap();
    std::fs::write(&live, "{").unwrap();
    let o = clustersim(dir.path(), &["run", "--out", "o", "--timeline", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stale.exists(), "the dead run's temporary is left");
    assert!(live.exists(), "a live process's temporary was removed");
    assert!(out.join("report.json").exists());
}
