//! `clustersim plan`: ranks the parallel configurations of a model on N GPUs and writes plan.csv.

use super::input::{parse_overrides, source};
use crate::cli::PlanArgs;
use crate::error::{Error, Result};
use crate::studies;

/// `clustersim plan`.
pub fn plan_command(args: &PlanArgs) -> Result<()> {
    let overrides = parse_overrides(&args.input)?;
    if let Some(t) = args.tokens {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::Input(format!(
                "error: --tokens {t}: must be a positive number of tokens, e.g. 300e9"
            )));
        }
    }
    let dir = if args.no_output {
        None
    } else {
        let name = args
            .input
            .workload
            .as_deref()
            .map(|w| w.rsplit('/').next().unwrap_or(w).trim_end_matches(".yaml"))
            .unwrap_or("gpt-5.9b");
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| std::path::Path::new("results").join(format!("plan-{name}-{}", args.gpus)));
        crate::report::output::check_out_dir(&dir)?;
        Some(dir)
    };
    let start = std::time::Instant::now();
    let plan = studies::plan::plan(
        &source(&args.input.hardware),
        &source(&args.input.workload),
        &overrides,
        args.gpus,
        args.tokens,
    )?;
    println!(
        "{} valid configurations of {} GPUs, {} do not fit in memory, {} simulated in {:.1} s (analytic network, one GPU per stage)\n",
        plan.valid,
        args.gpus,
        plan.out_of_memory,
        plan.ranked.len(),
        start.elapsed().as_secs_f64()
    );
    print!("{}", studies::plan::table(&plan, args.top));
    if let Some(dir) = dir {
        let path = dir.join("plan.csv");
        crate::report::output::write_atomic(&path, |w| w.write_all(studies::plan::csv(&plan).as_bytes()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}
