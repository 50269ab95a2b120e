//! The task graph: per GPU rank, tasks on in-order streams, with cross-stream dependencies.
//!
//! Storage is columnar and indexed by dense integer ids (a 3072-GPU GPT-1T iteration has tens of
//! millions of tasks). Task ids are numbered so that the tasks of one (rank, stream) form one
//! contiguous id range, in run order. Tasks on one (rank, stream) run in the order they were
//! added; a task also
//! waits for its explicit predecessors. Collectives rendezvous: they start when every member task
//! has started. A send starts its transfer eagerly; the matching receive completes when the data
//! has arrived.

use crate::units::SimDuration;

/// Index of a task.
pub type TaskId = u32;
/// Index of a compute op (a list of kernels) in [`TaskGraph::ops`].
pub type OpId = u32;
/// Index of a collective instance.
pub type CollectiveId = u32;
/// Index of a point-to-point transfer.
pub type TransferId = u32;
/// Index of a rank group.
pub type GroupId = u32;

/// The streams of one GPU; tasks on one stream run in order, streams overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Stream {
    /// Kernels, blocking tensor-parallel collectives and pipeline receives.
    Compute = 0,
    /// Data-parallel gradient reduction.
    DataParallel = 1,
    /// Pipeline sends.
    PipelineSend = 2,
    /// Storage reads and writes that run ahead of compute (data loading).
    Io = 3,
}

impl Stream {
    /// Number of streams per rank.
    pub const COUNT: usize = 4;
    /// All streams, in id order.
    pub const ALL: [Stream; 4] = [Stream::Compute, Stream::DataParallel, Stream::PipelineSend, Stream::Io];
    /// Name used for timeline threads.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Compute => "compute",
            Stream::DataParallel => "data-parallel comm",
            Stream::PipelineSend => "pipeline send",
            Stream::Io => "storage io",
        }
    }
}

/// One GPU kernel, sized; priced by the compute model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `batch` independent (m x k) . (k x n) products in 16-bit precision.
    Gemm {
        /// Independent products (batched GEMM).
        batch: u64,
        /// Rows of the output.
        m: u64,
        /// Columns of the output.
        n: u64,
        /// Reduction dimension.
        k: u64,
    },
    /// A memory-bound kernel that streams this many bytes through HBM.
    Stream {
        /// Bytes read plus bytes written.
        bytes: u64,
    },
    /// A kernel of known work but unknown shape: roofline of FLOPs at the GEMM rate and bytes.
    Generic {
        /// Floating-point operations.
        flops: u64,
        /// Bytes moved through HBM.
        bytes: u64,
    },
    /// A kernel whose duration was measured (traces): taken as is.
    Measured {
        /// Duration in nanoseconds.
        ns: u64,
    },
}

impl Kernel {
    /// Bytes a streaming kernel moves through HBM (other kernels count none).
    pub fn streamed_bytes(&self) -> u64 {
        match *self {
            Kernel::Stream { bytes } => bytes,
            _ => 0,
        }
    }

    /// Floating-point operations (2 per multiply-add; streaming kernels count none).
    pub fn flops(&self) -> f64 {
        match *self {
            Kernel::Gemm { batch, m, n, k } => 2.0 * batch as f64 * m as f64 * n as f64 * k as f64,
            Kernel::Generic { flops, .. } => flops as f64,
            Kernel::Stream { .. } | Kernel::Measured { .. } => 0.0,
        }
    }
}

/// A named list of kernels that one compute task runs back to back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// Short name for timelines ("attention", "mlp", "optimizer", ...).
    pub name: String,
    /// The kernels in order.
    pub kernels: Vec<Kernel>,
}

/// Collective operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollectiveOp {
    /// Sum across the group, result everywhere.
    AllReduce,
    /// Sum, each rank keeps 1/n.
    ReduceScatter,
    /// Gather 1/n from each rank, result everywhere.
    AllGather,
    /// One rank's buffer to all.
    Broadcast,
    /// Each rank sends a distinct 1/n to every other.
    AllToAll,
}

impl CollectiveOp {
    /// Name in nccl-tests spelling.
    pub fn name(self) -> &'static str {
        match self {
            CollectiveOp::AllReduce => "all-reduce",
            CollectiveOp::ReduceScatter => "reduce-scatter",
            CollectiveOp::AllGather => "all-gather",
            CollectiveOp::Broadcast => "broadcast",
            CollectiveOp::AllToAll => "all-to-all",
        }
    }
}

/// One collective instance: every member rank has one task that refers to it.
#[derive(Clone, Debug)]
pub struct Collective {
    /// The operation.
    pub op: CollectiveOp,
    /// The participating ranks.
    pub group: GroupId,
    /// Buffer size per rank, nccl-tests convention (the full vector for all-reduce).
    pub bytes: u64,
}

/// One point-to-point transfer between a send task and a receive task.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    /// Sending rank.
    pub src: u32,
    /// Receiving rank.
    pub dst: u32,
    /// Payload.
    pub bytes: u64,
    /// The send task on `src`.
    pub send: TaskId,
    /// The receive task on `dst`.
    pub recv: TaskId,
}

/// `after` may not start before `before` has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The earlier task.
    pub before: TaskId,
    /// The waiting task.
    pub after: TaskId,
    /// Index of `after` in [`TaskGraph::gates`].
    pub gate: u32,
}

/// A task with explicit predecessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The task.
    pub task: TaskId,
    /// How many tasks it waits for.
    pub preds: u32,
}

/// A read from or a write to the parallel filesystem by one rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageOp {
    /// The rank doing the I/O.
    pub rank: u32,
    /// Bytes.
    pub bytes: u64,
    /// Write (true) or read.
    pub write: bool,
}

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Run an op's kernels.
    Compute(OpId),
    /// Take part in a collective.
    Collective(CollectiveId),
    /// Start a transfer (eager: does not wait for the receiver).
    Send(TransferId),
    /// Wait until a transfer has arrived.
    Recv(TransferId),
    /// Wait a fixed time (index into [`TaskGraph::delays`]).
    Delay(u32),
    /// Read from or write to the filesystem (index into [`TaskGraph::storage`]).
    Storage(u32),
}

/// Training phase of a task, for timelines and plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Phase {
    /// Forward pass of a microbatch.
    Forward,
    /// Backward pass of a microbatch.
    Backward,
    /// Forward pass re-run for activation recomputation.
    Recompute,
    /// Gradient reduction across data-parallel replicas.
    GradReduce,
    /// Optimizer step.
    Optimizer,
    /// Checkpoints and data loading.
    Io,
    /// Anything else (trace tasks).
    Other,
}

impl Phase {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Recompute => "recompute",
            Phase::GradReduce => "grad-reduce",
            Phase::Optimizer => "optimizer",
            Phase::Io => "io",
            Phase::Other => "other",
        }
    }
}

/// Where a task sits in the training step: phase, microbatch, model chunk, layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskLabel {
    /// Phase.
    pub phase: Phase,
    /// Model chunk (interleaved schedule), 0 otherwise.
    pub chunk: u8,
    /// First layer the task belongs to (global index), or `u16::MAX` for none.
    pub layer: u16,
    /// Microbatch, or `u32::MAX` for none.
    pub microbatch: u32,
}

/// A per-rank task graph.
#[derive(Debug, Default)]
pub struct TaskGraph {
    /// Number of ranks.
    pub ranks: u32,
    /// Rank of each task.
    pub task_rank: Vec<u32>,
    /// Stream of each task.
    pub task_stream: Vec<u8>,
    /// Kind of each task.
    pub task_kind: Vec<TaskKind>,
    /// Label of each task.
    pub task_label: Vec<TaskLabel>,
    /// Compute ops, deduplicated.
    pub ops: Vec<Op>,
    /// Fixed delays referenced by [`TaskKind::Delay`].
    pub delays: Vec<SimDuration>,
    /// Storage operations referenced by [`TaskKind::Storage`].
    pub storage: Vec<StorageOp>,
    /// Rank groups.
    pub groups: Vec<Vec<u32>>,
    /// Collective instances.
    pub collectives: Vec<Collective>,
    /// Transfers.
    pub transfers: Vec<Transfer>,
    /// Tasks of rank r on stream s are the ids `stream_offsets[i]..stream_offsets[i + 1]`,
    /// with `i = r * Stream::COUNT + s`, in run order.
    pub stream_offsets: Vec<u32>,
    /// Cross-stream dependencies, sorted by `before` (so each stream's are contiguous, in run order).
    pub edges: Vec<Edge>,
    /// The tasks that have explicit predecessors, sorted by task id; most tasks have none, so
    /// this is stored sparsely instead of a count per task.
    pub gates: Vec<Gate>,
    /// `collective_tasks[collective_offsets[c]..]`: the member tasks of collective c.
    pub collective_offsets: Vec<u32>,
    /// See `collective_offsets`.
    pub collective_tasks: Vec<TaskId>,
}

impl TaskGraph {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.task_kind.len()
    }
    /// True if there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.task_kind.is_empty()
    }
    /// Tasks of `rank` on `stream`, in run order.
    pub fn stream(&self, rank: u32, stream: usize) -> std::ops::Range<TaskId> {
        let i = rank as usize * Stream::COUNT + stream;
        self.stream_offsets[i]..self.stream_offsets[i + 1]
    }
    /// Tasks that wait for `task`.
    pub fn successors(&self, task: TaskId) -> impl Iterator<Item = TaskId> + '_ {
        let from = self.edges.partition_point(|e| e.before < task);
        self.edges[from..]
            .iter()
            .take_while(move |e| e.before == task)
            .map(|e| e.after)
    }
    /// Number of explicit predecessors of `task`.
    pub fn predecessors(&self, task: TaskId) -> u32 {
        match self.gates.binary_search_by_key(&task, |g| g.task) {
            Ok(i) => self.gates[i].preds,
            Err(_) => 0,
        }
    }
    /// Member tasks of a collective.
    pub fn collective_tasks(&self, c: CollectiveId) -> &[TaskId] {
        let c = c as usize;
        &self.collective_tasks[self.collective_offsets[c] as usize..self.collective_offsets[c + 1] as usize]
    }
}

/// Builds a [`TaskGraph`] task by task; `finish` lays out the index arrays.
pub struct GraphBuilder {
    graph: TaskGraph,
    edges: Vec<(TaskId, TaskId)>,
    op_index: std::collections::HashMap<Op, OpId>,
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
        self.graph.collectives.push(Collective { op, group, bytes });
        (self.graph.collectives.len() - 1) as CollectiveId
    }

    /// Declares a transfer; its send and receive tasks are added with [`GraphBuilder::task`].
    pub fn transfer(&mut self, src: u32, dst: u32, bytes: u64) -> TransferId {
        self.graph.transfers.push(Transfer {
            src,
            dst,
            bytes,
            send: TaskId::MAX,
            recv: TaskId::MAX,
        });
        (self.graph.transfers.len() - 1) as TransferId
    }

    /// Sets a transfer's size (a trace may name the receive before the send).
    pub fn set_transfer_bytes(&mut self, x: TransferId, bytes: u64) {
        self.graph.transfers[x as usize].bytes = bytes;
    }

    /// Adds a storage operation and returns its index for [`TaskKind::Storage`].
    pub fn storage(&mut self, rank: u32, bytes: u64, write: bool) -> u32 {
        self.graph.storage.push(StorageOp { rank, bytes, write });
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
        afters.sort_unstable();
        for a in afters.chunk_by(|x, y| x == y) {
            g.gates.push(Gate {
                task: a[0],
                preds: a.len() as u32,
            });
        }
        drop(afters);
        self.edges.sort_unstable();
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
        for (t, k) in g.task_kind.iter().enumerate() {
            match *k {
                TaskKind::Collective(c) => {
                    g.collective_tasks[fill[c as usize] as usize] = t as TaskId;
                    fill[c as usize] += 1;
                }
                TaskKind::Send(x) => g.transfers[x as usize].send = t as TaskId,
                TaskKind::Recv(x) => g.transfers[x as usize].recv = t as TaskId,
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
