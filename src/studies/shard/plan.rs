//! One shard of a plan: the search (every shard does it: it is cheap), the fitting candidates
//! dealt by estimated cost, this shard's simulated, written as a shard file; and a plan rebuilt
//! from shard rows.

use super::file::{Manifest, PlanRow, ShardFile, Study};
use super::fingerprint::{document_text, fingerprint};
use super::slice::{cost, Shard};
use crate::config::{DocumentKind, Override, Source};
use crate::error::Result;
use crate::studies::plan::{check_work, rank, search, simulate, Plan};
use crate::workload::generate::estimated_tasks;

/// What `clustersim plan` was asked.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Hardware file or preset.
    pub hardware: Source,
    /// Workload file or preset.
    pub workload: Source,
    /// `--set` overrides.
    pub sets: Vec<Override>,
    /// GPUs to plan for.
    pub gpus: u64,
    /// Tokens to train on.
    pub tokens: Option<f64>,
    /// Rows the table prints.
    pub top: usize,
    /// The unsharded output folder's name (`plan-<workload>-<gpus>`).
    pub name: String,
}

/// The fingerprint of a plan's resolved inputs: its arguments, and the hardware and workload after
/// `--set`.
pub fn inputs_hash(req: &PlanRequest) -> Result<String> {
    let text = format!(
        "plan\ngpus: {}\ntokens: {:?}\ntop: {}\n{}{}",
        req.gpus,
        req.tokens,
        req.top,
        document_text(&req.hardware, DocumentKind::Hardware, &req.sets)?,
        document_text(&req.workload, DocumentKind::Workload, &req.sets)?
    );
    Ok(fingerprint(&text))
}

/// Runs shard `shard` of a plan and returns its file (not yet written). Each candidate's cost is
/// the tasks of its one-GPU-per-stage simulation.
pub fn run_shard(req: &PlanRequest, shard: Shard) -> Result<ShardFile> {
    let inputs_hash = inputs_hash(req)?;
    let found = search(&req.hardware, &req.workload, &req.sets, req.gpus)?;
    let costs: Vec<u64> = found
        .fitting
        .iter()
        .map(|(_, cfg)| cost(estimated_tasks(&cfg.workload, true)))
        .collect();
    let ids = shard.points(&costs)?;
    check_work(&found, &ids, req.tokens)?;
    let rows = simulate(&found.fitting, &ids, req.tokens)
        .into_iter()
        .map(|(id, ranked)| PlanRow { id, ranked })
        .collect();
    Ok(ShardFile {
        manifest: Manifest::new(&req.name, inputs_hash, shard, costs.len(), ids),
        study: Study::Plan {
            gpus: req.gpus,
            top: req.top,
            tokens: req.tokens,
            valid: found.valid,
            out_of_memory: found.out_of_memory,
            pruned: found.pruned,
            rows,
        },
    })
}

/// The whole plan from every simulated candidate's row, in id order (the unsharded search order).
pub fn plan_from_rows(rows: Vec<PlanRow>, valid: usize, out_of_memory: usize, pruned: usize) -> Plan {
    rank(
        rows.into_iter().map(|r| r.ranked).collect(),
        valid,
        out_of_memory,
        pruned,
    )
}
