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
pub mod train;
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
        Command::Train(args) => train_command(&args),
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

/// The `--set` arguments, parsed.
fn parse_overrides(input: &cli::InputArgs) -> Result<Vec<Override>> {
    input.set.iter().map(|s| Override::parse(s)).collect()
}

/// Loads the run configuration the common arguments name, with extra overrides after theirs.
fn load_input(input: &cli::InputArgs, overrides: &[Override]) -> Result<config::RunConfig> {
    load_run_config(&source(&input.hardware), &source(&input.workload), overrides)
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
    let overrides = parse_overrides(&args.input)?;
    if let Some(t) = args.tokens {
        if !(t.is_finite() && t > 0.0) {
            return Err(error::Error::Input(format!(
                "error: --tokens {t}: must be a positive number of tokens, e.g. 300e9"
            )));
        }
    }
    let start = std::time::Instant::now();
    let plan = plan::plan(
        &source(&args.input.hardware),
        &source(&args.input.workload),
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
            .input
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

/// `clustersim train`.
pub fn train_command(args: &cli::TrainArgs) -> Result<()> {
    let bad = |msg: String| error::Error::Input(format!("error: {msg}"));
    if !(args.tokens.is_finite() && args.tokens > 0.0) {
        return Err(bad(format!(
            "--tokens {}: must be a positive number of tokens, e.g. 300e9",
            args.tokens
        )));
    }
    let mut overrides: Vec<Override> = args
        .input
        .set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<_>>()?;
    overrides.push(Override::parse("hardware.network.model=analytic")?);
    let cfg = load_input(&args.input, &overrides)?;
    let w = &cfg.workload;
    let it = run::run(
        &cfg,
        &run::RunOptions {
            seed: args.seed,
            timeline: report::timeline::TimelineRanks::None,
            representative: true,
        },
    )?
    .report;
    let tokens_per_iteration = (w.batch.global * w.model.seq_len) as f64;
    let iterations = (args.tokens / tokens_per_iteration).ceil();
    let work_s = iterations * it.iteration_time_s;
    let checkpoint = if args.no_checkpoints {
        None
    } else {
        let st = cfg.hardware.storage.as_ref().ok_or_else(|| {
            bad(format!(
                "{}: no `storage` section, which checkpoints need (or use --no-checkpoints)",
                cfg.hardware.name
            ))
        })?;
        Some(model::storage::checkpoint(w, &cfg.hardware, st))
    };
    let failure_rate = if args.no_failures {
        0.0
    } else {
        let f = cfg.hardware.failures.as_ref().ok_or_else(|| {
            bad(format!(
                "{}: no `failures` section (or use --no-failures)",
                cfg.hardware.name
            ))
        })?;
        let nodes = (it.gpus as f64 / cfg.hardware.node.gpus as f64).ceil();
        nodes / f.node_mtbf.as_secs_f64() + it.gpus as f64 / f.gpu_mtbf.as_secs_f64()
    };
    let (save_s, load_s) = checkpoint.as_ref().map_or((0.0, 0.0), |c| (c.save_s, c.load_s));
    let restart_s = cfg.hardware.failures.as_ref().map_or(0.0, |f| f.restart.as_secs_f64());
    let shape = train::RunShape {
        work_s,
        checkpoint_s: save_s,
        recovery_s: restart_s + load_s,
        failure_rate,
    };
    let young_daly = if failure_rate > 0.0 && save_s > 0.0 {
        Some(train::young_daly(&shape))
    } else {
        None
    };
    let interval = match &args.interval {
        Some(text) => {
            let d = units::parse_duration(text)
                .map_err(|e| bad(format!("--interval: {e}")))?
                .as_secs_f64();
            if checkpoint.is_none() {
                return Err(bad(
                    "--interval needs checkpoints (it is given with --no-checkpoints)".into()
                ));
            }
            if d <= save_s {
                return Err(bad(format!(
                    "--interval {text}: shorter than one checkpoint save ({save_s:.1} s); the run would only checkpoint"
                )));
            }
            d
        }
        None => young_daly.unwrap_or(f64::INFINITY),
    };
    let stats = train::monte_carlo(&shape, interval, args.trials, args.seed);
    let gpus = it.gpus as f64;
    let megatron_days = 8.0 * args.tokens * it.parameters / (gpus * it.tflops_per_gpu * 1e12) / 86_400.0;
    println!(
        "clustersim train: {} on {} ({} GPUs), {:.3e} tokens",
        w.name, cfg.hardware.name, it.gpus, args.tokens
    );
    println!(
        "  iteration            {} ({:.1} TFLOP/s per GPU, analytic network)",
        report::summary::human_seconds(it.iteration_time_s),
        it.tflops_per_gpu
    );
    println!(
        "  iterations           {iterations:.0} -> {:.2} days of work (8TP/(nX) at this X: {megatron_days:.2} days)",
        work_s / 86_400.0
    );
    if let Some(c) = &checkpoint {
        println!(
            "  checkpoint           {:.2} TB: save {:.1} s from {} nodes, load {:.1} s on {} nodes",
            c.bytes / 1e12,
            c.save_s,
            c.writer_nodes,
            c.load_s,
            c.reader_nodes
        );
    }
    if failure_rate > 0.0 {
        println!(
            "  failures             one every {:.2} h (node and GPU MTBF), restart {:.0} s + load",
            1.0 / failure_rate / 3600.0,
            restart_s
        );
    }
    if let Some(yd) = young_daly {
        println!("  Young/Daly interval  {}", report::summary::human_seconds(yd));
    }
    let interval_text = if interval.is_finite() {
        report::summary::human_seconds(interval)
    } else {
        "none".into()
    };
    println!(
        "  expected             {:.2} days (std {:.2}, p10 {:.2}, p90 {:.2}; {} trials, seed {}), goodput {:.3}, {:.1} failures, checkpoint every {interval_text}",
        stats.mean_days, stats.std_days, stats.p10_days, stats.p90_days, stats.trials, args.seed, stats.goodput, stats.mean_failures
    );
    let mut written = Vec::new();
    let sweep = match young_daly {
        Some(yd) => {
            let low = (save_s * 1.05).max(yd / 8.0);
            let sweep = train::sweep(&shape, low, yd * 8.0, 41, args.trials, args.seed);
            if let Some(b) = train::best(&sweep) {
                println!(
                    "  interval sweep       best {} (goodput {:.4}); Young/Daly {} (goodput {:.4})",
                    report::summary::human_seconds(b.interval_s),
                    b.goodput,
                    report::summary::human_seconds(yd),
                    train::monte_carlo(&shape, yd, args.trials, args.seed).goodput
                );
            }
            sweep
        }
        None => Vec::new(),
    };
    if !args.no_output {
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| std::path::Path::new("results").join(format!("train-{}", w.name)));
        report::output::create_dir(&dir)?;
        let json = dir.join("train.json");
        let body = serde_json::json!({
            "workload": w.name, "hardware": cfg.hardware.name, "tokens": args.tokens, "seed": args.seed,
            "iteration_time_s": it.iteration_time_s, "iterations": iterations, "work_days": work_s / 86_400.0,
            "megatron_estimate_days": megatron_days,
            "checkpoint": checkpoint.as_ref().map(|c| serde_json::json!({"bytes": c.bytes, "save_s": c.save_s, "load_s": c.load_s})),
            "failure_rate_per_s": failure_rate, "young_daly_interval_s": young_daly, "run": stats, "sweep": sweep,
        });
        report::output::write_atomic(&json, |f| {
            serde_json::to_writer_pretty(&mut *f, &body).map_err(std::io::Error::other)
        })?;
        written.push(json);
        if !sweep.is_empty() {
            let csv = dir.join("interval-sweep.csv");
            report::output::write_atomic(&csv, |f| {
                writeln!(
                    f,
                    "interval_s,goodput,mean_days,std_days,p10_days,p90_days,mean_failures"
                )?;
                for s in &sweep {
                    writeln!(
                        f,
                        "{},{},{},{},{},{},{}",
                        s.interval_s, s.goodput, s.mean_days, s.std_days, s.p10_days, s.p90_days, s.mean_failures
                    )?;
                }
                Ok(())
            })?;
            written.push(csv);
            // distinct labels for intervals about 11% apart
            let short = |s: f64| {
                if s < 600.0 {
                    format!("{s:.0} s")
                } else if s < 7200.0 {
                    format!("{:.1} min", s / 60.0)
                } else {
                    format!("{:.2} h", s / 3600.0)
                }
            };
            let categories: Vec<String> = sweep.iter().map(|s| short(s.interval_s)).collect();
            let lowest = sweep.iter().map(|s| s.goodput).fold(1.0, f64::min);
            let series = vec![report::plot::Series {
                name: "goodput".into(),
                points: categories
                    .iter()
                    .cloned()
                    .zip(sweep.iter().map(|s| s.goodput))
                    .collect(),
                published: Vec::new(),
            }];
            let title = format!(
                "Goodput vs checkpoint interval: {} on {} GPUs (Young/Daly {})",
                w.name,
                it.gpus,
                report::summary::human_seconds(young_daly.unwrap_or(0.0))
            );
            let stem = dir.join("goodput");
            report::plot::write_figure(
                &stem,
                &report::plot::LineChart {
                    title: &title,
                    x_label: "work between checkpoints",
                    y_label: "goodput (useful / wall time)",
                    categories: &categories,
                    series: &series,
                    y_range: Some((lowest - 0.01, 1.0)),
                },
            )?;
            written.push(stem.with_extension("png"));
        }
        for p in &written {
            println!("  wrote {}", p.display());
        }
    }
    Ok(())
}

/// `clustersim trace export`.
pub fn export_command(args: &cli::ExportArgs) -> Result<()> {
    let overrides = parse_overrides(&args.input)?;
    let cfg = load_input(&args.input, &overrides)?;
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
    let overrides = parse_overrides(&args.input)?;
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
        let t = trace_config(path, &source(&args.input.hardware), &overrides)?;
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
    let cfg = load_input(&args.input, &overrides)?;
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
