//! Benchmark cases for `clustersim bench`: simulator speed, as events per second and wall time.

use crate::config::{load_run_config, Override, Source};
use crate::engine::EventQueue;
use crate::error::Result;
use crate::units::SimTime;
use std::time::Instant;

/// Result of one benchmark case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Tasks in the simulated graph (0 for the engine alone).
    pub tasks: u64,
    /// Events processed.
    pub events: u64,
    /// Wall seconds.
    pub wall_s: f64,
    /// The process's peak resident memory during the case (Linux; None elsewhere), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// What the case simulated (an iteration or a collective), s.
    pub simulated_s: Option<f64>,
    /// Of the wall time, seconds spent generating the task graph (training iterations only).
    pub generate_s: Option<f64>,
}

impl BenchResult {
    /// Events per wall second.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
    /// Peak resident memory per task (None without tasks or a measurement).
    pub fn bytes_per_task(&self) -> Option<f64> {
        match (self.peak_rss_bytes, self.tasks) {
            (Some(b), t) if t > 0 => Some(b as f64 / t as f64),
            _ => None,
        }
    }
}

/// Resets the process's peak resident memory (Linux: `5` into /proc/self/clear_refs), so that the
/// next [`peak_rss`] measures one case.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since the last reset, bytes (Linux's VmHWM).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The event queue alone: `live` pending events, each pop schedules one at a pseudo-random
/// later time drawn from `spread` nanoseconds (a hold model), `total` pops. A small spread makes
/// many events share a time (as symmetric training workloads do); a huge one makes every time distinct.
pub fn engine_synthetic(live: u64, total: u64, spread: u64) -> BenchResult {
    let start = Instant::now();
    let mut q: EventQueue<u64> = EventQueue::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let next = |x: &mut u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x % spread
    };
    for i in 0..live {
        let d = next(&mut x);
        q.schedule(SimTime(d), i);
    }
    let mut popped = 0;
    while let Some((t, e)) = q.pop() {
        popped += 1;
        if popped + live <= total {
            let d = next(&mut x);
            q.schedule(SimTime(t.0 + 1 + d), e);
        }
    }
    BenchResult {
        case: format!("engine: hold model, {live} pending, times spread over {spread} ns"),
        tasks: 0,
        events: popped,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        simulated_s: None,
        generate_s: None,
    }
}

/// GPT-1T, t8 p64 d6 on 3072 GPUs of dgx-a100 (batch 3072, microbatch 1, 1F1B) with the given
/// network model, every rank or representative: generation and simulation of one iteration, no files.
pub fn gpt_1t(network: &str, representative: bool) -> Result<BenchResult> {
    let sets = [
        "workload.batch.global=3072",
        "workload.batch.micro=1",
        "workload.schedule=1f1b",
        &format!("hardware.network.model={network}"),
    ];
    iteration("dgx-a100", "gpt-1t", &sets, representative)
}

/// GPT-1T, t8 p64 d192 (batch 12 288) on 98 304 GPUs: 12 288 DGX-H100 nodes on a 4-level
/// rail-optimized fat tree of radix 64, flow network with ring all-reduces (NCCL's trees load the
/// nodes of a group unequally, which a representative run cannot stand for), representative.
pub fn scale() -> Result<BenchResult> {
    let sets = [
        "hardware.nodes=12288",
        "hardware.network.topology.levels=4",
        "hardware.network.model=flow",
        "hardware.network.algorithm=ring",
        "workload.parallel.data=192",
        "workload.batch.global=12288",
    ];
    iteration("dgx-h100", "gpt-1t", &sets, true)
}

/// One iteration of a preset workload on a preset machine with overrides, no files.
fn iteration(hardware: &str, workload: &str, sets: &[&str], representative: bool) -> Result<BenchResult> {
    let start = Instant::now();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    let cfg = load_run_config(
        &Source::Named(hardware.into()),
        &Source::Named(workload.into()),
        &overrides,
    )?;
    let res = crate::studies::run::run(&cfg, &crate::studies::run::RunOptions::metrics_only(representative))?;
    let r = &res.report;
    let mode = if r.ranks_simulated < r.ranks_represented {
        format!("{} of {} ranks", r.ranks_simulated, r.ranks_represented)
    } else {
        "every rank".to_string()
    };
    Ok(BenchResult {
        case: format!("{workload}, {} GPUs, {} network, {mode}", r.gpus, r.network_model),
        tasks: res.graph.len() as u64,
        events: r.events,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        simulated_s: Some(r.iteration_time_s),
        generate_s: Some(res.generate_s),
    })
}

/// A 1 GiB ring all-reduce over 4096 GPUs (512 DGX A100 nodes) with the flow model, every rank simulated.
pub fn ring_4096() -> Result<BenchResult> {
    let start = Instant::now();
    let mut doc =
        crate::config::Document::load(&Source::Named("dgx-a100".into()), crate::config::DocumentKind::Hardware)?;
    for s in [
        "hardware.nodes=512",
        "hardware.network.model=flow",
        "hardware.network.algorithm=ring",
    ] {
        doc.apply(&Override::parse(s)?)?;
    }
    let hw = crate::config::HardwareSpec::from_document(&doc)?;
    let graph = crate::studies::collective::graph(crate::studies::collective::SweepOp::AllReduce, 4096, 1 << 30);
    let out = crate::sim::simulate(
        &graph,
        &hw,
        crate::sim::SimOptions { seed: 1 },
        &mut crate::sim::NoSpans,
    )?;
    let case = "ring all-reduce 1 GiB over 4096 GPUs, flow network".to_string();
    Ok(BenchResult {
        case,
        tasks: graph.len() as u64,
        events: out.events,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        simulated_s: Some(out.makespan.as_secs_f64()),
        generate_s: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 GiB peak over 2^25 tasks is 32 bytes per task; no tasks, no figure.
    #[test]
    fn bytes_per_task_is_peak_over_tasks() {
        let mut r = BenchResult {
            case: "x".into(),
            tasks: 1 << 25,
            events: 1,
            wall_s: 1.0,
            peak_rss_bytes: Some(1 << 30),
            simulated_s: None,
            generate_s: None,
        };
        assert_eq!(r.bytes_per_task(), Some(32.0));
        r.tasks = 0;
        assert_eq!(r.bytes_per_task(), None);
    }

    /// On Linux the process's peak memory is readable and at least what it holds now.
    #[test]
    #[cfg(target_os = "linux")]
    fn peak_memory_is_measured() {
        reset_peak_rss();
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let sum: u64 = block.iter().step_by(4096).map(|&b| b as u64).sum();
        assert_eq!(sum, (64 << 20) / 4096);
        let peak = peak_rss().expect("VmHWM on Linux");
        assert!(peak >= 64 << 20, "{peak}");
        drop(block);
    }
}
