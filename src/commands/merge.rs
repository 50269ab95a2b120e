//! `clustersim merge DIR... [--out DIR]`: checks the shard files of a sharded sweep or plan and
//! writes exactly what the unsharded command writes, through the same finishing code.

use crate::cli::MergeArgs;
use crate::error::Result;
use crate::studies::shard::merge::{merge, shard_files, Merged};
use std::path::Path;

/// `clustersim merge`.
pub fn merge_command(args: &MergeArgs) -> Result<()> {
    let files = shard_files(&args.inputs)?;
    let merged = merge(&files)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&merged.name));
    crate::report::output::check_out_dir(&dir)?;
    let n = merged.shards;
    match &merged.run {
        Merged::Sweep(result) => super::sweep::finish(result, &dir, &format!("merged from {n} shards")),
        Merged::Plan { plan, gpus, top } => super::plan::finish(
            plan,
            *gpus,
            *top,
            Some(&dir),
            &format!("in {n} shards, merged (analytic network, one GPU per stage)"),
        ),
    }
}
