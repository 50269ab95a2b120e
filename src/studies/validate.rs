//! `clustersim validate`: reproduce Megatron-LM SC'21 Figures 6, 7, 13, 14 and 15 and its Table 1, PyTorch
//! FSDP2's published A100 runs (figure `fsdp`), NVIDIA's published NeMo / Megatron-Bridge DGX H100
//! throughput (figures `nemo-h100`, dense, and `nemo-h100-moe`, mixtures of experts), Megatron-Core's weak-scaling table
//! (`megatron-core-h100`), Korthikanti et al. 2022's A100 runs (`korthikanti2022`), NVIDIA's NeMo Megatron DGX A100 tables of 2022 (`nemo-a100`), BLOOM-176B's training (`bloom`), Llama 3 405B's (figure `llama3-405b`) and NVIDIA's MLPerf Training
//! GPT-3 175B step times on H100 (figure `mlperf-gpt3`), and compare with the published points
//! (workloads/reference/, with their source), into results/megatron/.
//!
//! Each figure is an ordinary sweep spec (workloads/sweeps/megatron-fig*.yaml, compiled in). A
//! published point is matched to the simulated run with the same configuration, read from the
//! run's report (tensor, pipeline, data, global batch, microbatch; for Figure 6 GPUs, b' and d).
//! Figure 6 is compared in absolute terms (bubble ratios); the others in percent.

use crate::error::Result;
use crate::report::output::{create_dir, write_atomic};
use crate::report::plot::{write_figure, LineChart};
use crate::studies::sweep::execute::{plot_series, run_sweep, series_name, write_sweep, x_label, SweepResult};
use crate::studies::sweep::SweepSpec;
use serde::Serialize;
use std::path::Path;

/// The figures and their sweep specs (the file, and its text compiled in).
pub const FIGURES: &[(&str, &str, &str)] = &[
    (
        "fig6",
        "workloads/sweeps/megatron-fig6.yaml",
        include_str!("../../workloads/sweeps/megatron-fig6.yaml"),
    ),
    (
        "fig7",
        "workloads/sweeps/megatron-fig7.yaml",
        include_str!("../../workloads/sweeps/megatron-fig7.yaml"),
    ),
    (
        "fig13",
        "workloads/sweeps/megatron-fig13.yaml",
        include_str!("../../workloads/sweeps/megatron-fig13.yaml"),
    ),
    (
        "fig14",
        "workloads/sweeps/megatron-fig14.yaml",
        include_str!("../../workloads/sweeps/megatron-fig14.yaml"),
    ),
    (
        "fig15",
        "workloads/sweeps/megatron-fig15.yaml",
        include_str!("../../workloads/sweeps/megatron-fig15.yaml"),
    ),
    (
        "table1",
        "workloads/sweeps/megatron-table1.yaml",
        include_str!("../../workloads/sweeps/megatron-table1.yaml"),
    ),
    (
        "fsdp",
        "workloads/sweeps/fsdp-a100.yaml",
        include_str!("../../workloads/sweeps/fsdp-a100.yaml"),
    ),
    (
        "korthikanti2022",
        "workloads/sweeps/korthikanti2022.yaml",
        include_str!("../../workloads/sweeps/korthikanti2022.yaml"),
    ),
    (
        "nemo-a100",
        "workloads/sweeps/nemo-a100.yaml",
        include_str!("../../workloads/sweeps/nemo-a100.yaml"),
    ),
    (
        "bloom",
        "workloads/sweeps/bloom-176b.yaml",
        include_str!("../../workloads/sweeps/bloom-176b.yaml"),
    ),
    (
        "megatron-core-h100",
        "workloads/sweeps/megatron-core-h100.yaml",
        include_str!("../../workloads/sweeps/megatron-core-h100.yaml"),
    ),
    (
        "nemo-h100",
        "workloads/sweeps/nemo-h100.yaml",
        include_str!("../../workloads/sweeps/nemo-h100.yaml"),
    ),
    (
        "nemo-h100-moe",
        "workloads/sweeps/nemo-h100-moe.yaml",
        include_str!("../../workloads/sweeps/nemo-h100-moe.yaml"),
    ),
    (
        "llama3-405b",
        "workloads/sweeps/llama3-405b-h100.yaml",
        include_str!("../../workloads/sweeps/llama3-405b-h100.yaml"),
    ),
    (
        "mlperf-gpt3",
        "workloads/sweeps/mlperf-gpt3-h100.yaml",
        include_str!("../../workloads/sweeps/mlperf-gpt3-h100.yaml"),
    ),
];

/// The H100 figures, whose reference rows end in a `run` column: `yes`, or why the row is not simulated.
const H100_FIGURES: &[&str] = &[
    "megatron-core-h100",
    "nemo-h100",
    "nemo-h100-moe",
    "llama3-405b",
    "mlperf-gpt3",
];

const THROUGHPUT: &str = include_str!("../../workloads/reference/megatron-figures.csv");
const TABLE1: &str = include_str!("../../workloads/reference/megatron-table1.csv");
const FSDP: &str = include_str!("../../workloads/reference/fsdp-a100.csv");
const KORTHIKANTI: &str = include_str!("../../workloads/reference/korthikanti2022.csv");
const NEMO_A100: &str = include_str!("../../workloads/reference/nemo-a100.csv");
const BLOOM: &str = include_str!("../../workloads/reference/bloom-a100.csv");

/// The A100 figures whose reference rows name a recompute mode and interval (columns 11 and 12):
/// several runs share a split and a model and differ in it.
const RECOMPUTE_FIGURES: &[&str] = &["fsdp", "korthikanti2022"];
const BUBBLES: &str = include_str!("../../workloads/reference/megatron-figure6.csv");
const MEGATRON_CORE: &str = include_str!("../../workloads/reference/megatron-core-h100.csv");
const NEMO: &str = include_str!("../../workloads/reference/nemo-h100.csv");
const NEMO_MOE: &str = include_str!("../../workloads/reference/nemo-h100-moe.csv");
const LLAMA3: &str = include_str!("../../workloads/reference/llama3-h100.csv");
const MLPERF: &str = include_str!("../../workloads/reference/mlperf-gpt3-h100.csv");

/// Whether a published row is simulated: every row of the A100 figures; an H100 row whose `run` column says `yes`.
fn runnable(figure: &str, row: &[String]) -> bool {
    !H100_FIGURES.contains(&figure) || row.last().is_some_and(|r| r == "yes")
}

/// One published point next to its simulation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// Figure id.
    pub figure: String,
    /// Line (series) in the figure.
    pub series: String,
    /// X category.
    pub x: String,
    /// Published value.
    pub published: f64,
    /// Simulated value (None if the configuration did not run).
    pub simulated: Option<f64>,
    /// Error: percent for throughput figures, absolute for Figure 6.
    pub error: Option<f64>,
}

/// Per-figure summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FigureSummary {
    /// Figure id.
    pub figure: String,
    /// Points compared.
    pub points: usize,
    /// Mean absolute error (percent, or absolute for Figure 6).
    pub mean_abs_error: f64,
    /// Largest absolute error.
    pub max_abs_error: f64,
    /// Pairs in one series whose published values differ by more than 5% but whose simulated order is reversed.
    pub order_violations: usize,
    /// Pairs checked for order.
    pub order_pairs: usize,
    /// Points whose configuration did not run (an override that breaks them, say).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub did_not_run: usize,
    /// Why the first of them did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .collect()
}

fn published_for(figure: &str, result: &SweepResult) -> Vec<Comparison> {
    let plot = result.spec.plot.as_ref();
    let (xkeys, skeys, y) = match plot {
        Some(p) => (p.x.clone(), p.series.clone(), p.y.clone()),
        None => (Vec::new(), Vec::new(), "tflops_per_gpu".into()),
    };
    // the run whose report has these numbers and, for the recompute figures, this recompute mode and interval
    let matches_with = |want: &[(&str, u64)], recompute: Option<(&str, u64)>| {
        result.rows.iter().find(|r| {
            r.report.as_ref().is_some_and(|rep| {
                let v = serde_json::to_value(rep).unwrap_or_default();
                let mode = recompute.is_none_or(|(mode, every)| {
                    v.pointer("/config/workload/recompute").and_then(|x| x.as_str()) == Some(mode)
                        && v.pointer("/config/workload/recompute_interval")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(1)
                            == every
                });
                mode && want
                    .iter()
                    .all(|(path, val)| v.pointer(path).and_then(|x| x.as_u64()) == Some(*val))
            })
        })
    };
    let matches = |want: &[(&str, u64)]| matches_with(want, None);
    let mut out = Vec::new();
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    if figure == "fig6" {
        for f in rows(BUBBLES) {
            let (n, b, d) = (num(&f[0]) as u64, num(&f[1]) as u64, num(&f[2]) as u64);
            let published = num(&f[3]);
            let row = matches(&[("/gpus", n), ("/parallel/global_batch", b), ("/parallel/data", d)]);
            push(
                &mut out,
                figure,
                row,
                &xkeys,
                &skeys,
                &y,
                published,
                format!("n = {n}, b' = {b}"),
                d.to_string(),
                false,
            );
        }
    } else {
        let published = [
            THROUGHPUT,
            TABLE1,
            FSDP,
            KORTHIKANTI,
            NEMO_A100,
            BLOOM,
            MEGATRON_CORE,
            NEMO,
            NEMO_MOE,
            LLAMA3,
            MLPERF,
        ]
        .into_iter()
        .flat_map(rows);
        for f in published.filter(|f| f[0] == figure && runnable(figure, f)) {
            let (t, p, d, b) = (
                num(&f[5]) as u64,
                num(&f[6]) as u64,
                num(&f[7]) as u64,
                num(&f[8]) as u64,
            );
            let mut want = vec![
                ("/parallel/tensor", t),
                ("/parallel/pipeline", p),
                ("/parallel/data", d),
                ("/parallel/global_batch", b),
            ];
            if !f[9].is_empty() {
                want.push(("/parallel/microbatch", num(&f[9]) as u64));
            }
            if RECOMPUTE_FIGURES.contains(&figure) || H100_FIGURES.contains(&figure) {
                // several models share a split: their shapes tell the runs apart
                want.push(("/config/workload/model/layers", num(&f[1]) as u64));
                want.push(("/config/workload/model/hidden", num(&f[2]) as u64));
            }
            if figure.starts_with("nemo-h100") {
                // Llama 2 7B and Llama 3 8B share layers, hidden and split: column 14 is the sequence
                want.push(("/config/workload/model/seq_len", num(&f[14]) as u64));
            }
            let row = if RECOMPUTE_FIGURES.contains(&figure) {
                // and the recompute mode
                matches_with(&want, Some((f[11].as_str(), num(&f[12]) as u64)))
            } else {
                matches(&want)
            };
            let fallback_x = format!("(t {t}, p {p}, d {d})");
            push(
                &mut out,
                figure,
                row,
                &xkeys,
                &skeys,
                &y,
                num(&f[10]),
                format!("B = {b}"),
                fallback_x,
                true,
            );
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn push(
    out: &mut Vec<Comparison>,
    figure: &str,
    row: Option<&crate::studies::sweep::Row>,
    xkeys: &[String],
    skeys: &[String],
    y: &str,
    published: f64,
    fallback_series: String,
    fallback_x: String,
    percent: bool,
) {
    let simulated = row
        .and_then(|r| r.report.as_ref())
        .and_then(|rep| crate::studies::sweep::execute::metric(rep, y));
    let error = simulated.map(|s| {
        if percent {
            (s - published) / published * 100.0
        } else {
            s - published
        }
    });
    let (series, x) = match row {
        Some(r) => (series_name(&r.point, skeys), x_label(&r.point, xkeys)),
        None => (fallback_series, fallback_x),
    };
    out.push(Comparison {
        figure: figure.into(),
        series,
        x,
        published,
        simulated,
        error,
    });
}

impl FigureSummary {
    /// The unit of the errors: absolute for Figure 6, percent otherwise.
    pub fn unit(&self) -> &'static str {
        if self.figure == "fig6" {
            ""
        } else {
            " %"
        }
    }

    /// Pairs whose published order the simulation keeps.
    pub fn order_kept(&self) -> usize {
        self.order_pairs - self.order_violations
    }

    /// The summary's columns as tables print them: figure, points, mean and max error (3 decimals
    /// and the unit), and pairs whose order is kept out of those checked.
    pub fn columns(&self) -> [String; 5] {
        let unit = self.unit();
        [
            self.figure.clone(),
            self.points.to_string(),
            format!("{:.3}{unit}", self.mean_abs_error),
            format!("{:.3}{unit}", self.max_abs_error),
            format!("{}/{}", self.order_kept(), self.order_pairs),
        ]
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Summarises one figure's comparisons.
pub fn summarise(figure: &str, comps: &[Comparison]) -> FigureSummary {
    let errs: Vec<f64> = comps.iter().filter_map(|c| c.error.map(f64::abs)).collect();
    let (mut violations, mut pairs) = (0, 0);
    for (i, a) in comps.iter().enumerate() {
        for b in &comps[i + 1..] {
            if a.series != b.series {
                continue;
            }
            let (Some(sa), Some(sb)) = (a.simulated, b.simulated) else {
                continue;
            };
            if (a.published - b.published).abs() > 0.05 * a.published.min(b.published) {
                pairs += 1;
                if (a.published - b.published).signum() != (sa - sb).signum() {
                    violations += 1;
                }
            }
        }
    }
    FigureSummary {
        figure: figure.into(),
        points: comps.len(),
        mean_abs_error: if errs.is_empty() {
            f64::NAN
        } else {
            errs.iter().sum::<f64>() / errs.len() as f64
        },
        max_abs_error: errs.iter().copied().fold(0.0, f64::max),
        order_violations: violations,
        order_pairs: pairs,
        did_not_run: 0,
        first_failure: None,
    }
}

/// Runs every figure, writes results into `out`, returns the per-figure summaries.
pub fn validate(out: &Path, sets: &[String], progress: bool) -> Result<(Vec<FigureSummary>, Vec<Comparison>)> {
    create_dir(out)?;
    let mut all = Vec::new();
    let mut summaries = Vec::new();
    for (figure, file, yaml) in FIGURES {
        let mut spec = SweepSpec::parse(file, yaml)?;
        spec.set.extend(sets.iter().cloned());
        let result = run_sweep(&spec, progress)?;
        // the sweep's own CSV, then the figure with the published points overlaid
        let mut unplotted = result.clone();
        unplotted.spec.plot = None;
        write_sweep(&unplotted, out)?;
        let comps = published_for(figure, &result);
        if let (Some(plot), Some((categories, mut series))) = (&spec.plot, plot_series(&result)) {
            for c in &comps {
                if let Some(s) = series.iter_mut().find(|s| s.name == c.series) {
                    s.published.push((c.x.clone(), c.published));
                }
            }
            let joined = plot.x.join(", ");
            let chart = LineChart {
                title: plot.title.as_deref().unwrap_or(&spec.name),
                x_label: plot.x_label.as_deref().unwrap_or(&joined),
                y_label: plot.y_label.as_deref().unwrap_or(&plot.y),
                categories: &categories,
                series: &series,
                y_range: None,
            };
            write_figure(&out.join(&plot.file), &chart)?;
        }
        let mut summary = summarise(figure, &comps);
        let failures: Vec<&String> = result.rows.iter().filter_map(|r| r.error.as_ref()).collect();
        summary.did_not_run = failures.len();
        summary.first_failure = failures.first().map(|e| e.to_string());
        summaries.push(summary);
        all.extend(comps);
    }
    write_atomic(&out.join("validation.csv"), |w| {
        writeln!(w, "figure,series,x,published,simulated,error")?;
        for c in &all {
            let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
            writeln!(
                w,
                "{},\"{}\",\"{}\",{},{},{}",
                c.figure,
                c.series,
                c.x,
                c.published,
                f(c.simulated),
                f(c.error)
            )?;
        }
        Ok(())
    })?;
    write_atomic(&out.join("README.md"), |w| {
        w.write_all(super::validation_report::markdown(&summaries, &all).as_bytes())
    })?;
    Ok((summaries, all))
}
