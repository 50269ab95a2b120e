//! One shard of a sweep: its points by estimated cost, run, and written as a shard file; and a
//! sweep's rows rebuilt from shard rows.

use super::file::{Manifest, ShardFile, Study, SweepRow};
use super::fingerprint::{document_text, fingerprint};
use super::slice::{cost, Shard};
use crate::config::DocumentKind;
use crate::error::{Error, Result};
use crate::studies::sweep::{run_points, Inputs, Row, SweepResult, SweepSpec};
use crate::workload::generate::estimated_tasks;

/// The spec as the shard file carries it (YAML).
pub fn spec_text(spec: &SweepSpec) -> Result<String> {
    serde_yaml::to_string(spec).map_err(|e| Error::Internal(format!("sweep spec as YAML: {e}")))
}

/// The fingerprint of a sweep's resolved inputs: the spec, and the hardware and workload after the
/// spec's `set`.
pub fn inputs_hash(spec: &SweepSpec) -> Result<String> {
    let inputs = Inputs::of(spec)?;
    let text = format!(
        "sweep\n{}{}{}",
        spec_text(spec)?,
        document_text(&inputs.hardware, DocumentKind::Hardware, &inputs.base)?,
        document_text(&inputs.workload, DocumentKind::Workload, &inputs.base)?
    );
    Ok(fingerprint(&text))
}

/// Every point's estimated cost: the tasks of its simulation (1 for a point that is not a valid
/// configuration, which costs only its check). The points' configurations are resolved on every
/// core (in point order: the result does not depend on the cores).
pub fn costs(spec: &SweepSpec) -> Result<Vec<u64>> {
    use rayon::prelude::*;
    let inputs = Inputs::of(spec)?;
    Ok(spec
        .points()
        .par_iter()
        .map(|p| {
            inputs
                .config(p)
                .map_or(1, |cfg| cost(estimated_tasks(&cfg.workload, false)))
        })
        .collect())
}

/// Runs shard `shard` of a sweep and returns its file (not yet written).
pub fn run_shard(spec: &SweepSpec, shard: Shard, progress: bool) -> Result<ShardFile> {
    let inputs_hash = inputs_hash(spec)?;
    let costs = costs(spec)?;
    let ids = shard.points(&costs)?;
    let rows = run_points(spec, &ids, progress)?;
    let rows = ids
        .iter()
        .zip(rows)
        .map(|(&id, r)| SweepRow {
            id,
            metrics: r.metrics,
            plot_y: r.plot_y,
            error: r.error,
        })
        .collect();
    Ok(ShardFile {
        manifest: Manifest::new(&spec.name, inputs_hash, shard, costs.len(), ids),
        study: Study::Sweep {
            spec: spec_text(spec)?,
            rows,
        },
    })
}

/// The whole sweep from its spec (YAML, as in a shard file) and one row per point, in id order.
pub fn sweep_result(spec: &str, rows: Vec<SweepRow>) -> Result<SweepResult> {
    let spec: SweepSpec =
        serde_yaml::from_str(spec).map_err(|e| Error::Input(format!("error: shard file: its sweep spec: {e}")))?;
    let points = spec.points();
    let rows =
        rows.into_iter()
            .map(|r| {
                let point = points.get(r.id).cloned().ok_or_else(|| {
                    Error::Input(format!("error: shard file: point {} is not a point of the spec", r.id))
                })?;
                Ok(Row {
                    point,
                    report: None,
                    error: r.error,
                    metrics: r.metrics,
                    plot_y: r.plot_y,
                })
            })
            .collect::<Result<_>>()?;
    Ok(SweepResult { spec, rows })
}
