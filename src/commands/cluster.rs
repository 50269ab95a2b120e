//! `clustersim cluster JOBS.yaml`: several jobs on one machine; per job its iteration alone and
//! shared, and the slowdown, printed and written as cluster.json, cluster.csv and slowdown.png.

use crate::cli::ClusterArgs;
use crate::error::{Error, Result};
use crate::report::output::{check_out_dir, create_dir, write_atomic};
use crate::report::plot::{write_figure, LineChart, Series};
use crate::studies::cluster;

/// `clustersim cluster`.
pub fn cluster_command(args: &ClusterArgs) -> Result<()> {
    let (spec, doc) = cluster::load(&args.spec)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(&spec.name));
    if !args.no_output {
        check_out_dir(&dir)?;
    }
    let start = std::time::Instant::now();
    let result = cluster::run(&spec, &doc, args.seed)?;
    let jobs = &result.jobs;
    println!(
        "cluster {}: {} jobs in {:.2} s",
        spec.name,
        jobs.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "  {:<16} {:>6} {:>10} {:>12} {:>12} {:>9}  nodes",
        "job", "GPUs", "start (s)", "alone (s)", "shared (s)", "slowdown"
    );
    for j in jobs {
        let first = j.nodes.first().copied().unwrap_or(0);
        let last = j.nodes.last().copied().unwrap_or(0);
        println!(
            "  {:<16} {:>6} {:>10.3} {:>12.4} {:>12.4} {:>8.3}x  {} nodes, {first}..{last}",
            j.name,
            j.gpus,
            j.start_s,
            j.alone_s,
            j.shared_s,
            j.slowdown,
            j.nodes.len()
        );
    }
    for m in &result.shared_links {
        println!(
            "  shared: {} {} link(s) carried flows of {}",
            m.links,
            m.class,
            m.jobs.join(", ")
        );
    }
    if result.shared_links.is_empty() {
        println!("  shared: no link carried flows of two jobs");
    }
    if args.no_output {
        return Ok(());
    }
    create_dir(&dir)?;
    let json = dir.join("cluster.json");
    write_atomic(&json, |w| {
        serde_json::to_writer_pretty(&mut *w, &result).map_err(std::io::Error::other)?;
        writeln!(w)
    })?;
    let csv = dir.join("cluster.csv");
    write_atomic(&csv, |w| {
        writeln!(w, "job,gpus,start_s,alone_s,shared_s,slowdown,first_node,nodes")?;
        for j in jobs {
            writeln!(
                w,
                "{},{},{:.9},{:.9},{:.9},{:.6},{},{}",
                j.name,
                j.gpus,
                j.start_s,
                j.alone_s,
                j.shared_s,
                j.slowdown,
                j.nodes.first().copied().unwrap_or(0),
                j.nodes.len()
            )?;
        }
        Ok(())
    })?;
    let categories: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let series = [
        Series {
            name: "alone on its nodes".into(),
            points: jobs.iter().map(|j| (j.name.clone(), j.alone_s)).collect(),
            published: Vec::new(),
        },
        Series {
            name: "beside the other jobs".into(),
            points: jobs.iter().map(|j| (j.name.clone(), j.shared_s)).collect(),
            published: Vec::new(),
        },
    ];
    let title = format!("{}: each job's iteration alone and shared", spec.name);
    let stem = dir.join("slowdown");
    write_figure(
        &stem,
        &LineChart {
            title: &title,
            x_label: "job",
            y_label: "iteration time (s)",
            categories: &categories,
            series: &series,
            y_range: None,
        },
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    for p in [json, csv, stem.with_extension("png"), stem.with_extension("svg")] {
        println!("  wrote {}", p.display());
    }
    Ok(())
}
