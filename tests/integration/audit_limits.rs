//! Sizes and endless inputs that every command refuses up front (exit 2, a message saying what the
//! input would need), found by the command-line audit: none may allocate gigabytes, spin for
//! minutes or be killed for its memory first. Each case runs under a 10 s timeout.

use super::common::{clustersim, expect_input_error, expect_input_error_in};

/// A GPT 5.9B job on 8 nodes with a global batch of 10^8 sequences: about 5e10 tasks, 1.5 TiB.
const HUGE_BATCH_JOB: &str = "name: c
set: [\"hardware.nodes=8\"]
jobs:
  - { name: a, workload: gpt-5.9b, set: [\"workload.batch.global=100000000\"], placement: packed }
";

#[test]
fn cluster_job_beyond_the_memory_limit() {
    insta::assert_snapshot!(expect_input_error(
        &[("c.yaml", HUGE_BATCH_JOB)],
        &["cluster", "--no-output", "c.yaml"]
    ));
}

#[test]
fn trace_export_beyond_the_memory_limit() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "trace",
            "export",
            "--out",
            "t.jsonl",
            "--set",
            "workload.batch.global=100000000"
        ]
    ));
}

/// /dev/zero as a JSON Lines trace: one line that never ends.
#[test]
fn trace_of_one_endless_line() {
    insta::assert_snapshot!(expect_input_error(&[], &["run", "--no-output", "--trace", "/dev/zero"]));
}

/// Communicator groups read from /dev/zero: refused at the size limit of a YAML or JSON input.
#[test]
fn comm_groups_from_dev_zero() {
    let dir = tempfile::tempdir().unwrap();
    let export = clustersim(
        dir.path(),
        &[
            "trace",
            "export",
            "--format",
            "chakra",
            "--out",
            "set",
            "--set",
            "workload.model.layers=2",
            "--set",
            "workload.parallel.pipeline=1",
            "--set",
            "workload.parallel.data=2",
            "--set",
            "workload.batch.global=2",
        ],
    );
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    insta::assert_snapshot!(expect_input_error_in(
        dir.path(),
        &[
            "run",
            "--no-output",
            "--hardware",
            "ideal",
            "--trace",
            "set",
            "--comm-groups",
            "/dev/zero"
        ]
    ));
}

#[test]
fn merge_of_dev_zero() {
    insta::assert_snapshot!(expect_input_error(&[], &["merge", "/dev/zero", "--out", "o"]));
}

/// A plan of a billion sequences per batch: its candidates' schedules alone would take minutes and
/// gigabytes to walk, and their simulations far longer.
#[test]
fn plan_of_a_billion_sequences() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "plan",
            "--no-output",
            "--gpus",
            "64",
            "--set",
            "workload.batch.global=1000000000"
        ]
    ));
}

/// `clustersim collective --op all-to-all` over `gpus` GPUs of DGX H100 nodes, with `more`
/// arguments: exit 2 and the message.
fn all_to_all(gpus: &str, more: &[&str]) -> String {
    let nodes = format!("hardware.nodes={}", gpus.parse::<u32>().unwrap() / 8);
    let base = [
        "collective",
        "--no-output",
        "--op",
        "all-to-all",
        "--gpus",
        gpus,
        "--hardware",
        "dgx-h100",
    ];
    expect_input_error(&[], &[&base[..], &["--set", &nodes], more].concat())
}

/// An all-to-all over 16 384 GPUs with the flow model at one size: 16384 x 16383 = 2.7e8 flows,
/// about 40 GiB at 160 bytes each.
#[test]
fn all_to_all_beyond_the_flow_limit() {
    insta::assert_snapshot!(all_to_all("16384", &["--sizes", "1GiB:1GiB"]));
}

/// An all-to-all over 8192 GPUs at the 24 default sizes (1 KiB to 8 GiB): 8192 x 8191 = 6.7e7
/// flows per size (within the memory limit), 1.6e9 in all, about 20 minutes.
#[test]
fn all_to_all_beyond_the_time_limit() {
    insta::assert_snapshot!(all_to_all("8192", &[]));
}

#[test]
fn bench_repeated_a_hundred_million_times() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &["bench", "--case", "engine", "--repeat", "100000000"]
    ));
}

#[test]
fn interval_beyond_the_clock() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &["train", "--no-output", "--tokens", "1e9", "--interval", "1e9 h"]
    ));
}

#[test]
fn mtbf_beyond_the_clock() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "train",
            "--no-output",
            "--tokens",
            "1e9",
            "--set",
            "hardware.failures.node_mtbf=1e30 h"
        ]
    ));
}

#[test]
fn plan_of_absurd_tokens() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "plan",
            "--no-output",
            "--gpus",
            "8",
            "--set",
            "workload.model.layers=8",
            "--tokens",
            "1e300"
        ]
    ));
}

/// Many trials of a run that does finish: the message blames the trials, not the run.
#[test]
fn a_million_trials_of_many_restarts() {
    let args = "train --no-output --workload gpt-175b --tokens 300e9 --trials 1000000";
    insta::assert_snapshot!(expect_input_error(&[], &args.split(' ').collect::<Vec<_>>()));
}

/// A NIC degraded to 1e-300 of its bandwidth: refused naming the field, not at the clock's limit.
#[test]
fn degraded_nic_at_1e_300() {
    let set = "hardware.network.degraded=[{node: 3, nic: 2, factor: 1e-300}]";
    insta::assert_snapshot!(expect_input_error(&[], &["run", "--no-output", "--set", set]));
}

/// A 1e300:1 oversubscribed fabric: its leaves' uplinks below the 1 MB/s floor of every rate.
#[test]
fn oversubscription_of_1e300() {
    let set = "hardware.network.topology.oversubscription=1e300";
    insta::assert_snapshot!(expect_input_error(
        &[],
        &["run", "--no-output", "--workload", "gpt-175b", "--set", set]
    ));
}

/// GPT-1T on 3072 GPUs with every rank's spans: about 5.8e7 spans of 180 bytes, a 9.8 GiB
/// timeline.json that no trace viewer opens; refused before the run, and no output folder made.
#[test]
fn timeline_of_every_rank_of_gpt_1t() {
    let dir = tempfile::tempdir().unwrap();
    let text = expect_input_error_in(
        dir.path(),
        &["run", "--workload", "gpt-1t", "--timeline", "all", "--out", "o"],
    );
    assert!(!dir.path().join("o").exists(), "a refused run made its output folder");
    insta::assert_snapshot!(text);
}

/// A memory limit raised past any machine (--max-memory 100 PiB) does not make the memory appear:
/// GPT 5.9B with 10^12 sequences would need about 14 PiB (5e14 tasks), more than the machine has,
/// and is refused rather than left to abort.
#[test]
fn a_limit_raised_past_the_machine() {
    let batch = "workload.batch.global=1000000000000";
    let text = expect_input_error(&[], &["run", "--no-output", "--max-memory", "100 PiB", "--set", batch]);
    let refused = text.contains("more than this machine has") && text.contains("5.04e14 tasks");
    assert!(refused, "{text}");
}
