//! `clustersim train`: days to train, checkpoints and failures.

use super::common::{clustersim, expect_input_error};

fn train_json(dir: &std::path::Path, out: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["train", "--out", out];
    all.extend_from_slice(args);
    let o = clustersim(dir, &all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(dir.join(out).join("train.json")).unwrap()).unwrap()
}

/// With checkpoints and failures off, GPT-3 175B on 300e9 tokens with 1024 GPUs takes
/// iterations x iteration time, which agrees with Megatron's 8 T P / (n X) at the simulated X
/// within the attention and logit terms that formula leaves out (s/(6h) + V/(16 l h) = 3.0%).
#[test]
fn days_without_failures_agree_with_8tp_over_nx() {
    let dir = tempfile::tempdir().unwrap();
    let r = train_json(
        dir.path(),
        "a",
        &[
            "--workload",
            "gpt-175b",
            "--tokens",
            "300e9",
            "--no-failures",
            "--no-checkpoints",
        ],
    );
    let days = r["run"]["mean_days"].as_f64().unwrap();
    let estimate = r["megatron_estimate_days"].as_f64().unwrap();
    assert!((days / estimate - 1.0).abs() < 0.04, "{days} vs {estimate}");
    assert!((r["run"]["goodput"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!(r["run"]["std_days"].as_f64().unwrap() < 1e-9);
}

/// Same seed, same files; another seed, another expected time, and the report shows the spread.
#[test]
fn seeded_monte_carlo() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--workload", "gpt-175b", "--tokens", "300e9", "--trials", "100"];
    let a = train_json(dir.path(), "a", &[&args[..], &["--seed", "3"]].concat());
    let b = train_json(dir.path(), "b", &[&args[..], &["--seed", "3"]].concat());
    let c = train_json(dir.path(), "c", &[&args[..], &["--seed", "4"]].concat());
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read(dir.path().join("a/goodput.png")).unwrap(),
        std::fs::read(dir.path().join("b/goodput.png")).unwrap()
    );
    assert_ne!(a["run"]["mean_days"], c["run"]["mean_days"]);
    let (p10, p90) = (
        a["run"]["p10_days"].as_f64().unwrap(),
        a["run"]["p90_days"].as_f64().unwrap(),
    );
    assert!(p90 > p10 && a["run"]["std_days"].as_f64().unwrap() > 0.0);
    // failures cost time: goodput below 1, and the best interval of the sweep is near Young/Daly
    assert!(a["run"]["goodput"].as_f64().unwrap() < 1.0);
    let yd = a["young_daly_interval_s"].as_f64().unwrap();
    let sweep = a["sweep"].as_array().unwrap();
    let best = sweep
        .iter()
        .max_by(|x, y| {
            x["goodput"]
                .as_f64()
                .unwrap()
                .total_cmp(&y["goodput"].as_f64().unwrap())
        })
        .unwrap();
    let ratio = best["interval_s"].as_f64().unwrap() / yd;
    assert!((0.7..1.3).contains(&ratio), "best interval / Young-Daly = {ratio}");
}

fn fails(args: &[&str]) -> String {
    expect_input_error(
        &[],
        &[&["train", "--no-output", "--tokens", "300e9"][..], args].concat(),
    )
}

#[test]
fn zero_storage_bandwidth() {
    insta::assert_snapshot!(fails(&["--set", "hardware.storage.write_bandwidth=0 GB/s"]));
}

#[test]
fn negative_mtbf() {
    insta::assert_snapshot!(fails(&["--set", "hardware.failures.node_mtbf=-100 h"]));
}

#[test]
fn interval_shorter_than_a_checkpoint() {
    insta::assert_snapshot!(fails(&["--workload", "gpt-175b", "--interval", "2 s"]));
}

#[test]
fn no_storage_section() {
    insta::assert_snapshot!(fails(&["--hardware", "ideal"]));
}

/// Storage I/O as tasks shares the filesystem in the flow model: 8 nodes each writing 10 GB at once
/// are capped by the filesystem's 273 GB/s (80 GB / 273 GB/s = 293 ms), 2 nodes by their own storage
/// NICs (2 x 24 GB/s per node: 10 GB / 48 GB/s = 208 ms); each I/O adds its 1 ms latency.
#[test]
fn storage_tasks_share_the_filesystem() {
    use clustersim::config::{builtin_hardware, Document, HardwareSpec};
    use clustersim::sim::{simulate, NoSpans, SimOptions};
    use clustersim::workload::builder::GraphBuilder;
    use clustersim::workload::graph::{Phase, Stream, TaskKind, TaskLabel};
    let hw = HardwareSpec::from_document(&Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap())
        .unwrap();
    let label = TaskLabel {
        phase: Phase::Io,
        chunk: 0,
        layer: u16::MAX,
        microbatch: u32::MAX,
    };
    let time = |nodes: u32| {
        let mut g = GraphBuilder::new(nodes * 8);
        for n in 0..nodes {
            let x = g.storage(n * 8, 10_000_000_000, true);
            g.task(n * 8, Stream::Io, TaskKind::Storage(x), label);
        }
        simulate(&g.finish(), &hw, SimOptions { seed: 1 }, &mut NoSpans)
            .unwrap()
            .makespan
            .as_secs_f64()
    };
    assert!((time(8) - (80e9 / 273e9 + 1e-3)).abs() < 1e-6, "{}", time(8));
    assert!((time(2) - (10e9 / 48e9 + 1e-3)).abs() < 1e-6, "{}", time(2));
}

/// Checkpoint save and load and data loading appear in the generated iteration and survive a
/// trace round trip.
#[test]
fn checkpoint_and_data_loading_tasks_in_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "--set",
        "workload.checkpoint.save=true",
        "--set",
        "workload.checkpoint.load=true",
        "--set",
        "workload.data_loading=true",
        "--set",
        "workload.batch.global=64",
    ];
    let run = |args: &[&str]| {
        let o = clustersim(dir.path(), args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[&["trace", "export", "--out", "t.jsonl"][..], &sets].concat());
    run(&[&["run", "--out", "generated"][..], &sets].concat());
    run(&["run", "--trace", "t.jsonl", "--out", "traced"]);
    let a = std::fs::read(dir.path().join("generated/report.json")).unwrap();
    assert_eq!(a, std::fs::read(dir.path().join("traced/report.json")).unwrap());
    let trace = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    // p8 d8 t1: replica 0 has 8 ranks, each reads its shard and writes it: 16 checkpoint I/Os;
    // 8 microbatches per pipeline: tokens read on stage 0 and labels on stage 7 by all 8 replicas:
    // 2 stages x 8 ranks x 8 microbatches = 128 reads of 2048 x 4 bytes
    let writes = trace.matches(r#""write":true"#).count();
    let data_reads = trace.matches(r#""storage":{"bytes":8192,"write":false}"#).count();
    assert_eq!(writes, 8);
    assert_eq!(data_reads, 128);
    let report: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert!(report["breakdown"]["io_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn data_loading_without_storage() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[
            "run",
            "--no-output",
            "--hardware",
            "ideal",
            "--set",
            "workload.data_loading=true"
        ]
    ));
}
