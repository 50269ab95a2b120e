//! Building a [`TaskGraph`]: tasks are added in any order, then laid out once by stream.
//!
//! `finish` renumbers tasks so that each (rank, stream) is one contiguous id range and builds the
//! sparse dependency and collective-member indexes the simulation walks.

use super::graph::{
    Collective, CollectiveId, Edge, Gate, GroupId, Op, OpId, StorageOp, Stream, TaskGraph, TaskId, TaskKind, TaskLabel,
    Transfer, TransferId,
};
use crate::ops::CollectiveOp;
use crate::units::SimDuration;

/// Builds a [`TaskGraph`] task by task; `finish` lays out the index arrays.
pub struct GraphBuilder {
    graph: TaskGraph,
    edges: Vec<(TaskId, TaskId)>,
    op_index: crate::fasthash::FxHashMap<Op, OpId>,
}

impl GraphBuilder {
    /// A builder for `ranks` ranks.
    pub fn new(ranks: u32) -> Self {
        GraphBuilder {
            graph: TaskGraph {
                ranks,
                ..TaskGraph::default()
            },
            edges: Vec::new(),
            op_index: Default::default(),
        }
    }

    /// A builder that reserves room for `tasks` tasks up front.
    pub fn with_capacity(ranks: u32, tasks: usize) -> Self {
        let mut b = GraphBuilder::new(ranks);
        let g = &mut b.graph;
        g.task_rank.reserve(tasks);
        g.task_stream.reserve(tasks);
        g.task_kind.reserve(tasks);
        g.task_label.reserve(tasks);
        b
    }

    /// Tasks added so far.
    pub fn len(&self) -> usize {
        self.graph.task_kind.len()
    }

    /// True if no task was added.
    pub fn is_empty(&self) -> bool {
        self.graph.task_kind.is_empty()
    }

    /// Interns an op (identical kernel lists share one id).
    pub fn op(&mut self, op: Op) -> OpId {
        if let Some(&id) = self.op_index.get(&op) {
            return id;
        }
        let id = self.graph.ops.len() as OpId;
        self.graph.ops.push(op.clone());
        self.op_index.insert(op, id);
        id
    }

    /// Adds a rank group.
    pub fn group(&mut self, ranks: Vec<u32>) -> GroupId {
        self.graph.groups.push(ranks);
        (self.graph.groups.len() - 1) as GroupId
    }

    /// Declares a collective; member tasks are added with [`GraphBuilder::task`].
    pub fn collective(&mut self, op: CollectiveOp, group: GroupId, bytes: u64) -> CollectiveId {
        self.graph.collectives.push(Collective {
            op,
            group,
            bytes,
            cross_stage: false,
            userbuffers: false,
            data_parallel: false,
        });
        (self.graph.collectives.len() - 1) as CollectiveId
    }

    /// Marks a collective that runs over a data-parallel group inside a pass (see
    /// [`Collective::data_parallel`]).
    pub fn mark_data_parallel(&mut self, c: CollectiveId) {
        self.graph.collectives[c as usize].data_parallel = true;
    }

    /// Marks a collective that Transformer Engine's userbuffers run (see [`Collective::userbuffers`]).
    pub fn mark_userbuffers(&mut self, c: CollectiveId) {
        self.graph.collectives[c as usize].userbuffers = true;
    }

    /// Marks a collective whose group spans pipeline stages (see [`Collective::cross_stage`]).
    pub fn mark_cross_stage(&mut self, c: CollectiveId) {
        self.graph.collectives[c as usize].cross_stage = true;
    }

    /// Declares a transfer; its send and receive tasks are added with [`GraphBuilder::task`].
    pub fn transfer(&mut self, src: u32, dst: u32, bytes: u64) -> TransferId {
        self.graph.transfers.push(Transfer {
            src,
            dst,
            bytes,
            send: TaskId::MAX,
            recv: TaskId::MAX,
            send_stream: u32::MAX,
            recv_stream: u32::MAX,
        });
        (self.graph.transfers.len() - 1) as TransferId
    }

    /// Sets a transfer's size (a trace may name the receive before the send).
    pub fn set_transfer_bytes(&mut self, x: TransferId, bytes: u64) {
        self.graph.transfers[x as usize].bytes = bytes;
    }

    /// Adds a storage operation and returns its index for [`TaskKind::Storage`].
    pub fn storage(&mut self, rank: u32, bytes: u64, write: bool) -> u32 {
        self.storage_by(rank, bytes, write, true)
    }

    /// Adds a storage operation that, in a generated iteration, `every_replica` does or only
    /// replica 0 does, and returns its index for [`TaskKind::Storage`].
    pub fn storage_by(&mut self, rank: u32, bytes: u64, write: bool, every_replica: bool) -> u32 {
        self.graph.storage.push(StorageOp {
            rank,
            bytes,
            write,
            every_replica,
        });
        (self.graph.storage.len() - 1) as u32
    }

    /// Adds a fixed delay value and returns its index for [`TaskKind::Delay`].
    pub fn delay(&mut self, d: SimDuration) -> u32 {
        self.graph.delays.push(d);
        (self.graph.delays.len() - 1) as u32
    }

    /// Appends a task to the end of `rank`'s `stream`.
    pub fn task(&mut self, rank: u32, stream: Stream, kind: TaskKind, label: TaskLabel) -> TaskId {
        let id = self.graph.task_kind.len() as TaskId;
        self.graph.task_rank.push(rank);
        self.graph.task_stream.push(stream as u8);
        self.graph.task_kind.push(kind);
        self.graph.task_label.push(label);
        id
    }

    /// `after` waits for `before` (across streams).
    pub fn depend(&mut self, before: TaskId, after: TaskId) {
        self.edges.push((before, after));
    }

    /// The kind of an already added task.
    pub fn kind(&self, task: TaskId) -> TaskKind {
        self.graph.task_kind[task as usize]
    }

    /// A task that cannot ever run because its explicit dependencies and stream order form a
    /// cycle (None if there is no cycle). Ids are the ones [`GraphBuilder::task`] returned.
    pub fn find_cycle(&self) -> Option<TaskId> {
        let g = &self.graph;
        let n = g.task_kind.len();
        let streams = g.ranks as usize * Stream::COUNT;
        // stream predecessor of each task: the previous task added to the same (rank, stream)
        let mut last = vec![u32::MAX; streams];
        let mut stream_next = vec![u32::MAX; n];
        let mut indegree = vec![0u32; n];
        for (t, degree) in indegree.iter_mut().enumerate() {
            let s = g.task_rank[t] as usize * Stream::COUNT + g.task_stream[t] as usize;
            if last[s] != u32::MAX {
                stream_next[last[s] as usize] = t as u32;
                *degree += 1;
            }
            last[s] = t as u32;
        }
        let mut succ: Vec<Vec<TaskId>> = vec![Vec::new(); n];
        for &(b, a) in &self.edges {
            succ[b as usize].push(a);
            indegree[a as usize] += 1;
        }
        let mut ready: Vec<TaskId> = (0..n as u32).filter(|&t| indegree[t as usize] == 0).collect();
        let mut seen = 0;
        while let Some(t) = ready.pop() {
            seen += 1;
            let next = stream_next[t as usize];
            for s in succ[t as usize]
                .iter()
                .copied()
                .chain((next != u32::MAX).then_some(next))
            {
                indegree[s as usize] -= 1;
                if indegree[s as usize] == 0 {
                    ready.push(s);
                }
            }
        }
        if seen == n {
            None
        } else {
            (0..n as u32).find(|&t| indegree[t as usize] > 0)
        }
    }

    /// Renumbers tasks in stream order, given each stream's first id.
    fn renumber(&mut self, offsets: Vec<u32>) {
        let g = &mut self.graph;
        let stream_of = |g: &TaskGraph, t: usize| g.task_rank[t] as usize * Stream::COUNT + g.task_stream[t] as usize;
        let n = g.task_kind.len();
        let mut fill = offsets.clone();
        let mut new_id = vec![0u32; n];
        for (t, id) in new_id.iter_mut().enumerate() {
            let s = stream_of(g, t);
            *id = fill[s];
            fill[s] += 1;
        }
        g.task_rank = permute(&g.task_rank, &new_id);
        g.task_stream = permute(&g.task_stream, &new_id);
        g.task_kind = permute(&g.task_kind, &new_id);
        g.task_label = permute(&g.task_label, &new_id);
        g.stream_offsets = offsets;
        for e in &mut self.edges {
            *e = (new_id[e.0 as usize], new_id[e.1 as usize]);
        }
        drop(new_id);
    }

    /// Renumbers tasks so that each (rank, stream) is one contiguous id range, and lays out the
    /// successor and collective-member indexes (counting sorts: no per-stream or per-collective
    /// allocation).
    pub fn finish(mut self) -> TaskGraph {
        let g = &mut self.graph;
        let n = g.task_kind.len();
        let streams = g.ranks as usize * Stream::COUNT;
        let stream_of = |g: &TaskGraph, t: usize| g.task_rank[t] as usize * Stream::COUNT + g.task_stream[t] as usize;

        // new id = start of its stream + position within the stream (appearance order)
        let mut offsets = vec![0u32; streams + 1];
        let mut sorted = true;
        for t in 0..n {
            let s = stream_of(g, t);
            sorted &= t == 0 || stream_of(g, t - 1) <= s;
            offsets[s + 1] += 1;
        }
        prefix_sum(&mut offsets);
        if sorted {
            g.stream_offsets = offsets;
        } else {
            self.renumber(offsets);
        }
        let g = &mut self.graph;

        // edges sorted by the earlier task; gates: the waiting tasks with their predecessor counts
        let mut afters: Vec<TaskId> = self.edges.iter().map(|e| e.1).collect();
        super::radix::sort_by_key(&mut afters, |a| a as u64);
        for a in afters.chunk_by(|x, y| x == y) {
            g.gates.push(Gate {
                task: a[0],
                preds: a.len() as u32,
            });
        }
        drop(afters);
        // (before, after) in lexicographic order: before * (largest after + 1) + after
        let span = self.edges.iter().map(|e| e.1).max().map_or(1, |m| m as u64 + 1);
        super::radix::sort_by_key(&mut self.edges, |(before, after)| before as u64 * span + after as u64);
        g.edges = self
            .edges
            .iter()
            .map(|&(before, after)| {
                let gate = g
                    .gates
                    .binary_search_by_key(&after, |x| x.task)
                    .expect("every waiting task has a gate");
                Edge {
                    before,
                    after,
                    gate: gate as u32,
                    after_stream: stream_of(g, after as usize) as u32,
                }
            })
            .collect();

        // collective members (CSR, in task id order) and the two ends of each transfer
        let mut offsets = vec![0u32; g.collectives.len() + 1];
        for k in &g.task_kind {
            if let TaskKind::Collective(c) = *k {
                offsets[c as usize + 1] += 1;
            }
        }
        prefix_sum(&mut offsets);
        let mut fill = offsets.clone();
        g.collective_tasks = vec![0; *offsets.last().unwrap_or(&0) as usize];
        g.collective_streams = vec![0; g.collective_tasks.len()];
        for (t, k) in g.task_kind.iter().enumerate() {
            match *k {
                TaskKind::Collective(c) => {
                    let at = fill[c as usize] as usize;
                    g.collective_tasks[at] = t as TaskId;
                    g.collective_streams[at] = stream_of(g, t) as u32;
                    fill[c as usize] += 1;
                }
                TaskKind::Send(x) => {
                    let si = stream_of(g, t) as u32;
                    let tr = &mut g.transfers[x as usize];
                    (tr.send, tr.send_stream) = (t as TaskId, si);
                }
                TaskKind::Recv(x) => {
                    let si = stream_of(g, t) as u32;
                    let tr = &mut g.transfers[x as usize];
                    (tr.recv, tr.recv_stream) = (t as TaskId, si);
                }
                _ => {}
            }
        }
        g.collective_offsets = offsets;
        self.graph
    }
}

fn prefix_sum(v: &mut [u32]) {
    for i in 1..v.len() {
        v[i] += v[i - 1];
    }
}

/// `out[new_id[i]] = v[i]`.
fn permute<T: Copy>(v: &[T], new_id: &[u32]) -> Vec<T> {
    let mut out: Vec<T> = v.to_vec();
    for (i, &x) in v.iter().enumerate() {
        out[new_id[i] as usize] = x;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::graph::Phase;

    fn label() -> TaskLabel {
        TaskLabel {
            phase: Phase::Other,
            chunk: 0,
            layer: u16::MAX,
            microbatch: u32::MAX,
        }
    }

    #[test]
    fn tasks_added_out_of_order_are_renumbered_by_stream() {
        let mut b = GraphBuilder::new(2);
        let d = b.delay(crate::units::SimDuration(5));
        let a1 = b.task(1, Stream::Compute, TaskKind::Delay(d), label()); // rank 1
        let a0 = b.task(0, Stream::PipelineSend, TaskKind::Delay(d), label()); // rank 0, stream 2
        let a2 = b.task(0, Stream::Compute, TaskKind::Delay(d), label()); // rank 0, stream 0
        let a3 = b.task(1, Stream::Compute, TaskKind::Delay(d), label());
        b.depend(a2, a1);
        b.depend(a0, a3);
        let g = b.finish();
        // order: (0, compute) = a2, (0, send) = a0, (1, compute) = a1, a3
        assert_eq!(g.stream(0, 0), 0..1);
        assert_eq!(g.stream(0, 2), 1..2);
        assert_eq!(g.stream(1, 0), 2..4);
        assert_eq!(g.task_rank, vec![0, 0, 1, 1]);
        assert_eq!(g.successors(0).collect::<Vec<_>>(), vec![2]); // a2 -> a1
        assert_eq!(g.successors(1).collect::<Vec<_>>(), vec![3]); // a0 -> a3
        assert_eq!((0..4).map(|t| g.predecessors(t)).collect::<Vec<_>>(), vec![0, 0, 1, 1]);
    }
}
