//! Running a sweep: every point in parallel (rayon), a progress bar on a terminal, rows in point
//! order. A point whose configuration is invalid becomes a row with an error, not a failure.

use super::spec::{scalar_text, Point, SweepSpec};
use crate::config::{load_run_config, Override, RunConfig, Source};
use crate::error::{Error, Result};
use crate::report::plot::{write_figure, LineChart, Series};
use crate::report::Report;
use crate::studies::run::{run, RunOptions};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// One point's outcome. The outputs (CSV, plot) read only `error`, `metrics` and `plot_y`, so a
/// row read back from a shard file (without its report) writes the same bytes.
#[derive(Debug, Clone)]
pub struct Row {
    /// The axis assignments.
    pub point: Point,
    /// The report, when the point ran here (None where it did not run, and for rows read back from
    /// a shard file).
    pub report: Option<Report>,
    /// Why it did not run.
    pub error: Option<String>,
    /// The spec's metrics, in order (None where missing or not run).
    pub metrics: Vec<Option<f64>>,
    /// The plot's y metric (None without a plot, where missing, or not run).
    pub plot_y: Option<f64>,
}

/// A finished sweep.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The spec that ran.
    pub spec: SweepSpec,
    /// One row per point, in point order.
    pub rows: Vec<Row>,
}

/// A metric of a report by dotted path (`bubble.fraction`), as a number.
pub fn metric(report: &Report, path: &str) -> Option<f64> {
    let value = serde_json::to_value(report).ok()?;
    let pointer = format!("/{}", path.replace('.', "/"));
    value.pointer(&pointer)?.as_f64()
}

/// What every point of a sweep starts from: the base documents and the spec's own overrides.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The hardware file or preset.
    pub hardware: Source,
    /// The workload file or preset.
    pub workload: Source,
    /// The spec's `set`, applied before each point's axis values.
    pub base: Vec<Override>,
}

impl Inputs {
    /// The inputs a spec names.
    pub fn of(spec: &SweepSpec) -> Result<Inputs> {
        Ok(Inputs {
            hardware: spec.hardware.clone().map(Source::Named).unwrap_or(Source::Default),
            workload: spec.workload.clone().map(Source::Named).unwrap_or(Source::Default),
            base: spec.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?,
        })
    }

    /// The validated configuration of one point (an error where the point is not a valid one).
    pub fn config(&self, point: &Point) -> Result<RunConfig> {
        let mut overrides = self.base.clone();
        for (k, v) in point {
            overrides.push(Override::parse(&format!("{k}={}", scalar_text(v)))?);
        }
        load_run_config(&self.hardware, &self.workload, &overrides)
    }
}

/// Runs every point of a sweep.
pub fn run_sweep(spec: &SweepSpec, progress: bool) -> Result<SweepResult> {
    let all: Vec<usize> = (0..spec.points().len()).collect();
    let rows = run_points(spec, &all, progress)?;
    Ok(SweepResult {
        spec: spec.clone(),
        rows,
    })
}

/// Runs the points of a sweep with the given ids (indices into [`SweepSpec::points`], ascending),
/// in parallel; rows come back in the order of `ids`.
pub fn run_points(spec: &SweepSpec, ids: &[usize], progress: bool) -> Result<Vec<Row>> {
    let inputs = Inputs::of(spec)?;
    let points = spec.points();
    let selected: Vec<Point> = ids.iter().filter_map(|&i| points.get(i).cloned()).collect();
    let bar = if progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(selected.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} points, {elapsed} (eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(spec.name.clone());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let rows: Vec<Row> = selected
        .into_par_iter()
        .map(|point| {
            let row = run_point(spec, &inputs, point);
            bar.inc(1);
            row
        })
        .collect();
    bar.finish_and_clear();
    Ok(rows)
}

fn run_point(spec: &SweepSpec, inputs: &Inputs, point: Point) -> Row {
    let outcome = inputs
        .config(&point)
        .and_then(|cfg| run(&cfg, &RunOptions::metrics_only(spec.representative)).map(|r| r.report));
    match outcome {
        Ok(report) => {
            let metrics = spec.metrics.iter().map(|m| metric(&report, m)).collect();
            let plot_y = spec.plot.as_ref().and_then(|p| metric(&report, &p.y));
            Row {
                point,
                report: Some(report),
                error: None,
                metrics,
                plot_y,
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg).to_string();
            Row {
                point,
                report: None,
                error: Some(msg),
                metrics: vec![None; spec.metrics.len()],
                plot_y: None,
            }
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV text: one row per point with every varied input, the metrics and the error (if any).
pub fn csv(result: &SweepResult) -> String {
    let keys = result.spec.axis_keys();
    let mut out = String::new();
    let header: Vec<String> = keys
        .iter()
        .cloned()
        .chain(result.spec.metrics.iter().cloned())
        .chain(std::iter::once("error".into()))
        .collect();
    out += &header.join(",");
    out.push('\n');
    for row in &result.rows {
        let mut fields: Vec<String> = keys
            .iter()
            .map(|k| {
                row.point
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map(|(_, v)| csv_field(&scalar_text(v)))
                    .unwrap_or_default()
            })
            .collect();
        fields.extend(row.metrics.iter().map(|m| m.map(|v| v.to_string()).unwrap_or_default()));
        fields.push(row.error.as_deref().map(csv_field).unwrap_or_default());
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

/// The x label of a point for a plot: the values of the x keys, joined.
pub fn x_label(point: &Point, keys: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| point.iter().find(|(pk, _)| pk == k).map(|(_, v)| scalar_text(v)))
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The legend name of a point's series: `key = value` for each series key (last path segment).
pub fn series_name(point: &Point, keys: &[String]) -> String {
    if keys.is_empty() {
        return "simulated".into();
    }
    keys.iter()
        .map(|k| {
            let v = point
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| scalar_text(v))
                .unwrap_or_default();
            let name = k
                .strip_prefix("workload.")
                .or_else(|| k.strip_prefix("hardware."))
                .unwrap_or(k);
            format!("{name} = {v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plot's lines: one per series value, points in run order.
pub fn plot_series(result: &SweepResult) -> Option<(Vec<String>, Vec<Series>)> {
    let plot = result.spec.plot.as_ref()?;
    let mut categories: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    for row in &result.rows {
        let x = x_label(&row.point, &plot.x);
        if !categories.contains(&x) {
            categories.push(x.clone());
        }
        let name = series_name(&row.point, &plot.series);
        let y = row.plot_y;
        let s = match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s,
            None => {
                series.push(Series {
                    name: name.clone(),
                    points: Vec::new(),
                    published: Vec::new(),
                });
                series.last_mut().expect("just pushed")
            }
        };
        if let Some(y) = y {
            s.points.push((x, y));
        }
    }
    Some((categories, series))
}

/// Writes `<name>.csv` and, if the spec has a plot, its PNG and SVG into `dir`.
pub fn write_sweep(result: &SweepResult, dir: &Path) -> Result<Vec<PathBuf>> {
    crate::report::output::create_dir(dir)?;
    let mut written = Vec::new();
    let csv_path = dir.join(format!("{}.csv", result.spec.name));
    crate::report::output::write_atomic(&csv_path, |w| w.write_all(csv(result).as_bytes()))?;
    written.push(csv_path);
    if let (Some(plot), Some((categories, series))) = (&result.spec.plot, plot_series(result)) {
        let stem = dir.join(&plot.file);
        let joined = plot.x.join(", ");
        let chart = LineChart {
            title: plot.title.as_deref().unwrap_or(&result.spec.name),
            x_label: plot.x_label.as_deref().unwrap_or(&joined),
            y_label: plot.y_label.as_deref().unwrap_or(&plot.y),
            categories: &categories,
            series: &series,
            y_range: None,
        };
        write_figure(&stem, &chart)?;
        written.push(stem.with_extension("png"));
        written.push(stem.with_extension("svg"));
    }
    Ok(written)
}

/// Errors of a sweep as text lines (for the summary), one per failed point.
pub fn failures(result: &SweepResult) -> Vec<String> {
    let keys = result.spec.axis_keys();
    result
        .rows
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", x_label(&r.point, &keys))))
        .collect()
}

/// Fails unless at least one point ran (an all-invalid sweep is a bad spec), or where a metric is
/// not a number in the first report (a misspelt name, not an empty column).
pub fn require_some(result: &SweepResult) -> Result<()> {
    let Some(first) = result.rows.iter().find(|r| r.error.is_none()) else {
        return Err(Error::Input(format!(
            "error: sweep {}: no point is a valid configuration; first error: {}",
            result.spec.name,
            result.rows.first().and_then(|r| r.error.clone()).unwrap_or_default()
        )));
    };
    // the row's metrics were read from its report: None is a metric the report does not have
    let plot_y = result.spec.plot.as_ref().map(|p| ("plot.y", &p.y, first.plot_y));
    let metrics = (result.spec.metrics.iter().zip(first.metrics.iter().copied())).map(|(m, v)| ("metric", m, v));
    for (what, m, value) in metrics.chain(plot_y) {
        if value.is_none() {
            return Err(Error::Input(format!(
                "error: sweep {}: {what} `{m}` is not a number in the report (e.g. tflops_per_gpu, iteration_time_s, mfu, bubble.fraction, breakdown.exposed_comm_s, memory.peak_bytes_per_gpu)",
                result.spec.name
            )));
        }
    }
    Ok(())
}
