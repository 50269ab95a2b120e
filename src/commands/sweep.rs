//! `clustersim sweep SPEC [--shard K/N]`: runs every point of a sweep spec (or one shard of them)
//! and writes its CSV and plot (or the shard file).

use crate::cli::SweepArgs;
use crate::error::Result;
use crate::studies;
use crate::studies::sweep::SweepResult;
use std::path::Path;

/// `clustersim sweep`.
pub fn sweep_command(args: &SweepArgs) -> Result<()> {
    let spec = studies::sweep::SweepSpec::load(&args.spec)?;
    let shard = args.shard.as_deref().map(studies::shard::Shard::parse).transpose()?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(&spec.name));
    crate::report::output::check_out_dir(&dir)?;
    let start = std::time::Instant::now();
    if let Some(shard) = shard {
        let file = studies::shard::sweep::run_shard(&spec, shard, true)?;
        let path = file.write(&dir)?;
        println!(
            "sweep {}: shard {}: {} of {} points in {:.1} s\n  wrote {}",
            spec.name,
            shard.label(),
            file.manifest.point_ids.len(),
            file.manifest.points,
            start.elapsed().as_secs_f64(),
            path.display()
        );
        return Ok(());
    }
    let result = studies::sweep::run_sweep(&spec, true)?;
    finish(&result, &dir, &format!("in {:.1} s", start.elapsed().as_secs_f64()))
}

/// Turns a complete set of rows into the sweep's outputs, for `sweep` and for `merge`: checks that
/// some point ran and the metrics exist, writes the CSV and plot into `dir`, prints the summary
/// (`how`: "in 3.2 s", "merged from 4 shards").
pub(super) fn finish(result: &SweepResult, dir: &Path, how: &str) -> Result<()> {
    studies::sweep::execute::require_some(result)?;
    let written = studies::sweep::write_sweep(result, dir)?;
    let failed = studies::sweep::execute::failures(result);
    let points = match result.rows.len() {
        1 => "1 point".to_string(),
        n => format!("{n} points"),
    };
    println!("sweep {}: {points} ({} invalid) {how}", result.spec.name, failed.len());
    for f in &failed {
        println!("  invalid point {f}");
    }
    for p in written {
        println!("  wrote {}", p.display());
    }
    Ok(())
}
