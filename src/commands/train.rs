//! `clustersim train`: one simulated iteration turned into a whole training run (checkpoints,
//! failures, restarts), with the checkpoint-interval sweep, train.json and the goodput plot.

use super::input::load_input;
use crate::cli::TrainArgs;
use crate::config::{Override, RunConfig};
use crate::error::{Error, Result};
use crate::report::summary::human_seconds;
use crate::report::Report;
use crate::studies::run::{run, RunOptions};
use crate::studies::train::{self, Checkpoint, RunShape, RunStats};
use crate::{report, units};
use std::path::PathBuf;

fn bad(msg: String) -> Error {
    Error::Input(format!("error: {msg}"))
}

/// Everything the Monte Carlo and the outputs need, derived from the arguments.
struct TrainRun {
    cfg: RunConfig,
    /// The simulated iteration's report.
    it: Report,
    iterations: f64,
    work_s: f64,
    checkpoint: Option<Checkpoint>,
    failure_rate: f64,
    restart_s: f64,
    shape: RunShape,
    young_daly: Option<f64>,
    /// Work between checkpoints, s (infinite: none).
    interval: f64,
    megatron_days: f64,
    /// The output folder, checked before the simulation (None with --no-output).
    dir: Option<PathBuf>,
}

/// `clustersim train`.
pub fn train_command(args: &TrainArgs) -> Result<()> {
    let run = prepare(args)?;
    let stats = train::monte_carlo(&run.shape, run.interval, args.trials, args.seed);
    print_summary(args, &run, &stats);
    let sweep = interval_sweep(args, &run);
    if let Some(dir) = &run.dir {
        write_outputs(args, &run, &stats, &sweep, dir)?;
    }
    Ok(())
}

/// Checks the arguments, simulates one iteration (analytic network, one GPU per stage) and prices
/// checkpoints and failures.
fn prepare(args: &TrainArgs) -> Result<TrainRun> {
    if !(args.tokens.is_finite() && args.tokens > 0.0) {
        return Err(bad(format!(
            "--tokens {}: must be a positive number of tokens, e.g. 300e9",
            args.tokens
        )));
    }
    if !(1..=1_000_000).contains(&args.trials) {
        return Err(bad(format!("--trials {}: must be between 1 and 1000000", args.trials)));
    }
    let mut overrides: Vec<Override> = args
        .input
        .set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<_>>()?;
    overrides.push(Override::parse("hardware.network.model=analytic")?);
    let cfg = load_input(&args.input, &overrides)?;
    let dir = out_dir(args, &cfg)?;
    let it = run(
        &cfg,
        &RunOptions {
            max_memory: crate::studies::run::DEFAULT_MAX_MEMORY,
            seed: args.seed,
            timeline: report::timeline::TimelineRanks::None,
            representative: true,
        },
    )?
    .report;
    let iterations = train::iterations(&cfg.workload, args.tokens)?;
    let work_s = iterations * it.iteration_time_s;
    let (checkpoint, failure_rate) = checkpoints_and_failures(args, &cfg, &it)?;
    let (save_s, load_s) = checkpoint.as_ref().map_or((0.0, 0.0), |c| (c.save_s, c.load_s));
    let restart_s = cfg.hardware.failures.as_ref().map_or(0.0, |f| f.restart.as_secs_f64());
    let shape = RunShape {
        work_s,
        checkpoint_s: save_s,
        recovery_s: restart_s + load_s,
        failure_rate,
    };
    let young_daly = (failure_rate > 0.0 && save_s > 0.0).then(|| train::young_daly(&shape));
    let interval = match &args.interval {
        Some(text) => interval_arg(text, checkpoint.is_some(), save_s)?,
        None => young_daly.unwrap_or(f64::INFINITY),
    };
    check_finishes(&shape, interval, args.trials)?;
    let megatron_days = 8.0 * args.tokens * it.parameters / (it.gpus as f64 * it.tflops_per_gpu * 1e12) / 86_400.0;
    Ok(TrainRun {
        cfg,
        it,
        iterations,
        work_s,
        checkpoint,
        failure_rate,
        restart_s,
        shape,
        young_daly,
        interval,
        megatron_days,
        dir,
    })
}

/// The output folder (None with --no-output), checked before the simulation.
fn out_dir(args: &TrainArgs, cfg: &RunConfig) -> Result<Option<PathBuf>> {
    if args.no_output {
        return Ok(None);
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(format!("train-{}", cfg.workload.name)));
    report::output::check_out_dir(&dir)?;
    Ok(Some(dir))
}

/// The checkpoint (unless --no-checkpoints) and the failure rate (unless --no-failures) of the run.
fn checkpoints_and_failures(args: &TrainArgs, cfg: &RunConfig, it: &Report) -> Result<(Option<Checkpoint>, f64)> {
    let checkpoint = if args.no_checkpoints {
        None
    } else {
        let st = cfg.hardware.storage.as_ref().ok_or_else(|| {
            bad(format!(
                "{}: no `storage` section, which checkpoints need (or use --no-checkpoints)",
                cfg.hardware.name
            ))
        })?;
        Some(train::checkpoint(&cfg.workload, &cfg.hardware, st))
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
    Ok((checkpoint, failure_rate))
}

/// Refuses a run whose trials could never finish: failures faster than a segment and its checkpoint.
fn check_finishes(shape: &RunShape, interval: f64, trials: u32) -> Result<()> {
    let per_trial = train::expected_steps(shape, interval);
    let steps = trials as f64 * per_trial;
    if steps <= train::MAX_TRIAL_STEPS {
        return Ok(());
    }
    if per_trial <= train::MAX_TRIAL_STEPS {
        // one trial finishes; it is their number that is too large
        return Err(bad(format!(
            "--trials {trials}: each trial takes about {per_trial:.2e} segment attempts (checkpointed segments and restarts), {steps:.2e} in all, more than {:.0e}; use at most {} trials",
            train::MAX_TRIAL_STEPS,
            (train::MAX_TRIAL_STEPS / per_trial).floor().max(1.0)
        )));
    }
    let segment = interval.min(shape.work_s);
    Err(bad(format!(
        "a failure every {:.1} s: a segment of {:.1} s of work and a {:.1} s checkpoint survives with probability {:.2e}, so the run would need about {:.2e} restarts and never finish; lower the failure rates or checkpoint more often",
        1.0 / shape.failure_rate.max(f64::MIN_POSITIVE),
        segment,
        shape.checkpoint_s,
        (-shape.failure_rate * (segment + shape.checkpoint_s)).exp(),
        steps / trials as f64
    )))
}

/// `--interval`: a duration longer than one checkpoint save, with checkpoints on.
fn interval_arg(text: &str, checkpoints: bool, save_s: f64) -> Result<f64> {
    let d = units::parse_duration(text)
        .map_err(|e| bad(format!("--interval: {e}")))?
        .as_secs_f64();
    if !checkpoints {
        return Err(bad(
            "--interval needs checkpoints (it is given with --no-checkpoints)".into()
        ));
    }
    if d <= save_s {
        return Err(bad(format!(
            "--interval {text}: shorter than one checkpoint save ({save_s:.1} s); the run would only checkpoint"
        )));
    }
    Ok(d)
}

fn print_summary(args: &TrainArgs, run: &TrainRun, stats: &RunStats) {
    let (w, it) = (&run.cfg.workload, &run.it);
    println!(
        "clustersim train: {} on {} ({} GPUs), {:.3e} tokens",
        w.name, run.cfg.hardware.name, it.gpus, args.tokens
    );
    println!(
        "  iteration            {} ({:.1} TFLOP/s per GPU, analytic network)",
        human_seconds(it.iteration_time_s),
        it.tflops_per_gpu
    );
    println!(
        "  iterations           {:.0} -> {:.2} days of work (8TP/(nX) at this X: {:.2} days)",
        run.iterations,
        run.work_s / 86_400.0,
        run.megatron_days
    );
    if let Some(c) = &run.checkpoint {
        println!(
            "  checkpoint           {:.2} TB: save {:.1} s from {} nodes, load {:.1} s on {} nodes",
            c.bytes / 1e12,
            c.save_s,
            c.writer_nodes,
            c.load_s,
            c.reader_nodes
        );
    }
    if run.failure_rate > 0.0 {
        println!(
            "  failures             one every {:.2} h (node and GPU MTBF), restart {:.0} s + load",
            1.0 / run.failure_rate / 3600.0,
            run.restart_s
        );
    }
    if let Some(yd) = run.young_daly {
        println!("  Young/Daly interval  {}", human_seconds(yd));
    }
    let interval_text = if run.interval.is_finite() {
        human_seconds(run.interval)
    } else {
        "none".into()
    };
    println!(
        "  expected             {:.2} days (std {:.2}, p10 {:.2}, p90 {:.2}; {} trials, seed {}), goodput {:.3}, {:.1} failures, checkpoint every {interval_text}",
        stats.mean_days, stats.std_days, stats.p10_days, stats.p90_days, stats.trials, args.seed, stats.goodput, stats.mean_failures
    );
}

/// The goodput of checkpoint intervals from Young/Daly / 8 to x 8 (none without failures or
/// checkpoints); prints the best.
fn interval_sweep(args: &TrainArgs, run: &TrainRun) -> Vec<RunStats> {
    let Some(yd) = run.young_daly else {
        return Vec::new();
    };
    let low = (run.shape.checkpoint_s * 1.05).max(yd / 8.0);
    let sweep = train::sweep(&run.shape, low, yd * 8.0, 41, args.trials, args.seed);
    if let Some(b) = train::best(&sweep) {
        println!(
            "  interval sweep       best {} (goodput {:.4}); Young/Daly {} (goodput {:.4})",
            human_seconds(b.interval_s),
            b.goodput,
            human_seconds(yd),
            train::monte_carlo(&run.shape, yd, args.trials, args.seed).goodput
        );
    }
    sweep
}

/// train.json, and with a sweep interval-sweep.csv and goodput.png/.svg.
fn write_outputs(
    args: &TrainArgs,
    run: &TrainRun,
    stats: &RunStats,
    sweep: &[RunStats],
    dir: &std::path::Path,
) -> Result<()> {
    let w = &run.cfg.workload;
    let json = dir.join("train.json");
    let body = serde_json::json!({
        "workload": w.name, "hardware": run.cfg.hardware.name, "tokens": args.tokens, "seed": args.seed,
        "iteration_time_s": run.it.iteration_time_s, "iterations": run.iterations, "work_days": run.work_s / 86_400.0,
        "megatron_estimate_days": run.megatron_days,
        "checkpoint": run.checkpoint.as_ref().map(|c| serde_json::json!({"bytes": c.bytes, "save_s": c.save_s, "load_s": c.load_s})),
        "failure_rate_per_s": run.failure_rate, "young_daly_interval_s": run.young_daly, "run": stats, "sweep": sweep,
    });
    report::output::write_atomic(&json, |f| {
        serde_json::to_writer_pretty(&mut *f, &body).map_err(std::io::Error::other)
    })?;
    let mut written = vec![json];
    if !sweep.is_empty() {
        written.extend(write_sweep(run, sweep, dir)?);
    }
    for p in &written {
        println!("  wrote {}", p.display());
    }
    Ok(())
}

/// interval-sweep.csv and the goodput plot.
fn write_sweep(run: &TrainRun, sweep: &[RunStats], dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let csv = dir.join("interval-sweep.csv");
    report::output::write_atomic(&csv, |f| {
        writeln!(
            f,
            "interval_s,goodput,mean_days,std_days,p10_days,p90_days,mean_failures"
        )?;
        for s in sweep {
            writeln!(
                f,
                "{},{},{},{},{},{},{}",
                s.interval_s, s.goodput, s.mean_days, s.std_days, s.p10_days, s.p90_days, s.mean_failures
            )?;
        }
        Ok(())
    })?;
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
        run.cfg.workload.name,
        run.it.gpus,
        human_seconds(run.young_daly.unwrap_or(0.0))
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
    Ok(vec![csv, stem.with_extension("png")])
}
