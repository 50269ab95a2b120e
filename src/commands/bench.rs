//! `clustersim bench`: runs the benchmark cases and prints, per case, tasks, events, wall time
//! (and of it the graph's generation), events per second, peak memory and bytes per task (or one JSON object per case with `--json`).

use crate::cli::{BenchArgs, BenchCase};
use crate::error::{Error, Result};
use crate::studies::bench::{engine_synthetic, gpt_1t, reset_peak_rss, ring_4096, scale, BenchResult};

fn print_row(r: &BenchResult, json: bool) -> Result<()> {
    if json {
        let line = serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?;
        println!("{line}");
        return Ok(());
    }
    let mib = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.0}", b as f64 / (1 << 20) as f64));
    let per_task = r.bytes_per_task().map_or("-".to_string(), |b| format!("{b:.1}"));
    let simulated = r
        .simulated_s
        .map_or(String::new(), |s| format!("   (simulated {s:.4} s)"));
    let generated = r.generate_s.map_or("-".to_string(), |s| format!("{s:.3}"));
    println!(
        "{:<72} {:>10} {:>10} {:>9.3} {:>9} {:>12.0} {:>9} {:>8}{simulated}",
        r.case,
        r.tasks,
        r.events,
        r.wall_s,
        generated,
        r.events_per_s(),
        mib(r.peak_rss_bytes),
        per_task
    );
    Ok(())
}

/// Runs the selected cases and prints a table.
pub fn bench_command(args: &BenchArgs) -> Result<()> {
    if !args.json {
        println!(
            "{:<72} {:>10} {:>10} {:>9} {:>9} {:>12} {:>9} {:>8}",
            "case", "tasks", "events", "wall (s)", "built (s)", "events/s", "peak MiB", "B/task"
        );
    }
    let run = |case: &dyn Fn() -> Result<BenchResult>| -> Result<()> {
        reset_peak_rss();
        print_row(&case()?, args.json)
    };
    for _ in 0..args.repeat {
        if matches!(args.case, BenchCase::Engine | BenchCase::All) {
            for spread in [10_000, 1 << 40] {
                run(&|| Ok(engine_synthetic(10_000, 20_000_000, spread)))?;
            }
        }
        if matches!(args.case, BenchCase::Collective | BenchCase::All) {
            run(&ring_4096)?;
        }
        if matches!(args.case, BenchCase::Gpt1t | BenchCase::All) {
            for (network, representative) in [("analytic", false), ("flow", false), ("flow", true)] {
                run(&|| gpt_1t(network, representative))?;
            }
        }
        if matches!(args.case, BenchCase::Scale | BenchCase::All) {
            run(&scale)?;
        }
    }
    Ok(())
}
