//! One run, end to end: config → task graph → simulation → report → files.

use crate::config::RunConfig;
use crate::error::Result;
use crate::report::output::{create_dir, write_atomic};
use crate::report::plot::{schedule_blocks, write_figure, ScheduleChart};
use crate::report::timeline::{write_chrome_trace, Timeline, TimelineRanks};
use crate::report::Report;
use crate::sim::{simulate, simulate_on, SimOptions};
use crate::workload::layout::Layout;
use crate::workload::{generate, TaskGraph};
use std::path::{Path, PathBuf};

/// Options of a run beyond the configuration.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// RNG seed.
    pub seed: u64,
    /// Ranks whose spans go into the timeline and schedule plot.
    pub timeline: TimelineRanks,
    /// Give tasks to one GPU per pipeline stage only (exact for contention-free network models).
    pub representative: bool,
    /// Refuse to build a task graph estimated to need more memory than this, bytes.
    pub max_memory: u64,
}

/// The default memory limit of a run: 16 GiB, whatever the machine has, so that results never
/// depend on where they ran; `--max-memory` changes it.
pub const DEFAULT_MAX_MEMORY: u64 = 16 << 30;

impl RunOptions {
    /// Options for runs whose report is all that matters (sweeps, the planner, tests): seed 1, no
    /// timeline; `representative` gives tasks to one GPU per pipeline stage only.
    pub fn metrics_only(representative: bool) -> Self {
        RunOptions {
            seed: 1,
            timeline: TimelineRanks::None,
            representative,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 1,
            timeline: TimelineRanks::FirstReplica,
            representative: false,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// A finished run: the report, and what is needed to write its files.
pub struct RunResult {
    /// Metrics.
    pub report: Report,
    /// The simulated graph.
    pub graph: TaskGraph,
    /// Recorded spans.
    pub timeline: Timeline,
    /// Rank layout.
    pub layout: Layout,
    /// Iteration times over seeds, with `--iterations` (empty otherwise).
    pub iteration_times: Vec<f64>,
    /// Wall seconds spent generating the task graph (0 for a graph read from a trace).
    pub generate_s: f64,
}

impl RunResult {
    fn new(report: Report, graph: TaskGraph, timeline: Timeline, layout: Layout) -> Self {
        RunResult {
            report,
            graph,
            timeline,
            layout,
            iteration_times: Vec::new(),
            generate_s: 0.0,
        }
    }
}

/// Generates and simulates one iteration. A representative run (`opts.representative`) simulates
/// one rank per pipeline stage where that is exact ([`crate::sim::network_for`]); elsewhere it runs
/// every rank and the report says why.
pub fn run(cfg: &RunConfig, opts: &RunOptions) -> Result<RunResult> {
    check_size(cfg, opts)?;
    let timed = |generate: fn(&crate::config::WorkloadSpec) -> TaskGraph| {
        let start = std::time::Instant::now();
        let graph = generate(&cfg.workload);
        (graph, start.elapsed().as_secs_f64())
    };
    if opts.representative {
        let why = match crate::workload::generate::asymmetry(&cfg.workload) {
            Some(why) => why,
            None => {
                let (graph, built) = timed(crate::workload::generate::generate_representative);
                match crate::sim::network_for(&graph, &cfg.hardware) {
                    Ok(net) => {
                        let mut res = run_graph_on(cfg, graph, net, opts)?;
                        res.generate_s = built;
                        return Ok(res);
                    }
                    Err(why) => why,
                }
            }
        };
        let every = RunOptions {
            representative: false,
            ..opts.clone()
        };
        check_size(cfg, &every)?;
        let (graph, built) = timed(generate);
        let mut res = run_graph(cfg, graph, &every)?;
        res.report.every_rank_because = Some(why);
        res.generate_s = built;
        return Ok(res);
    }
    let (graph, built) = timed(generate);
    let mut res = run_graph(cfg, graph, opts)?;
    res.generate_s = built;
    Ok(res)
}

/// Refuses, before anything is built, a run whose task graph would need more than `opts.max_memory`.
pub fn check_size(cfg: &RunConfig, opts: &RunOptions) -> Result<()> {
    let tasks = crate::workload::generate::estimated_tasks(&cfg.workload, opts.representative);
    check_tasks(
        "this run",
        tasks,
        opts.max_memory,
        "shrink the batch, the layers or the cluster, or raise the limit with --max-memory",
    )?;
    if opts.timeline == TimelineRanks::All {
        // every task becomes a span of about 180 bytes of timeline.json (measured: 6.63 MB for the
        // default run's 36 880 spans)
        let bytes = tasks * TIMELINE_BYTES_PER_SPAN;
        if bytes > TIMELINE_LIMIT as f64 {
            return Err(crate::error::Error::Input(format!(
                "error: --timeline all: this run's timeline.json would hold about {tasks:.2e} spans, about {} \
                 (more than the {} a trace viewer opens); record --timeline first-replica (the default) or none",
                crate::units::human_size(bytes.min(u64::MAX as f64) as u64),
                crate::units::human_size(TIMELINE_LIMIT)
            )));
        }
    }
    Ok(())
}

/// Bytes of timeline.json per recorded span (measured on the default run: 6 629 096 bytes for
/// 36 880 spans, 180 each).
const TIMELINE_BYTES_PER_SPAN: f64 = 180.0;

/// The largest timeline.json a run writes: 2 GiB, about what a browser trace viewer (Perfetto,
/// chrome://tracing) loads.
const TIMELINE_LIMIT: u64 = 2 << 30;

/// Refuses `what` (a run, a plan's candidate, a cluster's jobs) of about `tasks` tasks, whose graph
/// would need more than `limit` bytes: the error says how much it would need and, in `advice`, how
/// to shrink it.
pub fn check_tasks(what: &str, tasks: f64, limit: u64, advice: &str) -> Result<()> {
    let bytes = tasks * crate::workload::generate::BYTES_PER_TASK;
    let need = crate::units::human_size(bytes.min(u64::MAX as f64) as u64);
    if bytes > limit as f64 {
        return Err(crate::error::Error::Input(format!(
            "error: {what} would build about {tasks:.2e} tasks, about {need} of memory, more than the limit of {}; {advice}",
            crate::units::human_size(limit)
        )));
    }
    // a limit raised past the machine does not make the memory appear: refuse rather than abort
    if let Some(total) = machine_memory().filter(|&total| bytes > total as f64) {
        return Err(crate::error::Error::Input(format!(
            "error: {what} would build about {tasks:.2e} tasks, about {need} of memory, more than this machine has ({}): shrink it, or run it on a machine with more memory",
            crate::units::human_size(total)
        )));
    }
    Ok(())
}

/// The machine's memory (`MemTotal` of /proc/meminfo, read once: the planner checks every
/// candidate); none where it cannot be read.
fn machine_memory() -> Option<u64> {
    static TOTAL: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(read_machine_memory)
}

fn read_machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Simulates a task graph (generated, or read from a trace) and reports it against `cfg`.
pub fn run_graph(cfg: &RunConfig, graph: TaskGraph, opts: &RunOptions) -> Result<RunResult> {
    let net = crate::sim::network_for(&graph, &cfg.hardware).map_err(|why| {
        crate::error::Error::Internal(format!("a representative graph cannot run exactly here: {why}"))
    })?;
    run_graph_on(cfg, graph, net, opts)
}

fn run_graph_on(
    cfg: &RunConfig,
    graph: TaskGraph,
    net: Box<dyn crate::model::network::NetworkModel>,
    opts: &RunOptions,
) -> Result<RunResult> {
    let layout = Layout::of(&cfg.workload);
    let mut timeline = Timeline::new(opts.timeline, layout);
    let outcome = simulate_on(
        &graph,
        &cfg.hardware,
        net,
        SimOptions { seed: opts.seed },
        &mut timeline,
    )?;
    let mut report = Report::new(cfg, &outcome, opts.seed);
    report.max_memory_bytes = opts.max_memory;
    report.check(mfu_ceiling(cfg))?;
    Ok(RunResult::new(report, graph, timeline, layout))
}

/// Simulates a trace that carries no workload: one "stage" of all its ranks, rates from its kernels.
pub fn run_trace(
    hw: &crate::config::HardwareSpec,
    name: &str,
    graph: TaskGraph,
    opts: &RunOptions,
) -> Result<RunResult> {
    let layout = Layout::plain(graph.ranks, 1, 1);
    let mut timeline = Timeline::new(opts.timeline, layout);
    let outcome = simulate(&graph, hw, SimOptions { seed: opts.seed }, &mut timeline)?;
    let op_flops: Vec<f64> = graph
        .ops
        .iter()
        .map(|op| op.kernels.iter().map(|k| k.flops()).sum())
        .collect();
    let flops = graph
        .task_kind
        .iter()
        .map(|k| match k {
            crate::workload::TaskKind::Compute(op) => op_flops[*op as usize],
            _ => 0.0,
        })
        .sum();
    let subject = crate::report::metrics::Subject::Trace {
        name,
        ranks: graph.ranks,
        flops,
    };
    let mut report = Report::build(hw, subject, &outcome, opts.seed);
    report.max_memory_bytes = opts.max_memory;
    // a trace's measured kernels may beat the peak its FLOPs imply: only finiteness is checked
    report.check(f64::INFINITY)?;
    Ok(RunResult::new(report, graph, timeline, layout))
}

/// Simulated tasks in all (estimate x repetitions) above which `--iterations` is refused up front:
/// about 20 minutes at this machine's few million events per second.
pub const MAX_REPEATED_TASKS: f64 = 4e9;

/// Refuses, before anything runs, `n` repetitions that would simulate more than
/// [`MAX_REPEATED_TASKS`] tasks.
pub fn check_iterations(cfg: &RunConfig, opts: &RunOptions, n: u32) -> Result<()> {
    let tasks = crate::workload::generate::estimated_tasks(&cfg.workload, opts.representative) * n as f64;
    if n > 1 && tasks > MAX_REPEATED_TASKS {
        return Err(crate::error::Error::Input(format!(
            "error: --iterations {n}: would simulate about {tasks:.2e} tasks in all, more than {MAX_REPEATED_TASKS:.0e} \
             (roughly 20 minutes); use fewer iterations, --representative, or a smaller workload"
        )));
    }
    Ok(())
}

/// Repeats the iteration with seeds `seed + 1` to `seed + n - 1` and records the spread in the
/// report (`iterations`) and the times (for iterations.csv and the histogram).
pub fn repeat(cfg: &RunConfig, res: &mut RunResult, seed: u64, n: u32) -> Result<()> {
    if n <= 1 {
        return Ok(());
    }
    let mut times = vec![res.report.iteration_time_s];
    times.extend(crate::studies::iterations::more_iterations(
        cfg,
        &res.graph,
        seed,
        n - 1,
    )?);
    res.report.iterations = Some(crate::report::spread::IterationStats::of(&times));
    res.iteration_times = times;
    Ok(())
}

/// The default output folder: results/<workload name>/.
pub fn default_out_dir(cfg: &RunConfig) -> PathBuf {
    Path::new("results").join(&cfg.workload.name)
}

/// Writes report.json, stages.csv and, when spans were recorded, timeline.json and schedule.png/.svg.
/// Returns the paths written.
pub fn write_outputs(res: &RunResult, dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let report_path = dir.join("report.json");
    write_atomic(&report_path, |w| {
        serde_json::to_writer_pretty(&mut *w, &res.report)?;
        writeln!(w)
    })?;
    written.push(report_path);
    let csv = dir.join("stages.csv");
    write_atomic(&csv, |w| {
        writeln!(
            w,
            "stage,compute_s,exposed_comm_s,overlapped_comm_s,sync_wait_s,io_s,bubble_s,idle_s,bubble_fraction,bubble_ratio"
        )?;
        // times to the nanosecond the clock resolves, fractions to 6 digits: no float noise
        for s in &res.report.bubble.per_stage {
            let b = &s.breakdown;
            writeln!(
                w,
                "{},{:.9},{:.9},{:.9},{:.9},{:.9},{:.9},{:.9},{:.6},{:.6}",
                s.stage,
                b.compute_s,
                b.exposed_comm_s,
                b.overlapped_comm_s,
                b.sync_wait_s,
                b.io_s,
                b.bubble_s,
                b.idle_s,
                s.fraction,
                s.ratio
            )?;
        }
        Ok(())
    })?;
    written.push(csv);
    if res.iteration_times.len() > 1 {
        written.extend(write_iterations(res, dir)?);
    }
    if !res.timeline.spans.is_empty() {
        let spans = res.timeline.sorted(&res.graph);
        let trace = dir.join("timeline.json");
        write_atomic(&trace, |w| {
            write_chrome_trace(w, &res.graph, res.layout, &spans, &res.timeline.last_to_arrive)
        })?;
        written.push(trace);
        let blocks = schedule_blocks(&res.graph, res.layout, &spans);
        let p = &res.report.parallel;
        let title = if p.microbatches == 0 {
            // a trace without a workload: no schedule to name
            format!(
                "{} on {}: trace timeline, {} GPUs",
                res.report.name, res.report.hardware, res.report.gpus
            )
        } else {
            format!(
                "{} on {}: {} schedule, p = {}, m = {}{} (tensor 0, data 0 of each stage)",
                res.report.name,
                res.report.hardware,
                p.schedule,
                p.pipeline,
                p.microbatches,
                if p.interleave > 1 {
                    format!(", v = {}", p.interleave)
                } else {
                    String::new()
                }
            )
        };
        let stem = dir.join("schedule");
        write_figure(
            &stem,
            &ScheduleChart {
                title: &title,
                stages: p.pipeline,
                blocks: &blocks,
            },
        )?;
        written.push(stem.with_extension("png"));
        written.push(stem.with_extension("svg"));
    }
    Ok(written)
}

/// iterations.csv (seed, time) and the histogram of `run --iterations N`.
fn write_iterations(res: &RunResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let csv = dir.join("iterations.csv");
    write_atomic(&csv, |w| {
        writeln!(w, "iteration,seed,iteration_time_s")?;
        for (i, t) in res.iteration_times.iter().enumerate() {
            writeln!(w, "{i},{},{t:.9}", res.report.seed.wrapping_add(i as u64))?;
        }
        Ok(())
    })?;
    let bins = crate::report::spread::histogram(&res.iteration_times, 20);
    let title = format!(
        "{} on {}: iteration time over {} seeds",
        res.report.name,
        res.report.hardware,
        res.iteration_times.len()
    );
    let stem = dir.join("iterations");
    write_figure(
        &stem,
        &crate::report::spread::HistogramChart {
            title: &title,
            bins: &bins,
        },
    )?;
    Ok(vec![csv, stem.with_extension("png"), stem.with_extension("svg")])
}

/// The largest MFU a run may report (MFU counts against the 16-bit peak): 1, or with FP8 GEMMs the
/// largest ratio of a GPU's FP8 to 16-bit peak; unbounded with the ideal compute model.
fn mfu_ceiling(cfg: &RunConfig) -> f64 {
    if cfg.hardware.gpu.compute == crate::config::ComputeModelKind::Ideal {
        return f64::INFINITY;
    }
    if cfg.workload.precision != crate::config::Precision::Fp8 {
        return 1.0;
    }
    cfg.hardware
        .gpu_models()
        .iter()
        .filter_map(|g| g.fp8_flops.map(|f| f.flops_per_s() / g.peak_flops.flops_per_s()))
        .fold(1.0, f64::max)
}
