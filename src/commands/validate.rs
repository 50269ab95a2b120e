//! `clustersim validate`: reproduces the Megatron-LM figures and prints the error table.

use crate::cli::ValidateArgs;
use crate::error::Result;
use crate::studies;

/// `clustersim validate`.
pub fn validate_command(args: &ValidateArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let (summaries, _) = studies::validate::validate(&args.out, true)?;
    println!(
        "{:<8} {:>7} {:>16} {:>15} {:>12}",
        "figure", "points", "mean abs. error", "max abs. error", "order kept"
    );
    for f in &summaries {
        let unit = f.unit();
        println!(
            "{:<8} {:>7} {:>14.3}{unit:2} {:>13.3}{unit:2} {:>9}/{}",
            f.figure,
            f.points,
            f.mean_abs_error,
            f.max_abs_error,
            f.order_kept(),
            f.order_pairs
        );
    }
    let hw =
        crate::config::load_run_config(&crate::config::Source::Default, &crate::config::Source::Default, &[])?.hardware;
    let collectives = studies::nccl_tests::compare(&hw)?;
    crate::report::output::write_atomic(&args.out.join("nccl-tests.csv"), |w| {
        w.write_all(studies::nccl_tests::csv(&collectives).as_bytes())
    })?;
    crate::report::output::write_atomic(&args.out.join("nccl-tests.md"), |w| {
        w.write_all(studies::nccl_tests::markdown(&collectives, &hw.name).as_bytes())
    })?;
    println!(
        "\n{:<16} {:<22} {:>5} {:>6} {:>8} {:>7} {:>10} {:>10}",
        "collective", "source", "GPUs", "nodes", "from", "points", "mean err", "max err"
    );
    for m in studies::nccl_tests::summarise(&collectives, 64 << 10) {
        println!(
            "{:<16} {:<22} {:>5} {:>6} {:>8} {:>7} {:>9.1}% {:>9.1}%",
            m.op.name(),
            m.source,
            m.gpus,
            m.nodes,
            crate::units::human_size(m.from_bytes),
            m.points,
            m.mean_abs_pct,
            m.max_abs_pct.0
        );
    }
    println!("wrote {} in {:.1} s", args.out.display(), start.elapsed().as_secs_f64());
    Ok(())
}
