//! `clustersim collective`: an nccl-tests-style table, CSV and bus-bandwidth plot for one collective.

use super::input::{load_hardware, source};
use crate::cli::CollectiveArgs;
use crate::config::Override;
use crate::error::Result;
use crate::studies;

/// `clustersim collective`.
pub fn collective_command(args: &CollectiveArgs) -> Result<()> {
    let overrides: Vec<Override> = args.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    let (hw, _) = load_hardware(
        &source(&args.hardware),
        &overrides,
        "`collective` takes hardware.* keys only",
    )?;
    let sizes = studies::collective::parse_sizes(&args.sizes)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        std::path::Path::new("results/collective").join(format!("{}-{}", args.op.name(), args.gpus))
    });
    if !args.no_output {
        crate::report::output::check_out_dir(&dir)?;
    }
    let points = studies::collective::sweep(&hw, args.op, args.gpus, &sizes)?;
    let algorithms: Vec<String> = sizes
        .iter()
        .filter_map(|&b| studies::collective::algorithm(&hw, args.op, args.gpus, b))
        .collect();
    print!(
        "{}",
        studies::collective::table(args.op, args.gpus, hw.network.model.name(), &points, &algorithms)
    );
    if !args.no_output {
        let csv = dir.join("busbw.csv");
        crate::report::output::write_atomic(&csv, |w| w.write_all(studies::collective::csv(&points).as_bytes()))?;
        let title = format!(
            "{} over {} GPUs on {} ({} model)",
            args.op.name(),
            args.gpus,
            hw.name,
            hw.network.model.name()
        );
        let reference = studies::collective::published_busbw(&hw.name, args.op, args.gpus, hw.node.gpus);
        let published = if hw.name == "dgx-a100" {
            studies::nccl_tests::published_busbw(args.op, args.gpus, args.gpus.div_ceil(hw.node.gpus))
        } else {
            Vec::new()
        };
        crate::report::plot::write_figure(
            &dir.join("busbw"),
            &crate::report::plot::BusBandwidthChart {
                title: &title,
                points: &points.iter().map(|p| (p.bytes, p.busbw)).collect::<Vec<_>>(),
                reference: reference.as_ref(),
                published: &published,
            },
        )?;
        println!("wrote {}, {}", csv.display(), dir.join("busbw.png").display());
    }
    Ok(())
}
