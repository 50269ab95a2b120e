//! Merging shards: find the shard files, check that they are the N shards of one run (same
//! inputs, each shard once, no point twice, every point present) and rebuild the complete sweep or
//! plan, exactly as the unsharded command would have it before writing.
//!
//! Everything is checked before anything is written: a bad set of shards exits with code 2 naming
//! the file or the missing shard, and the output folder is left as it was.

use super::file::{PlanRow, ShardFile, Study, SweepRow};
use super::plan::plan_from_rows;
use super::sweep::sweep_result;
use crate::error::{Error, Result};
use crate::studies::plan::Plan;
use crate::studies::sweep::SweepResult;
use std::path::{Path, PathBuf};

/// A merged run, ready for the command's outputs.
#[derive(Debug, Clone)]
pub enum Merged {
    /// A whole sweep.
    Sweep(Box<SweepResult>),
    /// A whole plan.
    Plan {
        /// The ranking.
        plan: Plan,
        /// GPUs planned for.
        gpus: u64,
        /// Rows the table prints.
        top: usize,
    },
}

/// What a merge produced: the run, its default output folder name and how many shards made it.
#[derive(Debug, Clone)]
pub struct MergedRun {
    /// The complete sweep or plan.
    pub run: Merged,
    /// `results/<name>/` is where the unsharded command writes by default.
    pub name: String,
    /// N.
    pub shards: u32,
}

/// Whether a file name is a shard file's (`shard-K-of-N.json`).
pub fn is_shard_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("shard-").and_then(|r| r.strip_suffix(".json")) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once("-of-").is_some_and(|(k, n)| digits(k) && digits(n))
}

/// The shard files named by the command line: a file as given, a folder's `shard-K-of-N.json`
/// files in name order. A folder without any is an error.
pub fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let entries = std::fs::read_dir(input)
            .map_err(|e| Error::Input(format!("error: {}: cannot read folder: {e}", input.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| is_shard_name(&e.file_name().to_string_lossy()))
            .map(|e| input.join(e.file_name()))
            .collect();
        if found.is_empty() {
            return Err(Error::Input(format!(
                "error: {}: no shard file (shard-K-of-N.json) in this folder",
                input.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Reads, checks and merges shard files.
pub fn merge(files: &[PathBuf]) -> Result<MergedRun> {
    let shards: Vec<(PathBuf, ShardFile)> = files
        .iter()
        .map(|f| ShardFile::read(f).map(|s| (f.clone(), s)))
        .collect::<Result<_>>()?;
    let (first_path, first) = shards
        .first()
        .ok_or_else(|| Error::Input("error: merge: no shard files given".into()))?;
    let n = first.manifest.shards;
    for (path, s) in &shards[1..] {
        same_run(first_path, first, path, s)?;
    }
    let by_index = each_shard_once(&shards, n)?;
    each_point_once(&by_index, first.manifest.points)?;
    let name = first.manifest.name.clone();
    let ordered: Vec<&ShardFile> = by_index.iter().map(|(_, s)| *s).collect();
    let run = match &first.study {
        Study::Sweep { spec, .. } => {
            let rows = in_id_order(&ordered, sweep_rows, |r| r.id);
            Merged::Sweep(Box::new(sweep_result(spec, rows)?))
        }
        Study::Plan {
            gpus,
            top,
            valid,
            out_of_memory,
            pruned,
            ..
        } => Merged::Plan {
            plan: plan_from_rows(
                in_id_order(&ordered, plan_rows, |r| r.id),
                *valid,
                *out_of_memory,
                *pruned,
            ),
            gpus: *gpus,
            top: *top,
        },
    };
    Ok(MergedRun { run, name, shards: n })
}

/// Every shard's rows, in point id order (the unsharded order).
fn in_id_order<R: Clone>(shards: &[&ShardFile], rows: fn(&ShardFile) -> &[R], id: fn(&R) -> usize) -> Vec<R> {
    let mut all: Vec<R> = shards.iter().flat_map(|s| rows(s).iter().cloned()).collect();
    all.sort_by_key(id);
    all
}

fn sweep_rows(s: &ShardFile) -> &[SweepRow] {
    match &s.study {
        Study::Sweep { rows, .. } => rows,
        Study::Plan { .. } => &[],
    }
}

fn plan_rows(s: &ShardFile) -> &[PlanRow] {
    match &s.study {
        Study::Plan { rows, .. } => rows,
        Study::Sweep { .. } => &[],
    }
}

/// `b` must be a shard of the same run as `a`: same inputs, kind, N, points and summary counts.
fn same_run(a_path: &Path, a: &ShardFile, b_path: &Path, b: &ShardFile) -> Result<()> {
    let (ma, mb) = (&a.manifest, &b.manifest);
    if ma.inputs_hash != mb.inputs_hash {
        return Err(Error::Input(format!(
            "error: {}: not a shard of the same run as {} (inputs hash {} vs {}): shards of different sweeps or plans, or of different hardware, workload or --set, cannot be merged",
            b_path.display(),
            a_path.display(),
            mb.inputs_hash,
            ma.inputs_hash
        )));
    }
    let same_summary = match (&a.study, &b.study) {
        (Study::Sweep { spec: x, .. }, Study::Sweep { spec: y, .. }) => x == y,
        (
            Study::Plan {
                gpus,
                top,
                tokens,
                valid,
                out_of_memory,
                pruned,
                ..
            },
            Study::Plan {
                gpus: g,
                top: t,
                tokens: k,
                valid: v,
                out_of_memory: o,
                pruned: q,
                ..
            },
        ) => (gpus, top, tokens, valid, out_of_memory, pruned) == (g, t, k, v, o, q),
        _ => false,
    };
    if ma.shards != mb.shards || ma.points != mb.points || ma.name != mb.name || !same_summary {
        return Err(Error::Input(format!(
            "error: {}: shard {} of {} ({} points), but {} is a shard of {} ({} points) with the same inputs hash: the files disagree; rerun the shards",
            b_path.display(),
            mb.shard,
            mb.shards,
            mb.points,
            a_path.display(),
            ma.shards,
            ma.points
        )));
    }
    Ok(())
}

/// The shards by index, each present exactly once.
fn each_shard_once(shards: &[(PathBuf, ShardFile)], n: u32) -> Result<Vec<(&Path, &ShardFile)>> {
    let mut slot: Vec<Option<(&Path, &ShardFile)>> = vec![None; n as usize];
    for (path, s) in shards {
        let k = s.manifest.shard as usize;
        if let Some((other, _)) = slot[k] {
            return Err(Error::Input(format!(
                "error: shard {k} of {n} given twice: {} and {}",
                other.display(),
                path.display()
            )));
        }
        slot[k] = Some((path, s));
    }
    let missing: Vec<String> = (0..n as usize)
        .filter(|&k| slot[k].is_none())
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        let (what, verb) = if missing.len() == 1 {
            ("shard", "is")
        } else {
            ("shards", "are")
        };
        return Err(Error::Input(format!(
            "error: {what} {} of {n} {verb} missing ({} of {n} given); rerun {} with --shard {}/{n} and merge again",
            missing.join(", "),
            n as usize - missing.len(),
            if missing.len() == 1 { "it" } else { "each" },
            if missing.len() == 1 { missing[0].as_str() } else { "K" },
        )));
    }
    Ok(slot.into_iter().flatten().collect())
}

/// Every point of the run in exactly one shard.
fn each_point_once(shards: &[(&Path, &ShardFile)], points: usize) -> Result<()> {
    let mut owner: Vec<Option<&Path>> = vec![None; points];
    for (path, s) in shards {
        for &p in &s.manifest.point_ids {
            if let Some(other) = owner[p] {
                return Err(Error::Input(format!(
                    "error: point {p} is in two shards: {} and {}; the shard files disagree on the split (rerun the shards)",
                    other.display(),
                    path.display()
                )));
            }
            owner[p] = Some(path);
        }
    }
    if let Some(p) = owner.iter().position(Option::is_none) {
        return Err(Error::Input(format!(
            "error: point {p} is in no shard although all {} shards are present; the shard files disagree on the split (rerun the shards)",
            shards.len()
        )));
    }
    Ok(())
}
