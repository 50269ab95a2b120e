//! `clustersim trace export`: writes a generated workload as a trace file.

use super::input::{load_input, parse_overrides};
use crate::cli::{ExportArgs, TraceFormat};
use crate::error::Result;

/// `clustersim trace export`.
pub fn export_command(args: &ExportArgs) -> Result<()> {
    let overrides = parse_overrides(&args.input)?;
    let cfg = load_input(&args.input, &overrides)?;
    // the graph is built whole before it is written: a run's memory limit applies
    crate::studies::run::check_tasks(
        "this trace",
        crate::workload::generate::estimated_tasks(&cfg.workload, false),
        crate::studies::run::DEFAULT_MAX_MEMORY,
        "shrink the batch, the layers or the cluster",
    )?;
    match args.format {
        TraceFormat::Chakra => crate::report::output::check_out_dir(&args.out)?,
        TraceFormat::Jsonl => crate::report::output::check_out_file(&args.out)?,
    }
    let graph = crate::workload::generate(&cfg.workload);
    if args.format == TraceFormat::Chakra {
        let dir = &args.out;
        let (files, groups) = crate::workload::trace::chakra::encode(&graph, Some(&cfg.workload));
        let name = &cfg.workload.name;
        for (r, bytes) in files.iter().enumerate() {
            crate::report::output::write_atomic(&dir.join(format!("{name}.{r}.et")), |w| w.write_all(bytes))?;
        }
        crate::report::output::write_atomic(&dir.join(format!("{name}.json")), |w| w.write_all(groups.as_bytes()))?;
        println!(
            "wrote {}/{name}.{{0..{}}}.et and {name}.json ({} tasks on {} ranks; run it with --trace {}/{name} --comm-groups {}/{name}.json)",
            dir.display(),
            graph.ranks - 1,
            graph.len(),
            graph.ranks,
            dir.display(),
            dir.display()
        );
        return Ok(());
    }
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
