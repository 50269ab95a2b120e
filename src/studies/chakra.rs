//! Running a Chakra set as ASTRA-sim issues it: each rank's nodes in the order they become ready.
//!
//! clustersim's streams run in a fixed order; ASTRA-sim issues whatever is ready (one compute and
//! one communication at a time per rank). The set is first run in the order the
//! importer gives it ([`crate::workload::trace::chakra`]); each stream is then re-sorted by the time its tasks
//! became ready in that run (their dependencies done; ties keep the first order) and run again,
//! until the order no longer changes (at most [`MAX_PASSES`] runs; the orders of these sets keep
//! moving by a few percent and the last is taken). A re-sorted order whose streams would wait on
//! each other in a cycle, or that deadlocks across ranks, is not taken: the last good one is.

use crate::config::HardwareSpec;
use crate::error::Result;
use crate::sim::{simulate, SimOptions, SpanSink};
use crate::units::SimTime;
use crate::workload::trace::chakra::ChakraSet;
use crate::workload::trace::Trace;
use crate::workload::TaskId;

/// Most runs spent on finding the ready order.
pub const MAX_PASSES: u32 = 8;

/// Keeps every task's start and end.
struct Spans(Vec<(u64, u64)>);

impl SpanSink for Spans {
    fn wants(&self, _rank: u32) -> bool {
        true
    }
    fn span(&mut self, task: TaskId, start: SimTime, end: SimTime) {
        self.0[task as usize] = (start.0, end.0);
    }
}

/// The set's graph with every stream in ready order, and the runs it took (0: a set clustersim
/// exported, whose streams' order is the generator's and is kept).
pub fn ready_order(set: ChakraSet, hw: &HardwareSpec, seed: u64) -> Result<(Trace, u32)> {
    if set.is_native() {
        return Ok((set.into_graph()?, 0));
    }
    let (mut trace, mut perm) = set.graph()?;
    let mut last_good: Option<Trace> = None;
    for pass in 1..=MAX_PASSES {
        let g = &trace.graph;
        let mut spans = Spans(vec![(0, 0); g.len()]);
        if let Err(e) = simulate(g, hw, SimOptions { seed }, &mut spans) {
            // the first order's own failure is the set's; a re-sorted order that deadlocks is not taken
            return match last_good {
                Some(good) => Ok((good, pass - 1)),
                None => Err(e),
            };
        }
        if pass == MAX_PASSES {
            break;
        }
        // ready: when the last explicit predecessor ended; ties go to the lower node id, as
        // ASTRA-sim's feeder issues them
        let mut ready = vec![0u64; g.len()];
        for e in &g.edges {
            let at = &mut ready[e.after as usize];
            *at = (*at).max(spans.0[e.before as usize].1);
        }
        let mut key = vec![0u64; set.len()];
        for (graph_task, &first_index) in perm.iter().enumerate() {
            key[first_index] = ready[graph_task];
        }
        // an order whose streams wait on each other in a cycle is not taken: keep this one
        let Ok((next, next_perm)) = set.graph_by(|i| (key[i], 0)) else {
            return Ok((trace, pass));
        };
        if next_perm == perm {
            return Ok((trace, pass));
        }
        last_good = Some(std::mem::replace(&mut trace, next));
        perm = next_perm;
    }
    Ok((trace, MAX_PASSES))
}
