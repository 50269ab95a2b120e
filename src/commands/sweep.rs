//! `clustersim sweep SPEC`: runs every point of a sweep spec and writes its CSV and plot.

use crate::cli::SweepArgs;
use crate::error::Result;
use crate::studies;

/// `clustersim sweep`.
pub fn sweep_command(args: &SweepArgs) -> Result<()> {
    let spec = studies::sweep::SweepSpec::load(&args.spec)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(&spec.name));
    crate::report::output::check_out_dir(&dir)?;
    let start = std::time::Instant::now();
    let result = studies::sweep::run_sweep(&spec, true)?;
    studies::sweep::execute::require_some(&result)?;
    let written = studies::sweep::write_sweep(&result, &dir)?;
    let failed = studies::sweep::execute::failures(&result);
    println!(
        "sweep {}: {} points ({} invalid) in {:.1} s",
        spec.name,
        result.rows.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    for f in &failed {
        println!("  invalid point {f}");
    }
    for p in written {
        println!("  wrote {}", p.display());
    }
    Ok(())
}
