//! `clustersim collective`: an nccl-tests-style sweep of one collective over message sizes.
//!
//! Every size is a real simulation: a task graph with one collective task per rank, run by the
//! engine on the chosen network model. Reported like nccl-tests: time, algorithm bandwidth
//! algbw = size / time and bus bandwidth busbw = algbw x factor, with factor 2(n-1)/n for
//! all-reduce, (n-1)/n for reduce-scatter, all-gather and all-to-all, and 1 for broadcast and
//! send/recv.

use crate::config::HardwareSpec;
use crate::error::{Error, Result};
use crate::model::network::algorithms::{self, Algorithm, LinkCosts};
use crate::ops::CollectiveOp;
use crate::sim::{simulate, NoSpans, SimOptions};
use crate::units::{human_size, parse_bytes};
use crate::workload::builder::GraphBuilder;
use crate::workload::graph::{Phase, Stream, TaskKind, TaskLabel};
use crate::workload::TaskGraph;
use serde::Serialize;

/// Operations `collective` can sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SweepOp {
    /// All-reduce.
    AllReduce,
    /// Reduce-scatter.
    ReduceScatter,
    /// All-gather.
    AllGather,
    /// Broadcast from rank 0.
    Broadcast,
    /// All-to-all.
    AllToAll,
    /// Each rank sends to the next and receives from the previous.
    SendRecv,
}

impl SweepOp {
    /// nccl-tests name.
    pub fn name(self) -> &'static str {
        match self {
            SweepOp::AllReduce => "all-reduce",
            SweepOp::ReduceScatter => "reduce-scatter",
            SweepOp::AllGather => "all-gather",
            SweepOp::Broadcast => "broadcast",
            SweepOp::AllToAll => "all-to-all",
            SweepOp::SendRecv => "sendrecv",
        }
    }
    /// busbw / algbw, as nccl-tests defines it.
    pub fn bus_factor(self, n: u32) -> f64 {
        let n = n as f64;
        match self {
            SweepOp::AllReduce => 2.0 * (n - 1.0) / n,
            SweepOp::ReduceScatter | SweepOp::AllGather | SweepOp::AllToAll => (n - 1.0) / n,
            SweepOp::Broadcast | SweepOp::SendRecv => 1.0,
        }
    }
    fn collective(self) -> Option<CollectiveOp> {
        Some(match self {
            SweepOp::AllReduce => CollectiveOp::AllReduce,
            SweepOp::ReduceScatter => CollectiveOp::ReduceScatter,
            SweepOp::AllGather => CollectiveOp::AllGather,
            SweepOp::Broadcast => CollectiveOp::Broadcast,
            SweepOp::AllToAll => CollectiveOp::AllToAll,
            SweepOp::SendRecv => return None,
        })
    }
}

/// One row of the table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Message size, bytes.
    pub bytes: u64,
    /// Simulated time, s.
    pub time_s: f64,
    /// Algorithm bandwidth, bytes/s.
    pub algbw: f64,
    /// Bus bandwidth, bytes/s.
    pub busbw: f64,
}

/// Parses `MIN:MAX` (powers of two from MIN to MAX) or a single size.
pub fn parse_sizes(text: &str) -> Result<Vec<u64>> {
    let bad = |why: String| Error::Input(format!("error: --sizes {text:?}: {why}"));
    let (lo, hi) = match text.split_once(':') {
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let lo = parse_bytes(lo).map_err(|e| bad(e.to_string()))?.0;
    let hi = parse_bytes(hi).map_err(|e| bad(e.to_string()))?.0;
    if lo == 0 || hi < lo {
        return Err(bad("expected MIN:MAX with 0 < MIN <= MAX, e.g. 1KiB:8GiB".into()));
    }
    let mut sizes = Vec::new();
    let mut s = lo;
    while s <= hi {
        sizes.push(s);
        s = s.saturating_mul(2);
        if s == u64::MAX {
            break;
        }
    }
    Ok(sizes)
}

/// The task graph of one collective (or one ring of send/recv) over ranks 0..gpus.
pub fn graph(op: SweepOp, gpus: u32, bytes: u64) -> TaskGraph {
    graph_on(op, &(0..gpus).collect::<Vec<_>>(), bytes)
}

/// The task graph of one collective (or one ring of send/recv) over the given ranks.
pub fn graph_on(op: SweepOp, ranks: &[u32], bytes: u64) -> TaskGraph {
    let mut g = GraphBuilder::new(ranks.iter().max().map_or(0, |&r| r + 1));
    let label = TaskLabel {
        phase: Phase::Other,
        chunk: 0,
        layer: u16::MAX,
        microbatch: u32::MAX,
    };
    match op.collective() {
        Some(c) => {
            let group = g.group(ranks.to_vec());
            let id = g.collective(c, group, bytes);
            for &r in ranks {
                g.task(r, Stream::Compute, TaskKind::Collective(id), label);
            }
        }
        None => {
            for (i, &r) in ranks.iter().enumerate() {
                let next = ranks[(i + 1) % ranks.len()];
                let x = g.transfer(r, next, bytes);
                g.task(r, Stream::PipelineSend, TaskKind::Send(x), label);
                g.task(next, Stream::Compute, TaskKind::Recv(x), label);
            }
        }
    }
    g.finish()
}

/// Simulates `op` over `gpus` GPUs at each size.
pub fn sweep(hw: &HardwareSpec, op: SweepOp, gpus: u32, sizes: &[u64]) -> Result<Vec<Point>> {
    if gpus < 2 {
        return Err(Error::Input(format!(
            "error: --gpus {gpus}: a collective needs at least 2 GPUs"
        )));
    }
    if gpus as u64 > hw.total_gpus() {
        return Err(Error::Input(format!(
            "error: --gpus {gpus}: {} has {} nodes x {} GPUs = {} GPUs",
            hw.name,
            hw.nodes,
            hw.node.gpus,
            hw.total_gpus()
        )));
    }
    check_flows(hw, op, gpus, sizes.len())?;
    sweep_on(hw, op, &(0..gpus).collect::<Vec<_>>(), sizes)
}

/// Memory per flow of a flow-model all-to-all: measured at 1.23 GB peak for 3072 GPUs' 9.4e6
/// flows (131 bytes each, `/usr/bin/time -v`), rounded up.
const BYTES_PER_FLOW: f64 = 160.0;

/// Flows simulated in all (flows x sizes) above which a flow-model all-to-all is refused: the same
/// measurement took 7.8 s per size, 0.83 us per flow, so this is about 20 minutes.
const MAX_FLOWS: f64 = 1.5e9;

/// Refuses, before anything is built, a flow-model all-to-all whose n (n - 1) flows per size would
/// need more than a run's memory limit, or take more than [`MAX_FLOWS`] flows over all sizes. (The
/// other collectives are rings and trees: flows linear in the GPUs.)
fn check_flows(hw: &HardwareSpec, op: SweepOp, gpus: u32, sizes: usize) -> Result<()> {
    if op != SweepOp::AllToAll || hw.network.model != crate::config::NetworkModelKind::Flow {
        return Ok(());
    }
    let flows = gpus as f64 * (gpus as f64 - 1.0);
    let bytes = flows * BYTES_PER_FLOW;
    let limit = crate::studies::run::DEFAULT_MAX_MEMORY;
    if bytes > limit as f64 {
        return Err(Error::Input(format!(
            "error: --gpus {gpus}: an all-to-all on the flow model is {flows:.2e} flows (n (n - 1)), about {} of memory, more than the limit of {}; use fewer GPUs or --set hardware.network.model=analytic",
            human_size(bytes as u64),
            human_size(limit)
        )));
    }
    if flows * sizes as f64 > MAX_FLOWS {
        return Err(Error::Input(format!(
            "error: --gpus {gpus} at {sizes} sizes: an all-to-all on the flow model is {flows:.2e} flows per size, {:.2e} in all, more than {MAX_FLOWS:.1e} (roughly 20 minutes); use fewer sizes (--sizes MIN:MAX) or fewer GPUs",
            flows * sizes as f64
        )));
    }
    Ok(())
}

/// Simulates `op` over the given ranks at each size (the caller checks they exist).
pub fn sweep_on(hw: &HardwareSpec, op: SweepOp, ranks: &[u32], sizes: &[u64]) -> Result<Vec<Point>> {
    let gpus = ranks.len() as u32;
    sizes
        .iter()
        .map(|&bytes| {
            let g = graph_on(op, ranks, bytes);
            let out = simulate(&g, hw, SimOptions { seed: 1 }, &mut NoSpans)?;
            let t = out.makespan.as_secs_f64();
            let algbw = if t > 0.0 { bytes as f64 / t } else { f64::INFINITY };
            Ok(Point {
                bytes,
                time_s: t,
                algbw,
                busbw: algbw * op.bus_factor(gpus),
            })
        })
        .collect()
}

/// What runs a collective of `bytes` over ranks 0..gpus, as "algorithm/protocol, k SMs" when NCCL's
/// tuner picks it (`network.nccl`; k: the thread blocks its kernel holds on each GPU, one SM each),
/// else the algorithm's name; `None` for send/recv.
pub fn algorithm(hw: &HardwareSpec, op: SweepOp, gpus: u32, bytes: u64) -> Option<String> {
    let c = op.collective()?;
    let ranks: Vec<u32> = (0..gpus).collect();
    let shape = crate::model::cluster::Placement::new(hw).shape(&ranks);
    let costs = LinkCosts::new(hw);
    let plan = algorithms::plan(c, hw.network.algorithm, &shape, bytes as f64, &costs);
    Some(match (plan.protocol, costs.nccl) {
        (Some(p), Some(_)) => format!("{}/{}, {} SMs", nccl_name(plan.algorithm), p.name(), plan.blocks),
        _ => plan.algorithm.name().to_string(),
    })
}

/// NCCL_ALGO's spelling of an algorithm NCCL's tuner chose.
fn nccl_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Ring | Algorithm::Hierarchical => "Ring",
        Algorithm::Tree => "Tree",
        Algorithm::Nvls => "NVLS",
        Algorithm::NvlsTree => "NVLSTree",
    }
}

/// The table printed on stdout; `algorithms` (one per point, or empty) adds a column with what ran.
pub fn table(op: SweepOp, gpus: u32, model: &str, points: &[Point], algorithms: &[String]) -> String {
    let mut s = format!("# {} over {gpus} GPUs, {model} network model\n", op.name());
    let column = |a: Option<&String>| a.map(|a| format!(" {a:>22}")).unwrap_or_default();
    s += &format!(
        "{:>12} {:>14} {:>14} {:>14}{}\n",
        "size",
        "time (us)",
        "algbw (GB/s)",
        "busbw (GB/s)",
        column(algorithms.first().map(|_| "algorithm".to_string()).as_ref())
    );
    for (i, p) in points.iter().enumerate() {
        s += &format!(
            "{:>12} {:>14.2} {:>14.2} {:>14.2}{}\n",
            human_size(p.bytes),
            p.time_s * 1e6,
            p.algbw / 1e9,
            p.busbw / 1e9,
            column(algorithms.get(i))
        );
    }
    s
}

/// CSV text of the sweep.
pub fn csv(points: &[Point]) -> String {
    let mut s = String::from("bytes,time_s,algbw_gbps,busbw_gbps\n");
    for p in points {
        s += &format!("{},{},{},{}\n", p.bytes, p.time_s, p.algbw / 1e9, p.busbw / 1e9);
    }
    s
}

/// Published nccl-tests bus bandwidths (workloads/reference/nccl-tests.csv), compiled in.
const PUBLISHED: &str = include_str!("../../workloads/reference/nccl-tests.csv");

/// The published bus bandwidth (GB/s) and its source for this hardware, operation and scale, if any.
pub fn published_busbw(hardware: &str, op: SweepOp, gpus: u32, gpus_per_node: u32) -> Option<(f64, String)> {
    let scope = if gpus <= gpus_per_node { "intra" } else { "inter" };
    PUBLISHED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("hardware,"))
        .find_map(|line| {
            let mut f = line.splitn(5, ',');
            let (hw, o, sc, bw, src) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            (hw == hardware && o == op.name() && sc == scope)
                .then(|| (bw.parse().ok(), src.trim_matches('"').to_string()))
                .and_then(|(b, s)| Some((b?, s)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_double_from_min_to_max() {
        assert_eq!(parse_sizes("1KiB:8KiB").unwrap(), vec![1024, 2048, 4096, 8192]);
        assert_eq!(parse_sizes("1GiB").unwrap(), vec![1 << 30]);
        assert!(parse_sizes("8KiB:1KiB").is_err());
        assert!(parse_sizes("0:1KiB").is_err());
        assert!(parse_sizes("lots").is_err());
    }

    #[test]
    fn published_reference_is_found_by_hardware_op_and_scope() {
        assert_eq!(
            published_busbw("dgx-a100", SweepOp::AllReduce, 8, 8).map(|r| r.0),
            Some(230.0)
        );
        assert_eq!(
            published_busbw("dgx-a100", SweepOp::AllReduce, 16, 8).map(|r| r.0),
            Some(192.0)
        );
        assert_eq!(published_busbw("dgx-h100", SweepOp::AllReduce, 16, 8), None);
        assert_eq!(published_busbw("dgx-a100", SweepOp::AllGather, 16, 8), None);
    }

    #[test]
    fn bus_factors_follow_nccl_tests() {
        assert_eq!(SweepOp::AllReduce.bus_factor(8), 2.0 * 7.0 / 8.0);
        assert_eq!(SweepOp::AllGather.bus_factor(8), 7.0 / 8.0);
        assert_eq!(SweepOp::Broadcast.bus_factor(8), 1.0);
    }
}
