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
    println!("wrote {} in {:.1} s", args.out.display(), start.elapsed().as_secs_f64());
    Ok(())
}
