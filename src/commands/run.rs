//! `clustersim run`: one training iteration, generated or from a trace, with its report and files.

use super::input::{load_hardware, load_input, parse_overrides, source};
use crate::cli::{Format, RunArgs};
use crate::config::{Override, Source};
use crate::error::{Error, Result};
use crate::studies;

/// A trace to run: the hardware, the workload of its header if any, its name and graph.
struct TraceRun {
    hardware: crate::config::HardwareSpec,
    workload: Option<crate::config::WorkloadSpec>,
    name: String,
    graph: crate::workload::TaskGraph,
}

/// Loads a trace and the hardware it runs on.
fn trace_config(args: &RunArgs, path: &str, hardware: &Source, overrides: &[Override]) -> Result<TraceRun> {
    use crate::workload::trace::chakra;
    let (hw, doc) = load_hardware(hardware, overrides, "with --trace only hardware.* keys apply")?;
    let trace = if chakra::is_chakra(path) {
        let options = chakra::ChakraOptions {
            ops: args.chakra_ops,
            element_bytes: args.chakra_element_bytes,
            compute: args.chakra_compute,
            comm_groups: args.comm_groups.clone(),
        };
        let set = chakra::read(path, &options)?;
        check_ranks(path, set.ranks(), &hw, &doc)?;
        if args.format == Format::Text {
            if set.is_native() {
                println!("{path}: Chakra set written by clustersim: its streams' order kept");
            } else {
                println!("{path}: Chakra set: each rank issues its ready nodes, lowest id first");
            }
        }
        set.into_graph()?
    } else {
        crate::workload::trace::read(path)?
    };
    check_ranks(path, trace.header.ranks, &hw, &doc)?;
    if !trace.graph.storage.is_empty() && hw.storage.is_none() {
        return Err(Error::Input(format!(
            "error: {path}: the trace has {} storage task(s), but {} has no `storage` section to price them",
            trace.graph.storage.len(),
            hw.name
        )));
    }
    if let Some(w) = &trace.header.workload {
        if w.gpus_needed() != trace.header.ranks as u64 {
            return Err(Error::Input(format!(
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

/// Refuses a trace of more ranks than the machine has GPUs.
fn check_ranks(path: &str, ranks: u32, hw: &crate::config::HardwareSpec, doc: &crate::config::Document) -> Result<()> {
    if ranks as u64 > hw.total_gpus() {
        return Err(Error::Input(format!(
            "error: {path}: the trace has {ranks} ranks, but {} has {} GPUs",
            doc.origin("nodes"),
            hw.total_gpus()
        )));
    }
    Ok(())
}

/// The simulation's input errors (a deadlock, an overflowing clock) are the trace's.
fn in_trace(path: &str, e: Error) -> Error {
    match e {
        Error::Input(m) => Error::Input(format!("error: {path}: {}", m.trim_start_matches("error: "))),
        other => other,
    }
}

/// `clustersim run`.
pub fn run_command(args: &RunArgs) -> Result<()> {
    let overrides = parse_overrides(&args.input)?;
    let timeline = if args.no_output {
        crate::report::timeline::TimelineRanks::None
    } else {
        args.timeline
    };
    let max_memory = match &args.max_memory {
        Some(text) => {
            crate::units::parse_bytes(text)
                .map_err(|e| Error::Input(format!("error: --max-memory {text}: {e}")))?
                .0
        }
        None => studies::run::DEFAULT_MAX_MEMORY,
    };
    let opts = studies::run::RunOptions {
        max_memory,
        seed: args.seed.unwrap_or(1),
        timeline,
        representative: args.representative,
    };
    let start = std::time::Instant::now();
    if let Some(path) = &args.trace {
        let t = trace_config(args, path, &source(&args.input.hardware), &overrides)?;
        if args.format == Format::Text {
            println!(
                "loaded {path}: {} tasks on {} ranks in {:.2} s",
                t.graph.len(),
                t.graph.ranks,
                start.elapsed().as_secs_f64()
            );
        }
        let start = std::time::Instant::now();
        let default_dir = match &t.workload {
            Some(w) => std::path::Path::new("results").join(&w.name),
            None => std::path::Path::new("results").join(&t.name),
        };
        let dir = check_dir(args, args.out.clone().unwrap_or(default_dir))?;
        let res = match t.workload {
            // a trace that records its workload reports like the generator
            Some(workload) => {
                let cfg = crate::config::RunConfig {
                    hardware: t.hardware,
                    workload,
                };
                studies::run::run_graph(&cfg, t.graph, &opts)
            }
            None => studies::run::run_trace(&t.hardware, &t.name, t.graph, &opts),
        }
        .map_err(|e| in_trace(path, e))?;
        return finish_run(args, &res, start.elapsed().as_secs_f64(), &dir);
    }
    let (cfg, opts) = match &args.config {
        Some(report) => recorded_config(report, args, &overrides, opts)?,
        None => (load_input(&args.input, &overrides)?, opts),
    };
    // a run refused for its size makes no output folder
    studies::run::check_size(&cfg, &opts)?;
    let dir = check_dir(
        args,
        args.out.clone().unwrap_or_else(|| studies::run::default_out_dir(&cfg)),
    )?;
    studies::run::check_iterations(&cfg, &opts, args.iterations)?;
    let mut res = studies::run::run(&cfg, &opts)?;
    studies::run::repeat(&cfg, &mut res, opts.seed, args.iterations)?;
    finish_run(args, &res, start.elapsed().as_secs_f64(), &dir)
}

/// The configuration and seed a report.json recorded (its `config` and `seed`), with `--set` applied.
fn recorded_config(
    report: &str,
    args: &RunArgs,
    overrides: &[Override],
    opts: studies::run::RunOptions,
) -> Result<(crate::config::RunConfig, studies::run::RunOptions)> {
    use crate::config::{Document, DocumentKind, HardwareSpec, WorkloadSpec};
    if args.input.hardware.is_some() || args.input.workload.is_some() {
        return Err(Error::Input(format!(
            "error: --config {report}: the report names its hardware and workload; give no --hardware or --workload"
        )));
    }
    let bad = |what: String| Error::Input(format!("error: {report}: {what}"));
    let text = crate::config::read_limited(report).map_err(|e| bad(format!("cannot read report: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not a report.json: {e}")))?;
    let config = &value["config"];
    if config.get("hardware").is_some() && config.get("workload").is_none() {
        return Err(bad(
            "the report of a trace without a workload: rerun it with --trace and its file".into(),
        ));
    }
    let document = |key: &str, kind: DocumentKind| -> Result<Document> {
        let v = config.get(key).ok_or_else(|| bad(format!("has no `config.{key}`")))?;
        let mut doc = Document::parse(&format!("{report} (config.{key})"), &v.to_string())?;
        for o in overrides.iter().filter(|o| o.target == kind) {
            doc.apply(o)?;
        }
        Ok(doc)
    };
    let hardware = HardwareSpec::from_document(&document("hardware", DocumentKind::Hardware)?)?;
    let workload = WorkloadSpec::from_document(&document("workload", DocumentKind::Workload)?)?;
    // the recorded seed, unless --seed says otherwise
    let seed = match (args.seed, &value["seed"]) {
        (Some(given), _) => given,
        (None, serde_json::Value::Null) => return Err(bad("has no `seed`".into())),
        (None, recorded) => recorded.as_u64().ok_or_else(|| {
            bad(format!(
                "`seed` = {recorded}: expected a whole number from 0 to 18446744073709551615 (or give --seed)"
            ))
        })?,
    };
    // the recorded memory limit, unless --max-memory says otherwise
    let max_memory = match (&args.max_memory, value["max_memory_bytes"].as_u64()) {
        (None, Some(recorded)) => recorded,
        _ => opts.max_memory,
    };
    Ok((
        crate::config::RunConfig { hardware, workload },
        studies::run::RunOptions {
            seed,
            max_memory,
            ..opts
        },
    ))
}

/// The output folder, checked before any work starts (unless nothing is written).
fn check_dir(args: &RunArgs, dir: std::path::PathBuf) -> Result<std::path::PathBuf> {
    if !args.no_output {
        crate::report::output::check_out_dir(&dir)?;
    }
    Ok(dir)
}

/// Writes a run's files (unless --no-output) and prints its report.
fn finish_run(args: &RunArgs, res: &studies::run::RunResult, wall: f64, dir: &std::path::Path) -> Result<()> {
    let written = if args.no_output {
        Vec::new()
    } else {
        studies::run::write_outputs(res, dir)?
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&res.report).map_err(|e| Error::Internal(e.to_string()))?
        ),
        Format::Text => {
            print!("{}", crate::report::summary::text(&res.report));
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
