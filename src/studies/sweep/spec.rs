//! The sweep spec format (YAML, in workloads/sweeps/).
//!
//! ```yaml
//! name: fig14-pipeline-vs-data          # output folder and file names
//! hardware: dgx-a100                    # file or preset; default dgx-a100
//! workload: gpt-5.9b                    # file or preset; default gpt-5.9b
//! set: ["workload.recompute=full"]      # overrides applied to every point
//! axes:                                 # the cartesian product of the axes is run
//!   - key: workload.batch.global
//!     values: [32, 512]
//!   - zip:                              # zipped: these keys vary together
//!       workload.parallel.pipeline: [2, 4, 8, 16, 32]
//!       workload.parallel.data: [32, 16, 8, 4, 2]
//! metrics: [tflops_per_gpu, bubble.fraction]   # report fields (dotted paths) written per row
//! representative: false                 # true: each point as `run --representative` (for thousands of GPUs)
//! plot: { file: fig14, x: [workload.parallel.pipeline, workload.parallel.data],
//!         y: tflops_per_gpu, series: [workload.batch.global], title: "...", y_label: "..." }
//! ```

use crate::config::{Document, DocumentKind, Override, Source};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// One axis: a key with values, or several keys zipped together.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The `--set` key of a single axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
    /// Keys that vary together, each with a list of the same length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<serde_yaml::Mapping>,
}

/// The plot a sweep writes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// File stem (PNG and SVG).
    pub file: String,
    /// Keys whose values label the x axis (categories in run order).
    pub x: Vec<String>,
    /// Metric on the y axis.
    pub y: String,
    /// Keys whose values make separate lines.
    #[serde(default)]
    pub series: Vec<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Y axis label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// X axis label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
}

/// A whole sweep.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Name.
    pub name: String,
    /// Hardware file or preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// Workload file or preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Overrides for every point.
    #[serde(default)]
    pub set: Vec<String>,
    /// Axes.
    pub axes: Vec<Axis>,
    /// Metrics per row.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<String>,
    /// Plot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotSpec>,
    /// Run each point as `run --representative` does (one rank per stage standing for all, exact where the
    /// machine is symmetric; a point where it is not runs every rank).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub representative: bool,
}

fn default_metrics() -> Vec<String> {
    ["iteration_time_s", "tflops_per_gpu", "mfu", "bubble.fraction"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// One point: the (key, value) assignments of every axis.
pub type Point = Vec<(String, Value)>;

/// Renders a YAML scalar as `--set` and CSV text.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// The most points a sweep may run.
pub const MAX_POINTS: usize = 1_000_000;

impl SweepSpec {
    /// Reads and checks a spec file (or text with a source name).
    pub fn parse(source: &str, text: &str) -> Result<SweepSpec> {
        let doc = Document::parse(source, text)?;
        let spec: SweepSpec = doc.deserialize()?;
        spec.check(&doc)?;
        Ok(spec)
    }

    /// Reads a spec file.
    pub fn load(path: &str) -> Result<SweepSpec> {
        let text = crate::config::read_limited(path)
            .map_err(|e| Error::Input(format!("error: {path}: cannot read sweep spec: {e}")))?;
        SweepSpec::parse(path, &text)
    }

    fn check(&self, doc: &Document) -> Result<()> {
        if !crate::config::is_safe_name(&self.name) {
            return Err(doc.field_error("name", crate::config::SAFE_NAME));
        }
        if let Some(plot) = &self.plot {
            if !crate::config::is_safe_name(&plot.file) {
                return Err(doc.field_error("plot.file", crate::config::SAFE_NAME));
            }
        }
        if self.axes.is_empty() {
            return Err(doc.field_error("axes", "needs at least one axis"));
        }
        for (i, axis) in self.axes.iter().enumerate() {
            let at = format!("axes[{i}]");
            match (&axis.key, &axis.values, &axis.zip) {
                (Some(_), Some(values), None) => {
                    if values.is_empty() {
                        return Err(doc.field_error(&format!("{at}.values"), "an axis needs at least one value"));
                    }
                }
                (None, None, Some(zip)) => {
                    let mut len = None;
                    if zip.is_empty() {
                        return Err(doc.field_error(&format!("{at}.zip"), "a zipped axis needs at least one key"));
                    }
                    for (k, v) in zip {
                        let key = k.as_str().ok_or_else(|| {
                            doc.field_error(
                                &format!("{at}.zip"),
                                "its keys must be --set keys, e.g. workload.parallel.data",
                            )
                        })?;
                        let n = v.as_sequence().map(|s| s.len()).ok_or_else(|| {
                            doc.field_error(&format!("{at}.zip"), format!("`{key}` must have a list of values"))
                        })?;
                        if n == 0 {
                            return Err(doc.field_error(&format!("{at}.zip"), format!("`{key}` has no values")));
                        }
                        match len {
                            None => len = Some((key.to_string(), n)),
                            Some((ref first, m)) if m != n => {
                                return Err(doc.field_error(
                                    &format!("{at}.zip"),
                                    format!("zipped keys must have lists of the same length: `{first}` has {m} values, `{key}` has {n}"),
                                ))
                            }
                            _ => {}
                        }
                    }
                }
                _ => {
                    return Err(doc.field_error(
                        &at,
                        "an axis is either `key` with `values`, or `zip` with keys and lists",
                    ))
                }
            }
        }
        let count = self.point_count();
        if count > MAX_POINTS as f64 {
            return Err(Error::Input(format!(
                "error: {}: `axes`: the axes make {count:.3e} points, more than the {MAX_POINTS} a sweep may run",
                doc.source
            )));
        }
        let keys = self.axis_keys();
        let axis_of: Vec<usize> = self
            .axes
            .iter()
            .enumerate()
            .flat_map(|(a, axis)| {
                std::iter::repeat_n(a, axis.key.iter().count() + axis.zip.as_ref().map_or(0, |z| z.len()))
            })
            .collect();
        if let Some((j, key)) = keys.iter().enumerate().find(|(j, k)| keys[..*j].contains(k)) {
            let first = axis_of[keys.iter().position(|k| k == key).unwrap_or(0)];
            return Err(doc.field_error(
                &format!("axes[{}]", axis_of[j]),
                format!("`{key}` already varies on axes[{first}]: a key may vary on one axis only"),
            ));
        }
        if let Some(plot) = &self.plot {
            for (field, list) in [("plot.x", &plot.x), ("plot.series", &plot.series)] {
                if let Some(k) = list.iter().find(|k| !keys.contains(k)) {
                    return Err(doc.field_error(
                        field,
                        format!("`{k}` is not one of the axis keys ({})", keys.join(", ")),
                    ));
                }
            }
        }
        for (field, kind, source) in [
            ("hardware", DocumentKind::Hardware, &self.hardware),
            ("workload", DocumentKind::Workload, &self.workload),
        ] {
            if let Some(name) = source {
                Document::load(&Source::Named(name.clone()), kind)
                    .map_err(|e| doc.field_error(field, e.to_string().trim_start_matches("error: ")))?;
            }
        }
        // every `set` and every axis key must be a field the documents have: apply (the axis's
        // first value) and deserialize
        for (i, text) in self.set.iter().enumerate() {
            self.check_override(text)
                .map_err(|(field, msg)| doc.field_error(field.unwrap_or(&format!("set[{i}]")), msg))?;
        }
        for (key, value) in self.first_point() {
            self.check_override(&format!("{key}={}", scalar_text(&value)))
                .map_err(|(field, msg)| match field {
                    Some(field) => doc.field_error(field, msg),
                    None if msg.contains("unknown key") => {
                        Error::Input(format!("error: {}: unknown axis key `{key}`: {msg}", doc.source))
                    }
                    None => Error::Input(format!("error: {}: axis key `{key}`: {msg}", doc.source)),
                })?;
        }
        Ok(())
    }

    /// The first value of every axis key.
    fn first_point(&self) -> Point {
        let mut point = Vec::new();
        for axis in &self.axes {
            if let (Some(k), Some(v)) = (&axis.key, axis.values.as_ref().and_then(|v| v.first())) {
                point.push((k.clone(), v.clone()));
            }
            for (k, v) in axis.zip.iter().flatten() {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_sequence().and_then(|v| v.first())) {
                    point.push((k.to_string(), v.clone()));
                }
            }
        }
        point
    }

    /// Checks one `KEY=VALUE` of the spec: that it parses and its document has the key. The error:
    /// the spec's field at fault (`hardware` or `workload` where that document cannot be read; None:
    /// the override itself) and the message. Other errors of the value are the point's (a row's
    /// error), not the spec's.
    fn check_override(&self, text: &str) -> std::result::Result<(), (Option<&'static str>, String)> {
        let plain = |e: Error| e.to_string().trim_start_matches("error: ").to_string();
        let o = Override::parse(text).map_err(|e| (None, plain(e)))?;
        let (field, source) = match o.target {
            DocumentKind::Hardware => ("hardware", &self.hardware),
            DocumentKind::Workload => ("workload", &self.workload),
        };
        let source = source.clone().map(Source::Named).unwrap_or(Source::Default);
        let mut target = Document::load(&source, o.target).map_err(|e| (Some(field), plain(e)))?;
        target.apply(&o).map_err(|e| (None, plain(e)))?;
        let result = match o.target {
            DocumentKind::Hardware => target.deserialize::<crate::config::HardwareSpec>().map(|_| ()),
            DocumentKind::Workload => target.deserialize::<crate::config::WorkloadSpec>().map(|_| ()),
        };
        match result {
            Err(e @ Error::Input(_)) if e.to_string().contains("unknown key") => Err((None, plain(e))),
            _ => Ok(()),
        }
    }

    /// All keys that vary.
    pub fn axis_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for axis in &self.axes {
            if let Some(k) = &axis.key {
                keys.push(k.clone());
            }
            if let Some(zip) = &axis.zip {
                keys.extend(zip.keys().filter_map(|k| k.as_str().map(str::to_string)));
            }
        }
        keys
    }

    /// How many points the axes make (floating point: counted before anything is built).
    pub fn point_count(&self) -> f64 {
        self.axes
            .iter()
            .map(|a| match (&a.values, &a.zip) {
                (Some(v), _) => v.len() as f64,
                (_, Some(zip)) => zip.values().next().and_then(|v| v.as_sequence()).map_or(1, |s| s.len()) as f64,
                _ => 1.0,
            })
            .product()
    }

    /// The cartesian product of the axes, first axis outermost.
    pub fn points(&self) -> Vec<Point> {
        let mut points: Vec<Point> = vec![Vec::new()];
        for axis in &self.axes {
            let choices: Vec<Point> = match (&axis.key, &axis.values, &axis.zip) {
                (Some(k), Some(values), _) => values.iter().map(|v| vec![(k.clone(), v.clone())]).collect(),
                (_, _, Some(zip)) => {
                    let n = zip.values().next().and_then(|v| v.as_sequence()).map_or(0, |s| s.len());
                    (0..n)
                        .map(|i| {
                            zip.iter()
                                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_sequence()?.get(i)?.clone())))
                                .collect()
                        })
                        .collect()
                }
                _ => vec![Vec::new()],
            };
            points = points
                .iter()
                .flat_map(|p| {
                    choices
                        .iter()
                        .map(move |c| p.iter().cloned().chain(c.iter().cloned()).collect())
                })
                .collect();
        }
        points
    }
}
