//! `clustersim plan [--shard K/N]`: ranks the parallel configurations of a model on N GPUs and
//! writes plan.csv (or simulates one shard of the candidates and writes its shard file).

use super::input::{parse_overrides, source};
use crate::cli::PlanArgs;
use crate::error::{Error, Result};
use crate::studies;
use crate::studies::plan::Plan;
use std::path::{Path, PathBuf};

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
    let shard = args.shard.as_deref().map(studies::shard::Shard::parse).transpose()?;
    if shard.is_some() && args.check > 0 {
        return Err(Error::Input(format!(
            "error: --check {} runs after the ranking, which a shard does not have: run it without --shard",
            args.check
        )));
    }
    if shard.is_some() && args.no_output {
        return Err(Error::Input(
            "error: --shard writes a shard file into the output folder; it cannot be combined with --no-output".into(),
        ));
    }
    let name = output_name(args);
    let dir = if args.no_output {
        None
    } else {
        let dir = args.out.clone().unwrap_or_else(|| Path::new("results").join(&name));
        crate::report::output::check_out_dir(&dir)?;
        Some(dir)
    };
    let start = std::time::Instant::now();
    if let (Some(shard), Some(dir)) = (shard, &dir) {
        let req = studies::shard::plan::PlanRequest {
            hardware: source(&args.input.hardware),
            workload: source(&args.input.workload),
            sets: overrides,
            gpus: args.gpus,
            tokens: args.tokens,
            top: args.top,
            name,
        };
        let file = studies::shard::plan::run_shard(&req, shard)?;
        let path = file.write(dir)?;
        println!(
            "plan shard {}: {} of {} fitting configurations simulated in {:.1} s\n  wrote {}",
            shard.label(),
            file.row_ids().len(),
            file.manifest.points,
            start.elapsed().as_secs_f64(),
            path.display()
        );
        return Ok(());
    }
    let (hardware, workload) = (source(&args.input.hardware), source(&args.input.workload));
    let mut plan = studies::plan::plan(&hardware, &workload, &overrides, args.gpus, args.tokens)?;
    let mut how = format!(
        "in {:.1} s (analytic network, one GPU per stage)",
        start.elapsed().as_secs_f64()
    );
    if args.check > 0 {
        let start = std::time::Instant::now();
        studies::plan::check(&mut plan, &hardware, &workload, &overrides, args.check)?;
        let k = args.check.min(plan.ranked.len());
        let shown = if args.top < k {
            format!("; the table shows {} of them, plan.csv all", args.top)
        } else {
            String::new()
        };
        how += &format!(
            "; the fastest {k} run again with the flow network model in {:.1} s (column flow{shown})",
            start.elapsed().as_secs_f64()
        );
    }
    finish(&plan, args.gpus, args.top, dir.as_deref(), &how)
}

/// `plan-<workload>-<gpus>`: the default output folder's name.
fn output_name(args: &PlanArgs) -> String {
    let workload = args
        .input
        .workload
        .as_deref()
        .map(|w| w.rsplit('/').next().unwrap_or(w).trim_end_matches(".yaml"))
        .unwrap_or("gpt-5.9b");
    format!("plan-{workload}-{}", args.gpus)
}

/// Turns a complete ranking into the plan's outputs, for `plan` and for `merge`: prints the counts
/// (`how`: "in 12.3 s", "merged from 2 shards") and the top rows, writes plan.csv into `dir`.
pub(super) fn finish(plan: &Plan, gpus: u64, top: usize, dir: Option<&Path>, how: &str) -> Result<()> {
    let pruned = match plan.pruned {
        0 => String::new(),
        n => format!(", {n} pruned (a context ring whose half ring fits, with a bubble under 5%)"),
    };
    println!(
        "{} valid configurations of {} GPUs, {} do not fit in memory{pruned}, {} simulated {how}\n",
        plan.valid,
        gpus,
        plan.out_of_memory,
        plan.ranked.len(),
    );
    print!("{}", studies::plan::table(plan, top));
    if let Some(order) = studies::plan::flow_order(plan) {
        println!("\nthe checked ranks in the flow model's order, fastest first: {order}");
    }
    if let Some(dir) = dir {
        let path: PathBuf = dir.join("plan.csv");
        crate::report::output::write_atomic(&path, |w| w.write_all(studies::plan::csv(plan).as_bytes()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}
