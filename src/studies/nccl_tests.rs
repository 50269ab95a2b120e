//! The collective model against published nccl-tests tables (`workloads/reference/nccl-tests-a100.csv`):
//! every row clustersim can express is simulated with `clustersim collective`'s machinery on the
//! machine's hardware file and compared by time.
//!
//! Left out, and why: `reduce` (no such collective here); rows whose network is not 8 x HDR per node
//! (`roce`, `4x-hdr`: other machines, which need their own hardware files); rows without a time
//! (busbw-only sources, compared by bus bandwidth instead: the same ratio).

use super::collective::{sweep_on, SweepOp};
use crate::config::HardwareSpec;
use crate::error::Result;
use std::collections::BTreeMap;

const PUBLISHED: &str = include_str!("../../workloads/reference/nccl-tests-a100.csv");

/// One published point and the simulated value.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectiveComparison {
    /// Collective.
    pub op: SweepOp,
    /// Source id.
    pub source: String,
    /// GPUs.
    pub gpus: u32,
    /// Nodes.
    pub nodes: u32,
    /// Bytes, nccl-tests' convention.
    pub bytes: u64,
    /// Published time, us (bus-bandwidth-only rows: derived from the busbw).
    pub published_us: f64,
    /// Simulated time, us.
    pub simulated_us: f64,
}

impl CollectiveComparison {
    /// (simulated - published) / published, in percent: positive is slower than measured.
    pub fn error_pct(&self) -> f64 {
        (self.simulated_us / self.published_us - 1.0) * 100.0
    }
}

fn op_of(name: &str) -> Option<SweepOp> {
    Some(match name {
        "all-reduce" => SweepOp::AllReduce,
        "all-gather" => SweepOp::AllGather,
        "reduce-scatter" => SweepOp::ReduceScatter,
        "broadcast" => SweepOp::Broadcast,
        "all-to-all" => SweepOp::AllToAll,
        _ => return None,
    })
}

/// The published rows clustersim can express: (op, source, gpus, nodes, bytes, time us).
fn published() -> Vec<(SweepOp, String, u32, u32, u64, f64)> {
    let mut out = Vec::new();
    for line in PUBLISHED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("op,"))
    {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(op), true) = (op_of(f[0]), f[2] == "8x-hdr") else {
            continue;
        };
        let (gpus, nodes, bytes): (u32, u32, u64) = match (f[3].parse(), f[4].parse(), f[5].parse()) {
            (Ok(g), Ok(n), Ok(b)) => (g, n, b),
            _ => continue,
        };
        let time_us = match (f[6].parse::<f64>(), f[7].parse::<f64>()) {
            (Ok(t), _) => t,
            // busbw only: time = bytes x bus factor / busbw
            (_, Ok(bw)) if bw > 0.0 => bytes as f64 * op.bus_factor(gpus) / (bw * 1e9) * 1e6,
            _ => continue,
        };
        out.push((op, f[1].to_string(), gpus, nodes, bytes, time_us));
    }
    out
}

/// The published points of `op` over `gpus` GPUs on `nodes` nodes, per source: (bytes, busbw bytes/s).
pub fn published_busbw(op: SweepOp, gpus: u32, nodes: u32) -> Vec<(String, Vec<(u64, f64)>)> {
    let mut out: Vec<(String, Vec<(u64, f64)>)> = Vec::new();
    for (o, source, g, n, bytes, time_us) in published() {
        if o != op || g != gpus || n != nodes || time_us <= 0.0 {
            continue;
        }
        let busbw = bytes as f64 * op.bus_factor(gpus) / (time_us * 1e-6);
        match out.iter_mut().find(|(s, _)| *s == source) {
            Some((_, pts)) => pts.push((bytes, busbw)),
            None => out.push((source, vec![(bytes, busbw)])),
        }
    }
    out
}

/// Simulates every expressible published point on `hw` (8 GPUs per node, as the sources ran).
pub fn compare(hw: &HardwareSpec) -> Result<Vec<CollectiveComparison>> {
    let rows = published();
    // one sweep per (op, gpus) over the sizes published for it
    let mut sizes: BTreeMap<(u8, u32, u32), (SweepOp, Vec<u64>)> = BTreeMap::new();
    for (op, _, gpus, nodes, bytes, _) in &rows {
        sizes
            .entry((*op as u8, *gpus, *nodes))
            .or_insert((*op, Vec::new()))
            .1
            .push(*bytes);
    }
    let mut simulated: BTreeMap<(u8, u32, u32, u64), f64> = BTreeMap::new();
    for ((key_op, gpus, nodes), (op, mut list)) in sizes {
        list.sort_unstable();
        list.dedup();
        // the same number of GPUs on each of `nodes` nodes, as the source ran
        let per_node = gpus / nodes.max(1);
        let ranks: Vec<u32> = (0..gpus).map(|i| i / per_node * hw.node.gpus + i % per_node).collect();
        for p in sweep_on(hw, op, &ranks, &list)? {
            simulated.insert((key_op, gpus, nodes, p.bytes), p.time_s * 1e6);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(op, source, gpus, nodes, bytes, published_us)| CollectiveComparison {
            simulated_us: simulated[&(op as u8, gpus, nodes, bytes)],
            op,
            source,
            gpus,
            nodes,
            bytes,
            published_us,
        })
        .collect())
}

/// CSV of the comparison.
pub fn csv(rows: &[CollectiveComparison]) -> String {
    let mut s = String::from("op,source,gpus,nodes,bytes,published_us,simulated_us,error_pct\n");
    for r in rows {
        s += &format!(
            "{},{},{},{},{},{},{:.3},{:.2}\n",
            r.op.name(),
            r.source,
            r.gpus,
            r.nodes,
            r.bytes,
            r.published_us,
            r.simulated_us,
            r.error_pct()
        );
    }
    s
}

/// Errors of one (op, source, GPUs, nodes) series over a size range.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSummary {
    /// Collective.
    pub op: SweepOp,
    /// Source id.
    pub source: String,
    /// GPUs.
    pub gpus: u32,
    /// Nodes.
    pub nodes: u32,
    /// Smallest size counted, bytes.
    pub from_bytes: u64,
    /// Points counted.
    pub points: usize,
    /// Mean |error|, percent.
    pub mean_abs_pct: f64,
    /// Largest |error|, percent, and its size.
    pub max_abs_pct: (f64, u64),
}

/// Per series, the errors at `from_bytes` and above (series with no point there are left out).
pub fn summarise(rows: &[CollectiveComparison], from_bytes: u64) -> Vec<SeriesSummary> {
    let mut out: Vec<SeriesSummary> = Vec::new();
    for r in rows.iter().filter(|r| r.bytes >= from_bytes) {
        let e = r.error_pct().abs();
        match out
            .iter_mut()
            .find(|s| s.op == r.op && s.source == r.source && s.gpus == r.gpus && s.nodes == r.nodes)
        {
            Some(s) => {
                s.mean_abs_pct += e;
                s.points += 1;
                if e > s.max_abs_pct.0 {
                    s.max_abs_pct = (e, r.bytes);
                }
            }
            None => out.push(SeriesSummary {
                op: r.op,
                source: r.source.clone(),
                gpus: r.gpus,
                nodes: r.nodes,
                from_bytes,
                points: 1,
                mean_abs_pct: e,
                max_abs_pct: (e, r.bytes),
            }),
        }
    }
    for s in &mut out {
        s.mean_abs_pct /= s.points as f64;
    }
    out
}

/// Markdown: the summary per series (from 64 KiB and from 32 MiB) and every point.
pub fn markdown(rows: &[CollectiveComparison], hardware: &str) -> String {
    use crate::units::human_size;
    let mut s = format!(
        "# Collectives against published nccl-tests ({hardware})\n\nRegenerated by `clustersim validate`. \
         Published: `workloads/reference/nccl-tests-a100.csv` (sources named there). Error = simulated / \
         published time - 1 (positive: slower than measured).\n\n\
         | op | source | GPUs | nodes | from | points | mean abs. error | max abs. error (at) |\n|---|---|---|---|---|---|---|---|\n"
    );
    for from in [64 << 10, 32 << 20] {
        for m in summarise(rows, from) {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {:.1}% | {:.1}% ({}) |\n",
                m.op.name(),
                m.source,
                m.gpus,
                m.nodes,
                human_size(from),
                m.points,
                m.mean_abs_pct,
                m.max_abs_pct.0,
                human_size(m.max_abs_pct.1)
            );
        }
    }
    s += "\n| op | source | GPUs | nodes | size | published (us) | simulated (us) | error |\n|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:+.1}% |\n",
            r.op.name(),
            r.source,
            r.gpus,
            r.nodes,
            human_size(r.bytes),
            r.published_us,
            r.simulated_us,
            r.error_pct()
        );
    }
    s
}
