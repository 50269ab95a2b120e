//! The capacity planner: its ranking equals brute-force simulation, and bad requests are explained.

use super::common::expect_input_error;
use clustersim::config::{load_run_config, Override, Source};
use clustersim::studies::plan::{candidates, plan};
use clustersim::studies::run::{run, RunOptions};
use clustersim::workload::memory::memory;

/// A small GPT (8 layers, hidden 1024, 16 heads, batch 16) on 8 GPUs.
fn small() -> Vec<Override> {
    [
        "workload.model.layers=8",
        "workload.model.hidden=1024",
        "workload.model.heads=16",
        "workload.batch.global=16",
        "hardware.network.model=analytic",
    ]
    .iter()
    .map(|s| Override::parse(s).unwrap())
    .collect()
}

/// Every combination simulated in full (all ranks), filtered by memory and sorted by tokens/s (ties
/// by label), gives the planner's ranking, which simulates one GPU per stage.
#[test]
fn planner_ranking_equals_brute_force() {
    let (hw, wl) = (Source::Named("dgx-a100".into()), Source::Named("gpt-5.9b".into()));
    let planned = plan(&hw, &wl, &small(), 8, None).unwrap();
    let base = load_run_config(&hw, &wl, &small()).unwrap();
    let mut brute: Vec<(String, f64, f64)> = Vec::new();
    for c in candidates(&base, 8) {
        let mut o = small();
        for s in c.overrides() {
            o.push(Override::parse(&s).unwrap());
        }
        let Ok(cfg) = load_run_config(&hw, &wl, &o) else {
            continue;
        };
        let g = &cfg.hardware.gpu;
        if !memory(
            &cfg.workload,
            g.memory.as_f64(),
            g.memory_reserved.as_f64(),
            g.memory_fragmentation,
        )
        .fits
        {
            continue;
        }
        let full = run(&cfg, &RunOptions::metrics_only(false)).unwrap().report;
        brute.push((c.label(), full.tokens_per_s, full.iteration_time_s));
    }
    brute.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let planned_labels: Vec<String> = planned.ranked.iter().map(|r| r.candidate.label()).collect();
    let brute_labels: Vec<String> = brute.iter().map(|b| b.0.clone()).collect();
    assert!(brute.len() > 50, "a real search space: {}", brute.len());
    assert_eq!(planned_labels, brute_labels);
    for (p, b) in planned.ranked.iter().zip(&brute) {
        assert!(
            (p.iteration_time_s - b.2).abs() < 1e-9,
            "{}: {} vs {}",
            b.0,
            p.iteration_time_s,
            b.2
        );
    }
}

/// Days to train follow tokens / (tokens per second): for GPT-3 175B on 300e9 tokens with 1024 GPUs
/// they agree with Megatron's 8 T P / (n X) at the simulated X within the terms that formula drops
/// (attention and logits, s/(6h) + V/(16 l h) = 3.0%).
/// A workload whose own split does not fit the machine is still planned: the preset's p8 x d8 = 64
/// GPUs on one 8-GPU node. Every candidate replaces the split, so the ranking is the one planned
/// when the preset's split is first made to fit (d 1: p8 on 8 GPUs).
#[test]
fn a_workload_split_larger_than_the_machine_is_planned() {
    let (hw, wl) = (Source::Named("dgx-a100".into()), Source::Named("gpt-5.9b".into()));
    let mut one_node = small();
    one_node.push(Override::parse("hardware.nodes=1").unwrap());
    assert!(
        load_run_config(&hw, &wl, &one_node).is_err(),
        "the preset's own split needs 64 GPUs"
    );
    let planned = plan(&hw, &wl, &one_node, 8, None).unwrap();
    let mut fitted = one_node.clone();
    fitted.push(Override::parse("workload.parallel.data=1").unwrap());
    let reference = plan(&hw, &wl, &fitted, 8, None).unwrap();
    let labels = |p: &clustersim::studies::plan::Plan| {
        p.ranked
            .iter()
            .map(|r| (r.candidate.label(), r.iteration_time_s))
            .collect::<Vec<_>>()
    };
    assert!(planned.ranked.len() > 50, "{}", planned.ranked.len());
    assert_eq!(labels(&planned), labels(&reference));
}

#[test]
fn days_to_train_agree_with_megatron_estimate() {
    let p = plan(
        &Source::Named("dgx-a100".into()),
        &Source::Named("gpt-175b".into()),
        &[],
        1024,
        Some(300e9),
    )
    .unwrap();
    let best = &p.ranked[0];
    let params = 174.6e9;
    let estimate = 8.0 * 300e9 * params / (1024.0 * best.tflops_per_gpu * 1e12) / 86_400.0;
    let days = best.days.unwrap();
    assert!((days / estimate - 1.0).abs() < 0.04, "{days} vs {estimate}");
}

fn fails(args: &[&str]) -> String {
    expect_input_error(&[], args)
}

#[test]
fn gpu_count_with_no_valid_split() {
    insta::assert_snapshot!(fails(&["plan", "--gpus", "7", "--no-output"]));
}

#[test]
fn nothing_fits() {
    insta::assert_snapshot!(fails(&["plan", "--workload", "gpt-1t", "--gpus", "8", "--no-output"]));
}

#[test]
fn memory_override_below_zero() {
    insta::assert_snapshot!(fails(&[
        "plan",
        "--gpus",
        "64",
        "--set",
        "hardware.gpu.memory=-80 GiB",
        "--no-output"
    ]));
}

#[test]
fn unknown_zero_stage() {
    insta::assert_snapshot!(fails(&[
        "run",
        "--no-output",
        "--set",
        "workload.data_parallel.zero_stage=4"
    ]));
}

/// `plan --check K` runs the K fastest again with the flow network model: their `flow` TFLOP/s are
/// what `run` gives for the same split with the flow model, the rest stay empty, the analytic
/// ranking stands; without it plan.csv has no such column. On 16 GPUs of two DGX A100 nodes behind
/// a 4:1 fat tree at least one checked split runs slower with flows than analytic: the ZeRO-3
/// split, whose weight all-gathers share the links with the gradient reduce-scatters beside them,
/// which the analytic model prices apart.
#[test]
fn check_runs_the_fastest_with_flows() {
    let dir = tempfile::tempdir().unwrap();
    let args = |check: &str, out: &str| -> Vec<String> {
        [
            "plan",
            "--gpus",
            "16",
            "--set",
            "hardware.nodes=2",
            "--set",
            "hardware.network.topology.kind=fat-tree",
            "--set",
            "hardware.network.topology.oversubscription=4",
            "--set",
            "workload.batch.global=16",
            "--check",
            check,
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let plan_csv = |check: &str| -> Vec<Vec<String>> {
        let out = dir.path().join(format!("check-{check}"));
        let a = args(check, out.to_str().unwrap());
        let o = super::common::clustersim(dir.path(), &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(out.join("plan.csv")).unwrap();
        text.lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (plain, checked) = (plan_csv("0"), plan_csv("3"));
    // the printed order of the checked ranks by the flow model: the ZeRO-3 second falls behind
    let a = args("3", dir.path().join("print").to_str().unwrap());
    let o = super::common::clustersim(dir.path(), &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("the checked ranks in the flow model's order, fastest first: 1 3 2"),
        "{stdout}"
    );
    assert!(!plain[0].contains(&"flow_tflops_per_gpu".to_string()));
    assert_eq!(checked[0].last().unwrap(), "flow_tflops_per_gpu");
    // the same ranking and analytic numbers, the flow column added
    for (p, c) in plain.iter().zip(&checked).skip(1) {
        assert_eq!(p[..], c[..c.len() - 1]);
    }
    let header = &checked[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (analytic, flow) = (col("tflops_per_gpu"), col("flow_tflops_per_gpu"));
    let mut slower = false;
    for (i, row) in checked.iter().skip(1).enumerate() {
        if i >= 3 {
            assert_eq!(row[flow], "", "row {}", i + 1);
            continue;
        }
        let f: f64 = row[flow].parse().unwrap();
        slower |= f < row[analytic].parse::<f64>().unwrap() * 0.999;
        // what a run of that split with the flow model gives
        let mut o: Vec<Override> = [
            "hardware.nodes=2",
            "hardware.network.topology.kind=fat-tree",
            "hardware.network.topology.oversubscription=4",
            "workload.batch.global=16",
            "hardware.network.model=flow",
        ]
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
        for (key, field) in [
            ("tensor", "workload.parallel.tensor"),
            ("pipeline", "workload.parallel.pipeline"),
            ("data", "workload.parallel.data"),
            ("micro", "workload.batch.micro"),
            ("interleave", "workload.parallel.interleave"),
            ("recompute", "workload.recompute"),
            ("sequence_parallel", "workload.parallel.sequence_parallel"),
            ("zero_stage", "workload.data_parallel.zero_stage"),
        ] {
            o.push(Override::parse(&format!("{field}={}", row[col(key)])).unwrap());
        }
        if row[col("interleave")] != "1" {
            o.push(Override::parse("workload.schedule=interleaved").unwrap());
        }
        let (hw, wl) = (Source::Named("dgx-a100".into()), Source::Named("gpt-5.9b".into()));
        let cfg = load_run_config(&hw, &wl, &o).unwrap();
        let r = run(&cfg, &RunOptions::metrics_only(true)).unwrap().report;
        assert!(
            (r.tflops_per_gpu / f - 1.0).abs() < 1e-9,
            "row {}: {} vs {f}",
            i + 1,
            r.tflops_per_gpu
        );
    }
    assert!(slower, "the oversubscribed uplinks cost a checked split something");
    insta::assert_snapshot!(fails(&["plan", "--gpus", "8", "--check", "2", "--shard", "0/2"]));
}

/// `--check` refuses up front to run more flow simulations than a run may take in all (about 4e9
/// tasks): 1200 copies of GPT-1T's t8 p64 d6 at batch 12288 (over 3.3 million tasks each, one GPU
/// per stage) are refused before any runs.
#[test]
fn check_refuses_absurd_counts_up_front() {
    use clustersim::studies::plan::{check, Plan, Ranked};
    let (hw, wl) = (Source::Named("dgx-a100".into()), Source::Named("gpt-1t".into()));
    let sets = vec![Override::parse("workload.batch.global=12288").unwrap()];
    let base = load_run_config(&hw, &wl, &sets).unwrap();
    let candidate = candidates(&base, 3072)
        .into_iter()
        .find(|c| c.label() == "t8 p64 d6 b1 v1 full zero1")
        .expect("the preset's split is a candidate");
    let ranked = Ranked {
        candidate,
        tflops_per_gpu: 1.0,
        tokens_per_s: 1.0,
        iteration_time_s: 1.0,
        peak_memory_bytes: 0.0,
        bubble_fraction: 0.0,
        days: None,
        flow_tflops_per_gpu: None,
    };
    let mut plan = Plan {
        ranked: vec![ranked; 1200],
        valid: 1200,
        out_of_memory: 0,
        pruned: 0,
    };
    let err = check(&mut plan, &hw, &wl, &sets, 1200).unwrap_err().to_string();
    assert!(
        err.contains("--check 1200: the flow runs would simulate about"),
        "{err}"
    );
    assert!(plan.ranked.iter().all(|r| r.flow_tflops_per_gpu.is_none()));
}

/// `plan` ranks with the analytic model; asking it for another is refused (it would be replaced
/// silently), pointing at `--check`.
#[test]
fn another_network_model_is_refused() {
    insta::assert_snapshot!(fails(&["plan", "--gpus", "8", "--set", "hardware.network.model=flow"]));
}
