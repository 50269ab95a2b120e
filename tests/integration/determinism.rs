//! Same input and seed, byte-identical outputs.

use super::common::clustersim;

fn run_to(dir: &std::path::Path, out: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut args = vec!["run", "--out", out, "--set", "workload.batch.global=64"];
    args.extend_from_slice(extra);
    let o = clustersim(dir, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read(dir.join(out).join(f)).unwrap();
    (read("report.json"), read("timeline.json"))
}

#[test]
fn same_seed_gives_identical_report_and_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_to(dir.path(), "a", &[]);
    let b = run_to(dir.path(), "b", &[]);
    assert!(a.0 == b.0, "report.json differs");
    assert!(a.1 == b.1, "timeline.json differs");
    // the schedule plot is written too, and no temporary files are left behind
    let names: Vec<String> = std::fs::read_dir(dir.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    for f in [
        "report.json",
        "timeline.json",
        "stages.csv",
        "schedule.png",
        "schedule.svg",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
}

/// The same with communication holding SMs and compute re-timed around it: Llama 3 8B on one
/// DGX H100 node, t 4 with the tensor-parallel and data-parallel overlaps.
#[test]
fn runs_with_sm_contention_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "--hardware",
        "dgx-h100",
        "--workload",
        "llama3-8b",
        "--set",
        "hardware.nodes=1",
        "--set",
        "workload.software=megatron-core-2024",
        "--set",
        "workload.parallel.tensor=4",
        "--set",
        "workload.parallel.data=2",
        "--set",
        "workload.batch.global=8",
    ];
    let a = run_to(dir.path(), "a", &sets);
    let b = run_to(dir.path(), "b", &sets);
    assert!(a.0 == b.0, "report.json differs");
    assert!(a.1 == b.1, "timeline.json differs");
    let report = String::from_utf8(a.0).unwrap();
    assert!(report.contains("\"sm_contention_s\""), "no SMs were held: {report}");
}

#[test]
fn jitter_follows_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let jitter = ["--set", "hardware.gpu.jitter=0.05"];
    let a = run_to(dir.path(), "a", &[&jitter[..], &["--seed", "7"]].concat());
    let b = run_to(dir.path(), "b", &[&jitter[..], &["--seed", "7"]].concat());
    let c = run_to(dir.path(), "c", &[&jitter[..], &["--seed", "8"]].concat());
    assert!(a.0 == b.0 && a.1 == b.1, "same seed, same output");
    let time = |r: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(r).unwrap()["iteration_time_s"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(time(&a.0), time(&c.0), "a different seed changes the jittered run");
    let seed = serde_json::from_slice::<serde_json::Value>(&c.0).unwrap()["seed"].as_u64();
    assert_eq!(seed, Some(8), "the seed is in the report");
}

#[test]
fn json_format_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let o = clustersim(dir.path(), &["run", "--format", "json", "--no-output"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "iteration_time_s",
        "tflops_per_gpu",
        "mfu",
        "samples_per_s",
        "tokens_per_s",
        "events",
        "seed",
    ] {
        assert!(v[key].is_number(), "{key} missing");
    }
    assert!(v["bubble"]["fraction"].is_number() && v["bubble"]["ratio"].is_number());
    assert_eq!(v["bubble"]["per_stage"].as_array().unwrap().len(), 8);
    assert!(v["breakdown"]["compute_s"].is_number());
    assert_eq!(v["gpus"], 64);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "--no-output writes nothing"
    );
}

/// report.json carries the whole resolved configuration (hardware and workload after `--set`, and
/// the seed): `run --config report.json` reruns it to a byte-identical report.
#[test]
fn report_reruns_from_its_own_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let first = super::common::clustersim(
        dir.path(),
        &[
            "run",
            "--out",
            "a",
            "--seed",
            "7",
            "--timeline",
            "none",
            "--set",
            "workload.parallel.tensor=2",
            "--set",
            "workload.parallel.data=4",
            "--set",
            "hardware.node.nic.bandwidth=100 Gb/s",
            "--set",
            "workload.batch.global=64",
            "--max-memory",
            "8GiB",
        ],
    );
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let again = super::common::clustersim(
        dir.path(),
        &["run", "--config", "a/report.json", "--out", "b", "--timeline", "none"],
    );
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let a = std::fs::read(dir.path().join("a/report.json")).unwrap();
    let b = std::fs::read(dir.path().join("b/report.json")).unwrap();
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(
        text.contains("\"bandwidth\": \"12500000000 B/s\""),
        "the --set value is recorded"
    );
    assert!(
        text.contains("\"max_memory_bytes\": 8589934592"),
        "the memory limit is recorded"
    );
}

#[test]
fn representative_runs_are_byte_identical_and_rerun_from_their_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_to(dir.path(), "a", &["--representative"]);
    let b = run_to(dir.path(), "b", &["--representative"]);
    assert!(a.0 == b.0, "report.json differs");
    assert!(a.1 == b.1, "timeline.json differs");
    let report: serde_json::Value = serde_json::from_slice(&a.0).unwrap();
    // the default split is p8 d8 on 64 GPUs: 8 ranks stand for 64
    assert_eq!(report["ranks_simulated"], 8);
    assert_eq!(report["ranks_represented"], 64);
    assert!(report.get("every_rank_because").is_none());
}
