//! Benchmark cases for `clustersim bench`: simulator speed, as events per second and wall time.

use crate::config::{load_run_config, Override, Source};
use crate::engine::EventQueue;
use crate::error::Result;
use crate::units::SimTime;
use std::time::Instant;

/// Result of one benchmark case.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Events processed.
    pub events: u64,
    /// Wall seconds.
    pub wall_s: f64,
}

impl BenchResult {
    /// Events per wall second.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
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
        events: popped,
        wall_s: start.elapsed().as_secs_f64(),
    }
}

/// GPT-1T, t8 p64 d6 on 3072 GPUs of dgx-a100 (batch 3072, microbatch 1, 1F1B) with the given
/// network model: generation and simulation of one iteration, no files.
pub fn gpt_1t(network: &str) -> Result<(BenchResult, f64)> {
    let start = Instant::now();
    let sets = [
        "workload.batch.global=3072",
        "workload.batch.micro=1",
        "workload.schedule=1f1b",
    ];
    let mut overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s)).collect::<Result<_>>()?;
    overrides.push(Override::parse(&format!("hardware.network.model={network}"))?);
    let cfg = load_run_config(
        &Source::Named("dgx-a100".into()),
        &Source::Named("gpt-1t".into()),
        &overrides,
    )?;
    let graph = crate::workload::generate(&cfg.workload);
    let generated = start.elapsed().as_secs_f64();
    let out = crate::sim::simulate(
        &graph,
        &cfg.hardware,
        crate::sim::SimOptions { seed: 1 },
        &mut crate::sim::NoSpans,
    )?;
    let wall = start.elapsed().as_secs_f64();
    let case = format!(
        "gpt-1t, 3072 GPUs, {} tasks (built in {generated:.2} s), {} network",
        graph.len(),
        out.network_model
    );
    Ok((
        BenchResult {
            case,
            events: out.events,
            wall_s: wall,
        },
        out.makespan.as_secs_f64(),
    ))
}

/// A 1 GiB ring all-reduce over 4096 GPUs (512 DGX A100 nodes) with the flow model, every rank simulated.
pub fn ring_4096() -> Result<(BenchResult, f64)> {
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
    Ok((
        BenchResult {
            case,
            events: out.events,
            wall_s: start.elapsed().as_secs_f64(),
        },
        out.makespan.as_secs_f64(),
    ))
}
