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
