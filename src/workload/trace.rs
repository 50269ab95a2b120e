//! The trace format: any per-rank task graph as a file (version 1).
//!
//! JSON Lines, read as a stream (one record per line, never a whole-file DOM): a header line, then
//! `op`, `group` and `task` records in any order, ops and groups before the tasks that use them.
//!
//! ```text
//! {"format":"clustersim-trace","version":1,"name":"tiny","ranks":2}
//! {"type":"op","id":0,"name":"matmul","kernels":[{"gemm":[1,4096,4096,4096]},{"stream":33554432}]}
//! {"type":"op","id":1,"name":"measured","kernels":[{"measured":1500000}]}
//! {"type":"group","id":0,"ranks":[0,1]}
//! {"type":"task","id":0,"rank":0,"op":0}
//! {"type":"task","id":1,"rank":1,"op":1}
//! {"type":"task","id":2,"rank":0,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576},"deps":[0]}
//! {"type":"task","id":3,"rank":1,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576}}
//! {"type":"task","id":4,"rank":0,"stream":"send","send":{"peer":1,"bytes":4096,"tag":0},"deps":[2]}
//! {"type":"task","id":5,"rank":1,"recv":{"peer":0,"tag":0}}
//! ```
//!
//! - kernels: `gemm: [batch, m, n, k]`, `stream: bytes` (memory-bound), `generic: [flops, bytes]`,
//!   `measured: nanoseconds` (a profiled duration, taken as is);
//! - a task is exactly one of `op` (compute), `collective` (every member has a task with the same
//!   collective `id`, `op`, `group` and `bytes`; it starts when all have started), `send` / `recv`
//!   (matched by sender, receiver and `tag`), `storage` ({bytes, write}: a filesystem I/O by the
//!   task's rank), or `delay_ns`;
//! - `stream` is `compute` (default), `data-parallel`, `send` or `io`; tasks of one rank and stream
//!   run in file order; `deps` lists task ids that must finish first;
//! - optional labels for timelines: `phase`, `microbatch`, `layer`, `chunk`;
//! - the header may carry the generating `workload`, so that a report can give model metrics.
//!
//! A YAML file (ending in `.yaml`/`.yml`) holds the same header fields plus `ops`, `groups` and
//! `tasks` lists, for small hand-written traces.

use super::graph::{CollectiveOp, GraphBuilder, Kernel, Op, Phase, Stream, TaskGraph, TaskKind, TaskLabel};
use crate::config::WorkloadSpec;
use crate::error::{Error, Result};
use crate::units::SimDuration;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// The version this build reads and writes.
pub const VERSION: u32 = 1;

/// First line of a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `clustersim-trace`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Name for reports.
    pub name: String,
    /// Ranks (GPUs) the tasks run on: 0 .. ranks.
    pub ranks: u32,
    /// The workload that generated it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
}

/// One kernel: exactly one of the fields (a map, so that JSON and YAML read alike).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KernelRecord {
    /// [batch, m, n, k].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm: Option<[u64; 4]>,
    /// Bytes streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// [flops, bytes].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<[u64; 2]>,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<u64>,
}

impl KernelRecord {
    fn kernel(&self) -> Option<Kernel> {
        match (self.gemm, self.stream, self.generic, self.measured) {
            (Some([batch, m, n, k]), None, None, None) => Some(Kernel::Gemm { batch, m, n, k }),
            (None, Some(bytes), None, None) => Some(Kernel::Stream { bytes }),
            (None, None, Some([flops, bytes]), None) => Some(Kernel::Generic { flops, bytes }),
            (None, None, None, Some(ns)) => Some(Kernel::Measured { ns }),
            _ => None,
        }
    }

    fn of(k: &Kernel) -> Self {
        match *k {
            Kernel::Gemm { batch, m, n, k } => KernelRecord {
                gemm: Some([batch, m, n, k]),
                ..Default::default()
            },
            Kernel::Stream { bytes } => KernelRecord {
                stream: Some(bytes),
                ..Default::default()
            },
            Kernel::Generic { flops, bytes } => KernelRecord {
                generic: Some([flops, bytes]),
                ..Default::default()
            },
            Kernel::Measured { ns } => KernelRecord {
                measured: Some(ns),
                ..Default::default()
            },
        }
    }
}

/// A compute op.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    /// Id used by tasks.
    pub id: u32,
    /// Name for timelines.
    pub name: String,
    /// Kernels, in order.
    pub kernels: Vec<KernelRecord>,
}

/// A rank group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    /// Id used by collectives.
    pub id: u32,
    /// Member ranks.
    pub ranks: Vec<u32>,
}

/// A task's collective.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CollectiveRecord {
    /// Instance id shared by the member tasks.
    pub id: u64,
    /// Operation (nccl-tests spelling).
    pub op: CollectiveName,
    /// Group id.
    pub group: u32,
    /// Bytes, nccl-tests convention.
    pub bytes: u64,
}

/// Collective operation names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CollectiveName {
    /// all-reduce
    AllReduce,
    /// reduce-scatter
    ReduceScatter,
    /// all-gather
    AllGather,
    /// broadcast
    Broadcast,
    /// all-to-all
    AllToAll,
}

impl From<CollectiveName> for CollectiveOp {
    fn from(c: CollectiveName) -> Self {
        match c {
            CollectiveName::AllReduce => CollectiveOp::AllReduce,
            CollectiveName::ReduceScatter => CollectiveOp::ReduceScatter,
            CollectiveName::AllGather => CollectiveOp::AllGather,
            CollectiveName::Broadcast => CollectiveOp::Broadcast,
            CollectiveName::AllToAll => CollectiveOp::AllToAll,
        }
    }
}

impl From<CollectiveOp> for CollectiveName {
    fn from(c: CollectiveOp) -> Self {
        match c {
            CollectiveOp::AllReduce => CollectiveName::AllReduce,
            CollectiveOp::ReduceScatter => CollectiveName::ReduceScatter,
            CollectiveOp::AllGather => CollectiveName::AllGather,
            CollectiveOp::Broadcast => CollectiveName::Broadcast,
            CollectiveOp::AllToAll => CollectiveName::AllToAll,
        }
    }
}

/// A send.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRecord {
    /// Receiving rank.
    pub peer: u32,
    /// Bytes.
    pub bytes: u64,
    /// Tag matching the receive.
    pub tag: u64,
}

/// A receive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvRecord {
    /// Sending rank.
    pub peer: u32,
    /// Tag matching the send.
    pub tag: u64,
}

/// A storage I/O.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageRecord {
    /// Bytes.
    pub bytes: u64,
    /// Write (true) or read.
    pub write: bool,
}

/// Stream names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StreamName {
    /// Compute stream.
    #[default]
    Compute,
    /// Data-parallel communication stream.
    DataParallel,
    /// Send stream.
    Send,
    /// Storage I/O stream.
    Io,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A task.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Unique id.
    pub id: u64,
    /// Rank it runs on.
    pub rank: u32,
    /// Stream.
    #[serde(default, skip_serializing_if = "is_default")]
    pub stream: StreamName,
    /// Compute: op id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<u32>,
    /// Collective membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collective: Option<CollectiveRecord>,
    /// Send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendRecord>,
    /// Receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<RecvRecord>,
    /// Fixed wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ns: Option<u64>,
    /// A filesystem read or write by this rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageRecord>,
    /// Tasks that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u64>,
    /// Phase label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Microbatch label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microbatch: Option<u32>,
    /// Layer label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u16>,
    /// Model chunk label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u8>,
}

/// One line of a JSON Lines trace after the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// An op.
    Op(OpRecord),
    /// A group.
    Group(GroupRecord),
    /// A task.
    Task(TaskRecord),
}

/// A YAML trace: the header fields and the records as lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlTrace {
    format: String,
    version: u32,
    name: String,
    ranks: u32,
    #[serde(default)]
    workload: Option<WorkloadSpec>,
    #[serde(default)]
    ops: Vec<OpRecord>,
    #[serde(default)]
    groups: Vec<GroupRecord>,
    #[serde(default)]
    tasks: Vec<TaskRecord>,
}

fn phase_name(p: Phase) -> &'static str {
    p.name()
}

fn phase_of(name: &str) -> Phase {
    match name {
        "forward" => Phase::Forward,
        "backward" => Phase::Backward,
        "recompute" => Phase::Recompute,
        "grad-reduce" => Phase::GradReduce,
        "optimizer" => Phase::Optimizer,
        "io" => Phase::Io,
        _ => Phase::Other,
    }
}

/// A loaded trace.
pub struct Trace {
    /// Its header.
    pub header: Header,
    /// The task graph.
    pub graph: TaskGraph,
}

type TransferKey = (u32, u32, u64);

/// Builds a graph from records, checking every reference.
struct Loader<'a> {
    file: &'a str,
    ranks: u32,
    b: GraphBuilder,
    ops: HashMap<u32, u32>,
    groups: HashMap<u32, (u32, Vec<u32>)>,
    tasks: HashMap<u64, u32>,
    trace_id: Vec<u64>,
    deps: Vec<(u64, u64)>,
    /// trace collective id -> (graph collective id, its record, member ranks so far, first task id)
    collectives: HashMap<u64, (u32, CollectiveRecord, Vec<u32>, u64)>,
    /// (sender, receiver, tag) -> (graph transfer id, send task id, receive task id)
    transfers: HashMap<TransferKey, (u32, Option<u64>, Option<u64>)>,
}

impl<'a> Loader<'a> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Input(format!("error: {}: {what}", self.file))
    }

    fn record(&mut self, r: Record) -> Result<()> {
        match r {
            Record::Op(op) => {
                let mut kernels = Vec::with_capacity(op.kernels.len());
                for (i, k) in op.kernels.iter().enumerate() {
                    kernels.push(k.kernel().ok_or_else(|| {
                        self.err(format!(
                            "op {}: kernel {i} needs exactly one of `gemm`, `stream`, `generic`, `measured`",
                            op.id
                        ))
                    })?);
                }
                let id = self.b.op(Op { name: op.name, kernels });
                if self.ops.insert(op.id, id).is_some() {
                    return Err(self.err(format!("op {} is defined twice", op.id)));
                }
            }
            Record::Group(g) => {
                if let Some(&r) = g.ranks.iter().find(|&&r| r >= self.ranks) {
                    return Err(self.err(format!(
                        "group {}: rank {r} is outside the trace's {} ranks",
                        g.id, self.ranks
                    )));
                }
                let id = self.b.group(g.ranks.clone());
                if self.groups.insert(g.id, (id, g.ranks)).is_some() {
                    return Err(self.err(format!("group {} is defined twice", g.id)));
                }
            }
            Record::Task(t) => self.task(t)?,
        }
        Ok(())
    }

    fn task(&mut self, t: TaskRecord) -> Result<()> {
        let id = t.id;
        let bad = |what: String| Error::Input(format!("error: {}: task {id}: {what}", self.file));
        if t.rank >= self.ranks {
            return Err(bad(format!(
                "rank {} is outside the trace's {} ranks (0..{})",
                t.rank, self.ranks, self.ranks
            )));
        }
        let kinds = t.op.is_some() as u8
            + t.collective.is_some() as u8
            + t.send.is_some() as u8
            + t.recv.is_some() as u8
            + t.delay_ns.is_some() as u8
            + t.storage.is_some() as u8;
        if kinds != 1 {
            return Err(bad(
                "needs exactly one of `op`, `collective`, `send`, `recv`, `delay_ns`, `storage`".into(),
            ));
        }
        let kind = if let Some(op) = t.op {
            TaskKind::Compute(*self.ops.get(&op).ok_or_else(|| bad(format!("unknown op {op}")))?)
        } else if let Some(c) = t.collective {
            let (group, members) = self
                .groups
                .get(&c.group)
                .cloned()
                .ok_or_else(|| bad(format!("unknown group {}", c.group)))?;
            if !members.contains(&t.rank) {
                return Err(bad(format!(
                    "rank {} takes part in collective {} but is not in its group {}",
                    t.rank, c.id, c.group
                )));
            }
            let entry = match self.collectives.get_mut(&c.id) {
                Some(e) => e,
                None => {
                    let cid = self.b.collective(c.op.into(), group, c.bytes);
                    self.collectives.entry(c.id).or_insert((cid, c, Vec::new(), id))
                }
            };
            if entry.1 != c {
                return Err(bad(format!(
                    "collective {} disagrees with task {}: {} on group {} of {} bytes here, {} on group {} of {} bytes there",
                    c.id,
                    entry.3,
                    CollectiveOp::from(c.op).name(),
                    c.group,
                    c.bytes,
                    CollectiveOp::from(entry.1.op).name(),
                    entry.1.group,
                    entry.1.bytes
                )));
            }
            if entry.2.contains(&t.rank) {
                return Err(bad(format!("rank {} joins collective {} twice", t.rank, c.id)));
            }
            entry.2.push(t.rank);
            TaskKind::Collective(entry.0)
        } else if let Some(s) = t.send {
            if s.peer >= self.ranks {
                return Err(bad(format!(
                    "send to rank {} outside the trace's {} ranks",
                    s.peer, self.ranks
                )));
            }
            let key = (t.rank, s.peer, s.tag);
            let entry = match self.transfers.get_mut(&key) {
                Some(e) => e,
                None => {
                    let x = self.b.transfer(t.rank, s.peer, s.bytes);
                    self.transfers.entry(key).or_insert((x, None, None))
                }
            };
            if entry.1.is_some() {
                return Err(bad(format!(
                    "a second send from rank {} to rank {} with tag {}",
                    t.rank, s.peer, s.tag
                )));
            }
            entry.1 = Some(id);
            let x = entry.0;
            self.b.set_transfer_bytes(x, s.bytes);
            TaskKind::Send(x)
        } else if let Some(r) = t.recv {
            if r.peer >= self.ranks {
                return Err(bad(format!(
                    "receive from rank {} outside the trace's {} ranks",
                    r.peer, self.ranks
                )));
            }
            let key = (r.peer, t.rank, r.tag);
            let entry = match self.transfers.get_mut(&key) {
                Some(e) => e,
                None => {
                    let x = self.b.transfer(r.peer, t.rank, 0);
                    self.transfers.entry(key).or_insert((x, None, None))
                }
            };
            if entry.2.is_some() {
                return Err(bad(format!(
                    "a second receive on rank {} from rank {} with tag {}",
                    t.rank, r.peer, r.tag
                )));
            }
            entry.2 = Some(id);
            TaskKind::Recv(entry.0)
        } else if let Some(st) = t.storage {
            TaskKind::Storage(self.b.storage(t.rank, st.bytes, st.write))
        } else {
            TaskKind::Delay(self.b.delay(SimDuration(t.delay_ns.unwrap_or(0))))
        };
        let stream = match t.stream {
            StreamName::Compute => Stream::Compute,
            StreamName::DataParallel => Stream::DataParallel,
            StreamName::Send => Stream::PipelineSend,
            StreamName::Io => Stream::Io,
        };
        let label = TaskLabel {
            phase: t.phase.as_deref().map(phase_of).unwrap_or(Phase::Other),
            chunk: t.chunk.unwrap_or(0),
            layer: t.layer.unwrap_or(u16::MAX),
            microbatch: t.microbatch.unwrap_or(u32::MAX),
        };
        let task = self.b.task(t.rank, stream, kind, label);
        if self.tasks.insert(id, task).is_some() {
            return Err(bad("the id is used twice".into()));
        }
        self.trace_id.push(id);
        self.deps.extend(t.deps.iter().map(|&d| (d, id)));
        Ok(())
    }

    fn finish(mut self, header: Header) -> Result<Trace> {
        for &(dep, task) in &self.deps {
            let before = *self
                .tasks
                .get(&dep)
                .ok_or_else(|| self.err(format!("task {task}: depends on task {dep}, which does not exist")))?;
            let after = self.tasks[&task];
            self.b.depend(before, after);
        }
        let mut collectives: Vec<_> = self.collectives.iter().collect();
        collectives.sort_by_key(|(id, _)| **id);
        for (id, (_, c, members, first)) in collectives {
            let group = &self.groups[&c.group].1;
            if members.len() != group.len() {
                let missing: Vec<u32> = group.iter().copied().filter(|r| !members.contains(r)).collect();
                return Err(self.err(format!(
                    "task {first}: collective {id} on group {} has no task on rank(s) {missing:?}, so it can never start",
                    c.group
                )));
            }
        }
        let mut transfers: Vec<_> = self.transfers.iter().collect();
        transfers.sort_by_key(|(k, _)| **k);
        for ((src, dst, tag), (_, send, recv)) in transfers {
            match (send, recv) {
                (Some(s), None) => {
                    return Err(self.err(format!(
                        "task {s}: send from rank {src} to rank {dst} with tag {tag} has no matching receive"
                    )))
                }
                (None, Some(r)) => {
                    return Err(self.err(format!(
                        "task {r}: receive on rank {dst} from rank {src} with tag {tag} has no matching send"
                    )))
                }
                _ => {}
            }
        }
        if let Some(t) = self.b.find_cycle() {
            return Err(self.err(format!(
                "task {}: its dependencies (with the order of tasks on each stream) form a cycle, so it can never run",
                self.trace_id[t as usize]
            )));
        }
        Ok(Trace {
            header,
            graph: self.b.finish(),
        })
    }
}

fn check_header(file: &str, h: &Header) -> Result<()> {
    if h.format != "clustersim-trace" {
        return Err(Error::Input(format!(
            "error: {file}: not a clustersim trace (format {:?}, expected \"clustersim-trace\")",
            h.format
        )));
    }
    if h.version != VERSION {
        return Err(Error::Input(format!(
            "error: {file}: trace version {} is not supported; this build reads version {VERSION}",
            h.version
        )));
    }
    if h.ranks == 0 {
        return Err(Error::Input(format!("error: {file}: a trace needs at least one rank")));
    }
    Ok(())
}

fn loader(file: &str, ranks: u32) -> Loader<'_> {
    Loader {
        file,
        ranks,
        b: GraphBuilder::new(ranks),
        ops: HashMap::new(),
        groups: HashMap::new(),
        tasks: HashMap::new(),
        trace_id: Vec::new(),
        deps: Vec::new(),
        collectives: HashMap::new(),
        transfers: HashMap::new(),
    }
}

/// Reads a trace file: JSON Lines, streamed; or YAML (by extension) for small traces.
pub fn read(path: &str) -> Result<Trace> {
    let open = || std::fs::File::open(path).map_err(|e| Error::Input(format!("error: {path}: cannot read trace: {e}")));
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        let text = std::io::read_to_string(open()?).map_err(|e| Error::Input(format!("error: {path}: {e}")))?;
        let y: YamlTrace = crate::config::Document::parse(path, &text)?.deserialize()?;
        let header = Header {
            format: y.format,
            version: y.version,
            name: y.name,
            ranks: y.ranks,
            workload: y.workload,
        };
        check_header(path, &header)?;
        let mut l = loader(path, header.ranks);
        for r in y
            .ops
            .into_iter()
            .map(Record::Op)
            .chain(y.groups.into_iter().map(Record::Group))
            .chain(y.tasks.into_iter().map(Record::Task))
        {
            l.record(r)?;
        }
        return l.finish(header);
    }
    let mut lines = std::io::BufReader::with_capacity(1 << 20, open()?).lines();
    let line_err = |n: usize, e: &dyn std::fmt::Display| Error::Input(format!("error: {path}: line {n}: {e}"));
    let first = lines
        .next()
        .ok_or_else(|| Error::Input(format!("error: {path}: empty trace")))?
        .map_err(|e| line_err(1, &e))?;
    let header: Header = serde_json::from_str(&first).map_err(|e| line_err(1, &e))?;
    check_header(path, &header)?;
    let mut l = loader(path, header.ranks);
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| line_err(i + 2, &e))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| line_err(i + 2, &e))?;
        l.record(r)?;
    }
    l.finish(header)
}

/// Writes a task graph as a JSON Lines trace (tasks in id order, so reading it back gives the
/// identical graph).
pub fn write(w: &mut dyn Write, name: &str, workload: Option<&WorkloadSpec>, g: &TaskGraph) -> std::io::Result<()> {
    let header = Header {
        format: "clustersim-trace".into(),
        version: VERSION,
        name: name.into(),
        ranks: g.ranks,
        workload: workload.cloned(),
    };
    serde_json::to_writer(&mut *w, &header)?;
    writeln!(w)?;
    for (id, op) in g.ops.iter().enumerate() {
        let kernels = op.kernels.iter().map(KernelRecord::of).collect();
        serde_json::to_writer(
            &mut *w,
            &Record::Op(OpRecord {
                id: id as u32,
                name: op.name.clone(),
                kernels,
            }),
        )?;
        writeln!(w)?;
    }
    for (id, ranks) in g.groups.iter().enumerate() {
        serde_json::to_writer(
            &mut *w,
            &Record::Group(GroupRecord {
                id: id as u32,
                ranks: ranks.clone(),
            }),
        )?;
        writeln!(w)?;
    }
    let mut deps: Vec<Vec<u64>> = vec![Vec::new(); g.len()];
    for e in &g.edges {
        deps[e.after as usize].push(e.before as u64);
    }
    for (t, task_deps) in deps.iter_mut().enumerate() {
        let label = g.task_label[t];
        let mut rec = TaskRecord {
            id: t as u64,
            rank: g.task_rank[t],
            stream: match g.task_stream[t] {
                0 => StreamName::Compute,
                1 => StreamName::DataParallel,
                2 => StreamName::Send,
                _ => StreamName::Io,
            },
            deps: std::mem::take(task_deps),
            phase: (label.phase != Phase::Other).then(|| phase_name(label.phase).to_string()),
            microbatch: (label.microbatch != u32::MAX).then_some(label.microbatch),
            layer: (label.layer != u16::MAX).then_some(label.layer),
            chunk: (label.chunk != 0).then_some(label.chunk),
            ..TaskRecord::default()
        };
        match g.task_kind[t] {
            TaskKind::Compute(op) => rec.op = Some(op),
            TaskKind::Collective(c) => {
                let coll = &g.collectives[c as usize];
                rec.collective = Some(CollectiveRecord {
                    id: c as u64,
                    op: coll.op.into(),
                    group: coll.group,
                    bytes: coll.bytes,
                });
            }
            TaskKind::Send(x) => {
                let tr = g.transfers[x as usize];
                rec.send = Some(SendRecord {
                    peer: tr.dst,
                    bytes: tr.bytes,
                    tag: x as u64,
                });
            }
            TaskKind::Recv(x) => {
                let tr = g.transfers[x as usize];
                rec.recv = Some(RecvRecord {
                    peer: tr.src,
                    tag: x as u64,
                });
            }
            TaskKind::Delay(d) => rec.delay_ns = Some(g.delays[d as usize].0),
            TaskKind::Storage(x) => {
                let op = g.storage[x as usize];
                rec.storage = Some(StorageRecord {
                    bytes: op.bytes,
                    write: op.write,
                });
            }
        }
        serde_json::to_writer(&mut *w, &Record::Task(rec))?;
        writeln!(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the README and the module docs, as JSON Lines and as YAML.
    #[test]
    fn documented_example_reads_in_both_forms() {
        let jsonl = r#"{"format":"clustersim-trace","version":1,"name":"tiny","ranks":2}
{"type":"op","id":0,"name":"matmul","kernels":[{"gemm":[1,4096,4096,4096]},{"stream":33554432}]}
{"type":"op","id":1,"name":"profiled","kernels":[{"measured":1500000}]}
{"type":"group","id":0,"ranks":[0,1]}
{"type":"task","id":0,"rank":0,"op":0}
{"type":"task","id":1,"rank":1,"op":1}
{"type":"task","id":2,"rank":0,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576},"deps":[0]}
{"type":"task","id":3,"rank":1,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576}}
{"type":"task","id":4,"rank":0,"stream":"send","send":{"peer":1,"bytes":4096,"tag":0},"deps":[2]}
{"type":"task","id":5,"rank":1,"recv":{"peer":0,"tag":0}}
"#;
        let yaml = r#"
format: clustersim-trace
version: 1
name: tiny
ranks: 2
ops:
  - { id: 0, name: matmul, kernels: [{ gemm: [1, 4096, 4096, 4096] }, { stream: 33554432 }] }
  - { id: 1, name: profiled, kernels: [{ measured: 1500000 }] }
groups: [{ id: 0, ranks: [0, 1] }]
tasks:
  - { id: 0, rank: 0, op: 0 }
  - { id: 1, rank: 1, op: 1 }
  - { id: 2, rank: 0, collective: { id: 0, op: all-reduce, group: 0, bytes: 1048576 }, deps: [0] }
  - { id: 3, rank: 1, collective: { id: 0, op: all-reduce, group: 0, bytes: 1048576 } }
  - { id: 4, rank: 0, stream: send, send: { peer: 1, bytes: 4096, tag: 0 }, deps: [2] }
  - { id: 5, rank: 1, recv: { peer: 0, tag: 0 } }
"#;
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("t.jsonl", jsonl), ("t.yaml", yaml)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let t = read(path.to_str().unwrap()).unwrap();
            assert_eq!(t.graph.len(), 6, "{name}");
            assert_eq!(t.graph.collectives.len(), 1);
            assert_eq!(t.graph.transfers.len(), 1);
            assert_eq!(t.graph.transfers[0].bytes, 4096);
            assert_eq!(t.graph.edges.len(), 2);
        }
    }
}
