//! The shard file: `shard-K-of-N.json` in the shard's output folder, a manifest and the rows.
//!
//! ```json
//! { "manifest": { "format": "clustersim-shard", "format_version": 1, "clustersim_version": "0.1.0",
//!                 "name": "shard-demo", "inputs_hash": "fnv1a-128:…", "shard": 2, "shards": 4,
//!                 "points": 24, "point_ids": [3, 9, 14, 20] },
//!   "study": { "sweep": { "spec": "<the sweep spec as YAML>",
//!                         "rows": [ { "id": 3, "metrics": [123.4, null], "plot_y": 123.4, "error": null } ] } } }
//! ```
//!
//! A plan's `study` is `{ "plan": { "gpus", "top", "tokens", "valid", "out_of_memory", "rows" } }`,
//! each row an `id` and the simulated candidate (`ranked`). Numbers are written as the shortest
//! text that reads back to the same bits. Reading checks everything a merge relies on, so a
//! truncated, edited or foreign file is refused with its name and the problem.

use super::slice::Shard;
use crate::error::{Error, Result};
use crate::studies::plan::Ranked;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The largest shard file read: a sweep's 10^6 points at a few hundred bytes per row fit in it.
pub const MAX_SHARD_BYTES: u64 = 1 << 30;

/// A shard file's text: a regular file of at most [`MAX_SHARD_BYTES`] (not a device or a pipe that
/// would never end).
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_SHARD_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {} GiB a shard file may have",
            meta.len(),
            MAX_SHARD_BYTES >> 30
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SHARD_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The `format` of a shard file.
pub const FORMAT: &str = "clustersim-shard";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The clustersim version that writes shards (and must merge them).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a shard is a part of, and which part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The clustersim that ran the shard.
    pub clustersim_version: String,
    /// The unsharded command's output folder name (`results/<name>/`), the merge's default.
    pub name: String,
    /// [`super::fingerprint::fingerprint`] of the resolved inputs.
    pub inputs_hash: String,
    /// K.
    pub shard: u32,
    /// N.
    pub shards: u32,
    /// Points of the whole run.
    pub points: usize,
    /// The points this shard ran, ascending.
    pub point_ids: Vec<usize>,
}

impl Manifest {
    /// The manifest of shard `shard` of a run named `name` with inputs `inputs_hash` and `points`
    /// points, this shard running `point_ids`, written by this clustersim in this format.
    pub fn new(name: &str, inputs_hash: String, shard: Shard, points: usize, point_ids: Vec<usize>) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            clustersim_version: VERSION.into(),
            name: name.into(),
            inputs_hash,
            shard: shard.index,
            shards: shard.count,
            points,
            point_ids,
        }
    }
}

/// One sweep point's outcome as the outputs need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRow {
    /// Point id (index into the spec's points).
    pub id: usize,
    /// The spec's metrics, in order.
    pub metrics: Vec<Option<f64>>,
    /// The plot's y metric.
    pub plot_y: Option<f64>,
    /// Why the point did not run.
    pub error: Option<String>,
}

/// One simulated plan candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRow {
    /// Point id (index into the fitting candidates, in search order).
    pub id: usize,
    /// The candidate and its results.
    pub ranked: Ranked,
}

/// The study a shard belongs to, with its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Study {
    /// A slice of `clustersim sweep`.
    Sweep {
        /// The spec, as YAML (the merge needs nothing else).
        spec: String,
        /// One row per point of the shard, in id order.
        rows: Vec<SweepRow>,
    },
    /// A slice of `clustersim plan`.
    Plan {
        /// GPUs planned for.
        gpus: u64,
        /// Rows the table prints.
        top: usize,
        /// Tokens to train on, if given.
        tokens: Option<f64>,
        /// Candidates that are valid configurations (of the whole plan).
        valid: usize,
        /// Valid candidates that do not fit in memory (of the whole plan).
        out_of_memory: usize,
        /// Fitting candidates pruned as unable to win (of the whole plan; 0 in files from before
        /// the context axis).
        #[serde(default, skip_serializing_if = "is_zero")]
        pruned: usize,
        /// The shard's candidates that simulated, in id order.
        rows: Vec<PlanRow>,
    },
}

/// The manifest of the shard file at `path`, if one is there and readable.
fn existing_manifest(path: &Path) -> Option<Manifest> {
    /// A shard file's manifest alone (its rows are skipped).
    #[derive(Deserialize)]
    struct Head {
        manifest: Manifest,
    }
    let file = crate::config::open_input(path).ok()?;
    let head: Head = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    Some(head.manifest)
}

/// A whole shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    /// What it is a part of.
    pub manifest: Manifest,
    /// The rows.
    pub study: Study,
}

impl ShardFile {
    /// Writes the file into `dir` (created if needed) under its `shard-K-of-N.json` name, through a
    /// temporary; returns its path. A shard file of another run already there (another inputs
    /// hash: another spec, hardware, workload or `--set`) is not replaced: the write fails naming
    /// it, and the other run's file stays. The same run's shard, rerun, replaces its own.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        crate::report::output::create_dir(dir)?;
        let path = dir.join(format!(
            "shard-{}-of-{}.json",
            self.manifest.shard, self.manifest.shards
        ));
        crate::report::output::write_atomic(&path, |w| {
            // checked under the folder's lock, which write_atomic holds
            if let Some(other) = existing_manifest(&path).filter(|m| m.inputs_hash != self.manifest.inputs_hash) {
                return Err(std::io::Error::other(format!(
                    "a shard file of another run is there (\"{}\", inputs hash {}; this one is \"{}\", {}): \
                     give each run its own --out",
                    other.name, other.inputs_hash, self.manifest.name, self.manifest.inputs_hash
                )));
            }
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })?;
        Ok(path)
    }

    /// Reads and checks a shard file.
    pub fn read(path: &Path) -> Result<ShardFile> {
        let name = path.display();
        let text =
            read_bounded(path).map_err(|e| Error::Input(format!("error: {name}: cannot read shard file: {e}")))?;
        let file: ShardFile = serde_json::from_str(&text).map_err(|e| {
            let what = if e.is_eof() { "truncated" } else { "corrupt" };
            Error::Input(format!(
                "error: {name}: not a complete shard file ({what}: {e}); rerun the shard that wrote it"
            ))
        })?;
        file.check()
            .map_err(|why| Error::Input(format!("error: {name}: {why}")))?;
        Ok(file)
    }

    /// The rows' ids.
    pub fn row_ids(&self) -> Vec<usize> {
        match &self.study {
            Study::Sweep { rows, .. } => rows.iter().map(|r| r.id).collect(),
            Study::Plan { rows, .. } => rows.iter().map(|r| r.id).collect(),
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        let m = &self.manifest;
        if m.format != FORMAT {
            return Err(format!("not a clustersim shard file (format `{}`)", m.format));
        }
        if m.format_version != FORMAT_VERSION {
            return Err(format!(
                "shard file format version {}; this clustersim reads version {FORMAT_VERSION}",
                m.format_version
            ));
        }
        if m.clustersim_version != VERSION {
            return Err(format!(
                "written by clustersim {}, this is clustersim {VERSION}: merge with the version that ran the shards (results may differ between versions)",
                m.clustersim_version
            ));
        }
        if !crate::config::is_safe_name(&m.name) {
            return Err(format!(
                "corrupt manifest: name `{}` {}",
                m.name,
                crate::config::SAFE_NAME
            ));
        }
        if m.shards == 0 || m.shard >= m.shards {
            return Err(format!("corrupt manifest: shard {} of {}", m.shard, m.shards));
        }
        if m.point_ids.is_empty()
            || m.point_ids.windows(2).any(|w| w[0] >= w[1])
            || m.point_ids.last().is_some_and(|&p| p >= m.points)
        {
            return Err(format!(
                "corrupt manifest: point_ids must be ascending, non-empty and below points ({})",
                m.points
            ));
        }
        let ids = self.row_ids();
        match &self.study {
            Study::Sweep { rows, spec } => {
                if ids != m.point_ids {
                    return Err("corrupt shard: its rows are not one per point of the manifest".into());
                }
                let spec: crate::studies::sweep::SweepSpec =
                    serde_yaml::from_str(spec).map_err(|e| format!("corrupt shard: its sweep spec: {e}"))?;
                if spec.point_count() != m.points as f64 {
                    return Err(format!(
                        "corrupt shard: its sweep spec has {} points, its manifest {}",
                        spec.point_count(),
                        m.points
                    ));
                }
                if rows.iter().any(|r| r.metrics.len() != spec.metrics.len()) {
                    return Err("corrupt shard: a row's metrics do not match the spec's".into());
                }
            }
            Study::Plan { .. } => {
                let mut manifest = m.point_ids.iter().peekable();
                let inside = ids.iter().all(|id| {
                    while manifest.next_if(|p| *p < id).is_some() {}
                    manifest.next_if(|p| *p == id).is_some()
                });
                if !inside {
                    return Err("corrupt shard: a row is not one of the manifest's points".into());
                }
            }
        }
        Ok(())
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
