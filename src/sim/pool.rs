//! Ready-order streams ("pools"), for graphs that carry [`Pools`] (imported Chakra sets).
//!
//! ASTRA-sim does not run a rank's nodes in a fixed order: its Chakra feeder keeps the nodes whose
//! dependencies are done in a priority queue of lowest node id first (chakra `src/feeder/et_feeder.h`
//! :13-22, `CompareNodes`; `et_feeder.cpp`:41-50, `getNextIssuableNode`; a node joins it when its
//! last `data_deps` parent finishes, :68-85), and whenever one of the rank's nodes finishes
//! (astra-sim `astra-sim/workload/Workload.cc`:344-412, `call`) it walks that queue in order,
//! issuing each node whose resource is free and putting the others back (`Workload.cc`:94-111,
//! `issue_dep_free_nodes`). The resources (`astra-sim/workload/HardwareResource.cc`:76-105,
//! `is_available`): one compute node in flight, one communication (collective or send) in flight,
//! receives never held back (references at astra-sim 4f387bc and chakra 214f2c5).
//!
//! Here every stream of such a graph is a pool: a task joins its stream's heap (lowest priority
//! first, the node id) when its last predecessor finishes; after each event the pools that changed
//! start heap tops while fewer than their capacity run. Tasks complete in any order, so a finished
//! task's successors are found by binary search in the edges (sorted by their earlier task), not by
//! the stream's cursor. Graphs without pools never reach this file: the engine checks one `Option`
//! at the start of a run, of each drain and of each completion.

use super::Sim;
use crate::units::SimTime;
use crate::workload::{Pools, Stream, TaskId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The pools' state during a run.
pub(super) struct PoolState {
    /// Per stream index (rank * streams + stream): how many tasks may run at once.
    capacity: Vec<u32>,
    /// Per stream index: tasks running.
    running: Vec<u32>,
    /// Per stream index: tasks finished.
    finished: Vec<u32>,
    /// Per stream index: the ready tasks not started, lowest (priority, task) first.
    ready: Vec<BinaryHeap<Reverse<(u64, TaskId)>>>,
    /// Per task: when it started (several tasks of a stream may run at once).
    started: Vec<SimTime>,
    /// Stream indices whose heap or capacity changed since the last dispatch.
    changed: Vec<u32>,
    /// Per stream index: whether it is in `changed`.
    marked: Vec<bool>,
}

impl PoolState {
    /// The state of `pools` at time zero: no task ready yet ([`Sim::seed_pools`] fills the heaps).
    pub(super) fn new(g: &crate::workload::TaskGraph, pools: &Pools) -> Self {
        let streams = g.ranks as usize * Stream::COUNT;
        PoolState {
            capacity: (0..streams)
                .map(|si| match pools.capacity[si % Stream::COUNT] {
                    0 => u32::MAX,
                    c => c,
                })
                .collect(),
            running: vec![0; streams],
            finished: vec![0; streams],
            ready: vec![BinaryHeap::new(); streams],
            started: vec![SimTime::ZERO; g.len()],
            changed: Vec::new(),
            marked: vec![false; streams],
        }
    }

    /// Task `t` of stream `si`, of priority `priority`, is ready.
    fn push(&mut self, t: TaskId, si: usize, priority: u64) {
        self.ready[si].push(Reverse((priority, t)));
        if !self.marked[si] {
            self.marked[si] = true;
            self.changed.push(si as u32);
        }
    }

    /// A stream that changed, to dispatch.
    fn next_changed(&mut self) -> Option<usize> {
        let si = self.changed.pop()? as usize;
        self.marked[si] = false;
        Some(si)
    }

    /// The next task stream `si` may start at `now`, if it has a free place and a ready task.
    fn take(&mut self, si: usize, now: SimTime) -> Option<TaskId> {
        if self.running[si] >= self.capacity[si] {
            return None;
        }
        let Reverse((_, t)) = self.ready[si].pop()?;
        self.running[si] += 1;
        self.started[t as usize] = now;
        Some(t)
    }
}

impl Sim<'_> {
    /// At time zero: every task of a pooled graph without predecessors is ready.
    pub(super) fn seed_pools(&mut self) {
        let g = self.g;
        let (Some(p), Some(pools)) = (self.pools.as_mut(), g.pools.as_ref()) else {
            return;
        };
        let mut gates = g.gates.iter().peekable();
        for t in 0..g.len() as TaskId {
            if gates.next_if(|x| x.task == t).is_none() {
                let si = g.task_rank[t as usize] as usize * Stream::COUNT + g.task_stream[t as usize] as usize;
                p.push(t, si, pools.priority[t as usize]);
            }
        }
    }

    /// Starts, on every pool that changed, its ready tasks of lowest priority while it has room.
    pub(super) fn dispatch_pools(&mut self) {
        loop {
            let now = self.queue.now();
            let Some(p) = self.pools.as_mut() else { return };
            let Some(si) = p.next_changed() else { return };
            while let Some(t) = self.pools.as_mut().and_then(|p| p.take(si, now)) {
                // a receive whose data is there completes inside `start`, marking its stream again
                self.start(t, si);
            }
        }
    }

    /// Task `t` of pool stream `si` finished at `now` (counted done by the caller): its place frees
    /// and its successors whose last predecessor it was become ready.
    pub(super) fn pool_complete(&mut self, t: TaskId, si: usize, now: SimTime) {
        let g = self.g;
        let (Some(p), Some(pools)) = (self.pools.as_mut(), g.pools.as_ref()) else {
            unreachable!("pool_complete runs only on pooled graphs");
        };
        p.running[si] -= 1;
        p.finished[si] += 1;
        let start = p.started[t as usize];
        if !p.marked[si] {
            p.marked[si] = true;
            p.changed.push(si as u32);
        }
        let first = g.edges.partition_point(|e| e.before < t);
        for e in g.edges[first..].iter().take_while(|e| e.before == t) {
            let left = &mut self.gate_left[e.gate as usize];
            *left -= 1;
            if *left == 0 {
                p.push(e.after, e.after_stream as usize, pools.priority[e.after as usize]);
            }
        }
        if self.record[si / Stream::COUNT] {
            self.spans.span(t, start, now);
        }
    }

    /// The pool streams that never finished, for the deadlock message, after what may cause it.
    pub(super) fn pool_blocked(&self) -> Vec<String> {
        let Some(p) = self.pools.as_ref() else {
            return Vec::new();
        };
        let g = self.g;
        let why = "issued in ready order (lowest node id first, as ASTRA-sim does), ranks may have started one \
                   group's collectives in different orders";
        std::iter::once(why.to_string())
            .chain(
                (0..p.finished.len())
                    .filter(|&si| p.finished[si] < g.stream_offsets[si + 1] - g.stream_offsets[si])
                    .map(|si| {
                        format!(
                            "rank {} {} stream: {} of {} tasks finished, {} running, {} ready",
                            si / Stream::COUNT,
                            Stream::ALL[si % Stream::COUNT].name(),
                            p.finished[si],
                            g.stream_offsets[si + 1] - g.stream_offsets[si],
                            p.running[si],
                            p.ready[si].len()
                        )
                    }),
            )
            .collect()
    }
}
