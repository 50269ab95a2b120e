//! `clustersim trace export`: writes a generated workload as a trace file.

use super::input::{load_input, parse_overrides};
use crate::cli::ExportArgs;
use crate::error::Result;

/// `clustersim trace export`.
pub fn export_command(args: &ExportArgs) -> Result<()> {
    let overrides = parse_overrides(&args.input)?;
    let cfg = load_input(&args.input, &overrides)?;
    crate::report::output::check_out_file(&args.out)?;
    let graph = crate::workload::generate(&cfg.workload);
    crate::report::output::write_atomic(&args.out, |w| {
        crate::workload::trace::write(w, &cfg.workload.name, Some(&cfg.workload), &graph)
    })?;
    println!(
        "wrote {} ({} tasks on {} ranks)",
        args.out.display(),
        graph.len(),
        graph.ranks
    );
    Ok(())
}
