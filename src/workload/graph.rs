//! The task graph: per GPU rank, tasks on in-order streams, with cross-stream dependencies.
//!
//! Storage is columnar and indexed by dense integer ids (a 3072-GPU GPT-1T iteration has tens of
//! millions of tasks). Task ids are numbered so that the tasks of one (rank, stream) form one
//! contiguous id range, in run order. Tasks on one (rank, stream) run in the order they were
//! added; a task also
//! waits for its explicit predecessors. Collectives rendezvous: they start when every member task
//! has started. A send starts its transfer eagerly; the matching receive completes when the data
//! has arrived.

use crate::ops::{CollectiveOp, Kernel};
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
    /// Tensor-parallel collectives overlapped with GEMMs (Megatron-Core's `--tp-comm-overlap`).
    TensorComm = 4,
    /// Context-parallel ring sends and receives (ring attention's K/V exchange).
    ContextComm = 5,
    /// Expert-parallel all-to-alls overlapped with another microbatch's computation
    /// (`ep_comm_overlap`).
    ExpertComm = 6,
}

impl Stream {
    /// Number of streams per rank.
    pub const COUNT: usize = 7;
    /// All streams, in id order.
    pub const ALL: [Stream; 7] = [
        Stream::Compute,
        Stream::DataParallel,
        Stream::PipelineSend,
        Stream::Io,
        Stream::TensorComm,
        Stream::ContextComm,
        Stream::ExpertComm,
    ];
    /// Name used for timeline threads.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Compute => "compute",
            Stream::DataParallel => "data-parallel comm",
            Stream::PipelineSend => "pipeline send",
            Stream::Io => "storage io",
            Stream::TensorComm => "tensor comm",
            Stream::ContextComm => "context comm",
            Stream::ExpertComm => "expert comm",
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
    /// Framework operations the host thread dispatches to launch them (Python calls into PyTorch,
    /// views and allocations included; see [`crate::workload::dispatch`]).
    pub host_ops: u32,
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
    /// The group spans pipeline stages (the optimizer's model-parallel scalars, the embedding
    /// sync): waiting there for the other members is pipeline bubble, not synchronisation.
    pub cross_stage: bool,
    /// Transformer Engine's userbuffers run it beside a GEMM (Megatron-Core's
    /// `--tp-comm-overlap`), holding userbuffers' SMs; otherwise NCCL runs it, with its channels.
    pub userbuffers: bool,
    /// It runs over a data-parallel group inside a pass (ZeRO-3's weight gathers, a data read's
    /// broadcast), for the timeline's labels; the gradient reduction says so by its phase.
    pub data_parallel: bool,
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
    /// Stream index (rank * [`Stream::COUNT`] + stream) of `send`, kept here so that the
    /// transfer's completion reads no per-task array.
    pub send_stream: u32,
    /// Stream index of `recv`.
    pub recv_stream: u32,
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
    /// Stream index of `after` (rank * [`Stream::COUNT`] + stream): the simulation readies it
    /// without reading `after`'s entries in the per-task arrays (two cache misses per edge).
    pub after_stream: u32,
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
    /// Whether every data-parallel replica does the same (data reads) or only replica 0 does it
    /// (checkpoint I/O); see [`crate::workload::replication`].
    pub every_replica: bool,
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
    /// Beside `collective_tasks`: each member's stream index (rank * [`Stream::COUNT`] + stream),
    /// so that a collective's start and end read one short array instead of each member's entry
    /// in the per-task arrays (a cache miss each, members being on different ranks).
    pub collective_streams: Vec<u32>,
    /// Set on representative graphs: the symmetry by which their tasks stand for every rank.
    pub replication: Option<crate::workload::replication::Replication>,
    /// Set on imported Chakra sets: every stream runs its tasks in ready order, not stream order.
    pub pools: Option<Box<Pools>>,
}

/// Ready-order issue, ASTRA-sim's rule for Chakra traces: on every stream of every rank, a task may
/// start once its explicit predecessors are done, whatever its place in the stream, and among the
/// ready tasks of a stream the one of lowest priority value starts first, as long as fewer than
/// the stream's capacity run. The stream order then only breaks no tie (it is a topological order,
/// so the graph's checks still hold).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pools {
    /// Per stream, in [`Stream::ALL`] order: how many of its tasks may run at once (0: no limit).
    pub capacity: [u32; Stream::COUNT],
    /// Per task: its priority among the ready tasks of its stream, lower first (the Chakra node id).
    pub priority: Vec<u64>,
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
        &self.collective_tasks[self.collective_range(c)]
    }
    /// Stream indices (rank * [`Stream::COUNT`] + stream) of the member tasks of a collective, in
    /// the order of [`TaskGraph::collective_tasks`].
    pub fn collective_streams(&self, c: CollectiveId) -> &[u32] {
        &self.collective_streams[self.collective_range(c)]
    }
    fn collective_range(&self, c: CollectiveId) -> std::ops::Range<usize> {
        let c = c as usize;
        self.collective_offsets[c] as usize..self.collective_offsets[c + 1] as usize
    }
}
