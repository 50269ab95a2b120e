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
