//! `clustersim bench`: runs the benchmark cases and prints events per second and wall time.

use crate::cli::{BenchArgs, BenchCase};
use crate::error::Result;
use crate::studies::bench::{engine_synthetic, gpt_1t, ring_4096, BenchResult};

fn print_row(r: &BenchResult, note: &str) {
    println!(
        "{:<60} {:>12} {:>10.3} {:>14.0}{note}",
        r.case,
        r.events,
        r.wall_s,
        r.events_per_s()
    );
}

/// Runs the selected cases and prints a table.
pub fn bench_command(args: &BenchArgs) -> Result<()> {
    println!("{:<80} {:>12} {:>10} {:>14}", "case", "events", "wall (s)", "events/s");
    for _ in 0..args.repeat.max(1) {
        if matches!(args.case, BenchCase::Engine | BenchCase::All) {
            for spread in [10_000, 1 << 40] {
                print_row(&engine_synthetic(10_000, 20_000_000, spread), "");
            }
        }
        if matches!(args.case, BenchCase::Collective | BenchCase::All) {
            let (r, t) = ring_4096()?;
            print_row(&r, &format!("   (simulated {:.2} ms)", t * 1e3));
        }
        if matches!(args.case, BenchCase::Gpt1t | BenchCase::All) {
            for network in ["analytic", "flow"] {
                let (r, iter) = gpt_1t(network)?;
                print_row(&r, &format!("   (simulated iteration {iter:.2} s)"));
            }
        }
    }
    Ok(())
}
