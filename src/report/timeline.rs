//! The timeline: spans of the recorded ranks, written in Chrome trace event format.
//!
//! Open `timeline.json` in <https://ui.perfetto.dev> or chrome://tracing: one process per GPU,
//! one thread per stream, spans named by op, phase, microbatch and stage.

use crate::ops::CollectiveOp;
use crate::sim::SpanSink;
use crate::units::SimTime;
use crate::workload::layout::Layout;
use crate::workload::{CollectiveId, Phase, Stream, TaskGraph, TaskId, TaskKind};
use std::io::Write;

/// Which ranks a run records spans for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimelineRanks {
    /// The first data-parallel replica: every tensor rank of every stage.
    FirstReplica,
    /// Every rank (large: tens of thousands of spans per GPU on big models).
    All,
    /// None: no timeline, no schedule plot.
    None,
}

/// One finished task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The task.
    pub task: TaskId,
    /// When it started (became runnable at the head of its stream).
    pub start: SimTime,
    /// When it finished.
    pub end: SimTime,
}

/// Records spans of selected ranks during a simulation.
pub struct Timeline {
    wanted: Vec<bool>,
    /// Spans in completion order.
    pub spans: Vec<Span>,
    /// Collectives whose members waited, and the rank they waited for (arrived last).
    pub last_to_arrive: std::collections::BTreeMap<u32, u32>,
}

impl Timeline {
    /// A recorder for the ranks `which` selects.
    pub fn new(which: TimelineRanks, layout: Layout) -> Self {
        let wanted = (0..layout.ranks())
            .map(|r| match which {
                TimelineRanks::All => true,
                TimelineRanks::None => false,
                TimelineRanks::FirstReplica => layout.replica(layout.coord(r)) == 0,
            })
            .collect();
        Timeline {
            wanted,
            spans: Vec::new(),
            last_to_arrive: Default::default(),
        }
    }

    /// Spans sorted by rank, stream and start (the file order).
    pub fn sorted(&self, g: &TaskGraph) -> Vec<Span> {
        let mut s = self.spans.clone();
        s.sort_by_key(|sp| {
            (
                g.task_rank[sp.task as usize],
                g.task_stream[sp.task as usize],
                sp.start,
                sp.end,
                sp.task,
            )
        });
        s
    }
}

impl SpanSink for Timeline {
    fn wants(&self, rank: u32) -> bool {
        self.wanted.get(rank as usize).copied().unwrap_or(false)
    }
    fn span(&mut self, task: TaskId, start: SimTime, end: SimTime) {
        self.spans.push(Span { task, start, end });
    }
    fn waited_for(&mut self, collective: CollectiveId, last: u32) {
        self.last_to_arrive.insert(collective, last);
    }
}

/// A task's display name: op (or communication), phase, microbatch and stage.
pub fn span_name(g: &TaskGraph, task: TaskId, stage: u32) -> String {
    let label = g.task_label[task as usize];
    let what = match g.task_kind[task as usize] {
        TaskKind::Compute(op) => g.ops[op as usize].name.to_string(),
        TaskKind::Collective(c) => {
            let coll = &g.collectives[c as usize];
            // the group it runs over: data-parallel (gradient reduction, ZeRO's weight gather after
            // the step), expert-parallel (token dispatch and combine) or tensor-parallel
            let scope = match (label.phase, coll.op) {
                _ if coll.data_parallel => "dp",
                (Phase::GradReduce, _) | (Phase::Optimizer, CollectiveOp::AllGather) => "dp",
                (_, CollectiveOp::AllToAll) => "ep",
                _ => "tp",
            };
            format!("{scope} {}", coll.op.name())
        }
        TaskKind::Send(_) => "send".to_string(),
        TaskKind::Recv(_) => "recv".to_string(),
        TaskKind::Delay(_) => "delay".to_string(),
        TaskKind::Storage(x) => {
            let op = g.storage[x as usize];
            if op.write { "storage write" } else { "storage read" }.to_string()
        }
    };
    let mb = if label.microbatch == u32::MAX {
        String::new()
    } else {
        format!(" mb{}", label.microbatch)
    };
    format!("{what} · {}{mb} · stage {stage}", label.phase.name())
}

fn micros(t: SimTime) -> f64 {
    t.0 as f64 / 1000.0
}

/// Writes the Chrome trace JSON for `spans` (already sorted).
/// Collective spans whose rank waited for another carry `waited_for`: the rank that arrived last.
pub fn write_chrome_trace(
    w: &mut dyn Write,
    g: &TaskGraph,
    layout: Layout,
    spans: &[Span],
    last_to_arrive: &std::collections::BTreeMap<u32, u32>,
) -> std::io::Result<()> {
    writeln!(w, "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[")?;
    let mut first = true;
    let mut sep = |w: &mut dyn Write| -> std::io::Result<()> {
        if !first {
            writeln!(w, ",")?;
        }
        first = false;
        Ok(())
    };
    let mut ranks: Vec<u32> = spans.iter().map(|s| g.task_rank[s.task as usize]).collect();
    ranks.dedup();
    for &r in &ranks {
        let c = layout.coord(r);
        let name = format!("GPU {r} (stage {}, tensor {}, data {})", c.stage, c.tensor, c.data);
        sep(w)?;
        write!(
            w,
            "{}",
            serde_json::json!({"ph":"M","name":"process_name","pid":r,"tid":0,"args":{"name":name}})
        )?;
        sep(w)?;
        write!(
            w,
            "{}",
            serde_json::json!({"ph":"M","name":"process_sort_index","pid":r,"tid":0,"args":{"sort_index":r}})
        )?;
        // the context and expert streams are named only where a rank has them (older timelines
        // stay byte for byte)
        let used = |s: Stream| !g.stream(r, s as usize).is_empty();
        let optional = [Stream::ContextComm, Stream::ExpertComm];
        for s in Stream::ALL.into_iter().filter(|&s| !optional.contains(&s) || used(s)) {
            sep(w)?;
            write!(
                w,
                "{}",
                serde_json::json!({"ph":"M","name":"thread_name","pid":r,"tid":s as u8,"args":{"name":s.name()}})
            )?;
        }
    }
    for sp in spans {
        let t = sp.task as usize;
        let r = g.task_rank[t];
        let label = g.task_label[t];
        let stage = layout.coord(r).stage;
        let mut args = serde_json::Map::new();
        args.insert("stage".into(), stage.into());
        if label.microbatch != u32::MAX {
            args.insert("microbatch".into(), label.microbatch.into());
        }
        if label.layer != u16::MAX {
            args.insert("layer".into(), label.layer.into());
        }
        args.insert("chunk".into(), label.chunk.into());
        if let TaskKind::Collective(c) = g.task_kind[t] {
            match last_to_arrive.get(&c) {
                Some(&last) if last != r => {
                    args.insert("waited_for".into(), last.into());
                }
                _ => {}
            }
        }
        sep(w)?;
        write!(
            w,
            "{}",
            serde_json::json!({
                "name": span_name(g, sp.task, stage),
                "cat": label.phase.name(),
                "ph": "X",
                "ts": micros(sp.start),
                "dur": micros(sp.end) - micros(sp.start),
                "pid": r,
                "tid": g.task_stream[t],
                "args": args,
            })
        )?;
    }
    writeln!(w, "\n]}}")
}
