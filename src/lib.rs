//! # clustersim
//!
//! A discrete-event performance simulator for GPU clusters that train large models.
//!
//! Data flows one way:
//!
//! ```text
//! hardware/*.yaml, workloads/*.yaml, --set ─→ config (validated specs)
//!   ─→ workload::generate (per-rank TaskGraph)  ┐
//!   ─→ model (compute, network)                 ├→ sim (engine runs events) ─→ report (metrics,
//!   ─→ engine (event queue)                     ┘      JSON, Chrome trace, plots)
//! ```
//!
//! Configs know nothing of the engine; the engine knows nothing of GPUs; models know nothing of
//! transformers; only [`sim`] joins them, and [`run`] strings the steps together.

pub mod bench;
pub mod cli;
pub mod collective;
pub mod config;
pub mod engine;
pub mod error;
pub mod model;
pub mod plan;
pub mod report;
pub mod run;
pub mod sim;
pub mod sweep;
pub mod units;
pub mod validate;
pub mod workload;

use cli::{Cli, Command, Format, RunArgs};
use config::{load_run_config, Override, Source};
use error::Result;

/// Runs the command line; returns the process exit code.
pub fn main_with(cli: Cli) -> i32 {
    let result = match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run_command(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Collective(args) => collective_command(&args),
        Command::Sweep(args) => sweep_command(&args),
        Command::Validate(args) => validate_command(&args),
        Command::Plan(args) => plan_command(&args),
        Command::Trace(args) => match &args.action {
            cli::TraceAction::Export(e) => export_command(e),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

fn source(given: &Option<String>) -> Source {
    given
        .as_ref()
        .map(|s| Source::Named(s.clone()))
        .unwrap_or(Source::Default)
}

/// `clustersim sweep`.
pub fn sweep_command(args: &cli::SweepArgs) -> Result<()> {
    let spec = sweep::SweepSpec::load(&args.spec)?;
    let start = std::time::Instant::now();
    let result = sweep::run_sweep(&spec, true)?;
    sweep::execute::require_some(&result)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(&spec.name));
    let written = sweep::write_sweep(&result, &dir)?;
    let failed = sweep::execute::failures(&result);
    println!(
        "sweep {}: {} points ({} invalid) in {:.1} s",
        spec.name,
        result.rows.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    for f in &failed {
        println!("  invalid point {f}");
    }
    for p in written {
        println!("  wrote {}", p.display());
    }
    Ok(())
}

/// `clustersim plan`.
pub fn plan_command(args: &cli::PlanArgs) -> Result<()> {
    let overrides: Vec<Override> = args.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    if let Some(t) = args.tokens {
        if !(t.is_finite() && t > 0.0) {
            return Err(error::Error::Input(format!(
                "error: --tokens {t}: must be a positive number of tokens, e.g. 300e9"
            )));
        }
    }
    let start = std::time::Instant::now();
    let plan = plan::plan(
        &source(&args.hardware),
        &source(&args.workload),
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
    print!("{}", plan::table(&plan, args.top));
    if !args.no_output {
        let name = args
            .workload
            .as_deref()
            .map(|w| w.rsplit('/').next().unwrap_or(w).trim_end_matches(".yaml"))
            .unwrap_or("gpt-5.9b");
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| std::path::Path::new("results").join(format!("plan-{name}-{}", args.gpus)));
        report::output::create_dir(&dir)?;
        let path = dir.join("plan.csv");
        report::output::write_atomic(&path, |w| w.write_all(plan::csv(&plan).as_bytes()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

/// `clustersim validate`.
pub fn validate_command(args: &cli::ValidateArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let (summaries, _) = validate::validate(&args.out, true)?;
    println!(
        "{:<8} {:>7} {:>16} {:>15} {:>12}",
        "figure", "points", "mean abs. error", "max abs. error", "order kept"
    );
    for f in &summaries {
        let unit = if f.figure == "fig6" { "" } else { " %" };
        println!(
            "{:<8} {:>7} {:>14.3}{unit:2} {:>13.3}{unit:2} {:>9}/{}",
            f.figure,
            f.points,
            f.mean_abs_error,
            f.max_abs_error,
            f.order_pairs - f.order_violations,
            f.order_pairs
        );
    }
    println!("wrote {} in {:.1} s", args.out.display(), start.elapsed().as_secs_f64());
    Ok(())
}

/// `clustersim collective`.
pub fn collective_command(args: &cli::CollectiveArgs) -> Result<()> {
    let overrides: Vec<Override> = args.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    if let Some(o) = overrides.iter().find(|o| o.target != config::DocumentKind::Hardware) {
        return Err(error::Error::Input(format!(
            "error: --set {}: `collective` takes hardware.* keys only",
            o.original
        )));
    }
    let hardware = args
        .hardware
        .as_ref()
        .map(|s| Source::Named(s.clone()))
        .unwrap_or(Source::Default);
    let mut doc = config::Document::load(&hardware, config::DocumentKind::Hardware)?;
    for o in &overrides {
        doc.apply(o)?;
    }
    let hw = config::HardwareSpec::from_document(&doc)?;
    let sizes = collective::parse_sizes(&args.sizes)?;
    let points = collective::sweep(&hw, args.op, args.gpus, &sizes)?;
    print!(
        "{}",
        collective::table(args.op, args.gpus, hw.network.model.name(), &points)
    );
    if !args.no_output {
        let dir = args.out.clone().unwrap_or_else(|| {
            std::path::Path::new("results/collective").join(format!("{}-{}", args.op.name(), args.gpus))
        });
        report::output::create_dir(&dir)?;
        let csv = dir.join("busbw.csv");
        report::output::write_atomic(&csv, |w| w.write_all(collective::csv(&points).as_bytes()))?;
        let title = format!(
            "{} over {} GPUs on {} ({} model)",
            args.op.name(),
            args.gpus,
            hw.name,
            hw.network.model.name()
        );
        let reference = collective::published_busbw(&hw.name, args.op, args.gpus, hw.node.gpus);
        report::plot::write_figure(
            &dir.join("busbw"),
            &report::plot::BusBandwidthChart {
                title: &title,
                points: &points,
                reference: reference.as_ref(),
            },
        )?;
        println!("wrote {}, {}", csv.display(), dir.join("busbw.png").display());
    }
    Ok(())
}

/// `clustersim trace export`.
pub fn export_command(args: &cli::ExportArgs) -> Result<()> {
    let overrides: Vec<Override> = args.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    let cfg = load_run_config(&source(&args.hardware), &source(&args.workload), &overrides)?;
    let graph = workload::generate(&cfg.workload);
    report::output::write_atomic(&args.out, |w| {
        workload::trace::write(w, &cfg.workload.name, Some(&cfg.workload), &graph)
    })?;
    println!(
        "wrote {} ({} tasks on {} ranks)",
        args.out.display(),
        graph.len(),
        graph.ranks
    );
    Ok(())
}

/// A trace to run: the hardware, the workload of its header if any, its name and graph.
struct TraceRun {
    hardware: config::HardwareSpec,
    workload: Option<config::WorkloadSpec>,
    name: String,
    graph: workload::TaskGraph,
}

/// Loads a trace and the hardware it runs on.
fn trace_config(path: &str, hardware: &Source, overrides: &[Override]) -> Result<TraceRun> {
    let trace = workload::trace::read(path)?;
    let mut doc = config::Document::load(hardware, config::DocumentKind::Hardware)?;
    for o in overrides {
        if o.target != config::DocumentKind::Hardware {
            return Err(error::Error::Input(format!(
                "error: --set {}: with --trace only hardware.* keys apply",
                o.original
            )));
        }
        doc.apply(o)?;
    }
    let hw = config::HardwareSpec::from_document(&doc)?;
    if trace.header.ranks as u64 > hw.total_gpus() {
        return Err(error::Error::Input(format!(
            "error: {path}: the trace has {} ranks, but {} has {} GPUs",
            trace.header.ranks,
            doc.origin("nodes"),
            hw.total_gpus()
        )));
    }
    if let Some(w) = &trace.header.workload {
        if w.gpus_needed() != trace.header.ranks as u64 {
            return Err(error::Error::Input(format!(
                "error: {path}: the header's workload splits over {} GPUs but the trace has {} ranks",
                w.gpus_needed(),
                trace.header.ranks
            )));
        }
    }
    Ok(TraceRun {
        hardware: hw,
        workload: trace.header.workload,
        name: trace.header.name,
        graph: trace.graph,
    })
}

/// `clustersim run`.
pub fn run_command(args: &RunArgs) -> Result<()> {
    let overrides: Vec<Override> = args.set.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    let timeline = if args.no_output {
        report::timeline::TimelineRanks::None
    } else {
        args.timeline
    };
    let opts = run::RunOptions {
        seed: args.seed,
        timeline,
        representative: false,
    };
    let start = std::time::Instant::now();
    if let Some(path) = &args.trace {
        let t = trace_config(path, &source(&args.hardware), &overrides)?;
        if args.format == Format::Text {
            println!(
                "loaded {path}: {} tasks on {} ranks in {:.2} s",
                t.graph.len(),
                t.graph.ranks,
                start.elapsed().as_secs_f64()
            );
        }
        let start = std::time::Instant::now();
        let (res, dir) = match t.workload {
            // a trace that records its workload reports like the generator
            Some(workload) => {
                let cfg = config::RunConfig {
                    hardware: t.hardware,
                    workload,
                };
                (run::run_graph(&cfg, t.graph, &opts)?, run::default_out_dir(&cfg))
            }
            None => (
                run::run_trace(&t.hardware, &t.name, t.graph, &opts)?,
                std::path::Path::new("results").join(&t.name),
            ),
        };
        let dir = args.out.clone().unwrap_or(dir);
        return finish_run(args, &res, start.elapsed().as_secs_f64(), &dir);
    }
    let cfg = load_run_config(&source(&args.hardware), &source(&args.workload), &overrides)?;
    let res = run::run(&cfg, &opts)?;
    let dir = args.out.clone().unwrap_or_else(|| run::default_out_dir(&cfg));
    finish_run(args, &res, start.elapsed().as_secs_f64(), &dir)
}

/// Writes a run's files (unless --no-output) and prints its report.
fn finish_run(args: &RunArgs, res: &run::RunResult, wall: f64, dir: &std::path::Path) -> Result<()> {
    let written = if args.no_output {
        Vec::new()
    } else {
        run::write_outputs(res, dir)?
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&res.report).map_err(|e| error::Error::Internal(e.to_string()))?
        ),
        Format::Text => {
            print!("{}", report::summary::text(&res.report));
            println!(
                "\n  simulated {} tasks, {} events in {:.2} s wall ({:.1} M events/s)",
                res.graph.len(),
                res.report.events,
                wall,
                res.report.events as f64 / wall / 1e6
            );
            for p in &written {
                println!("  wrote {}", p.display());
            }
        }
    }
    Ok(())
}
