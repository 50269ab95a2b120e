//! Reading a trace: JSON Lines streamed record by record, or YAML for small hand-written traces;
//! every reference is checked (ranks, groups, ops, collective agreement, matched sends, cycles).

use super::format::*;
use super::Trace;
use crate::error::{Error, Result};
use crate::ops::CollectiveOp;
use crate::units::SimDuration;
use crate::workload::builder::GraphBuilder;
use crate::workload::graph::{Op, Phase, TaskKind, TaskLabel};
use std::collections::HashMap;
use std::io::BufRead;

type TransferKey = (u32, u32, u64);

/// Builds a graph from records, checking every reference (also for imported Chakra sets).
pub(super) struct Loader<'a> {
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

    pub(super) fn record(&mut self, r: Record) -> Result<()> {
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
                let host_ops = op.host_ops.unwrap_or(kernels.len() as u32);
                let id = self.b.op(Op {
                    name: op.name,
                    kernels,
                    host_ops,
                });
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
                let mut sorted = g.ranks.clone();
                sorted.sort_unstable();
                if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                    return Err(self.err(format!("group {}: rank {} is listed twice", g.id, w[0])));
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
                    if c.cross_stage {
                        self.b.mark_cross_stage(cid);
                    }
                    if c.userbuffers.unwrap_or(t.stream == StreamName::Tensor) {
                        self.b.mark_userbuffers(cid);
                    }
                    if c.data_parallel {
                        self.b.mark_data_parallel(cid);
                    }
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
        let stream = t.stream.stream();
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

    pub(super) fn finish(mut self, header: Header) -> Result<Trace> {
        if self.tasks.is_empty() {
            return Err(self.err("the trace has no tasks: nothing to simulate"));
        }
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

/// The most ranks a trace may have: as many GPUs as a hardware file may describe.
const MAX_RANKS: u32 = 1 << 24;

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
    if h.ranks > MAX_RANKS {
        return Err(Error::Input(format!(
            "error: {file}: header `ranks` = {}: at most {MAX_RANKS} ranks (the largest machine a hardware file may describe)",
            h.ranks
        )));
    }
    if !crate::config::is_safe_name(&h.name) {
        return Err(Error::Input(format!(
            "error: {file}: header `name` = {:?}: {}",
            h.name,
            crate::config::SAFE_NAME
        )));
    }
    Ok(())
}

pub(super) fn loader(file: &str, ranks: u32) -> Loader<'_> {
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
    let open =
        || crate::config::open_input(path).map_err(|e| Error::Input(format!("error: {path}: cannot read trace: {e}")));
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        open()?;
        let text = crate::config::read_limited(path).map_err(|e| Error::Input(format!("error: {path}: {e}")))?;
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
    let mut reader = std::io::BufReader::with_capacity(1 << 20, open()?);
    let line_err = |n: usize, e: &dyn std::fmt::Display| Error::Input(format!("error: {path}: line {n}: {e}"));
    let mut line = String::new();
    if !next_line(&mut reader, &mut line).map_err(|e| line_err(1, &e))? {
        return Err(Error::Input(format!("error: {path}: empty trace")));
    }
    let header: Header = serde_json::from_str(&line).map_err(|e| line_err(1, &e))?;
    check_header(path, &header)?;
    let mut l = loader(path, header.ranks);
    for n in 2.. {
        if !next_line(&mut reader, &mut line).map_err(|e| line_err(n, &e))? {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| line_err(n, &e))?;
        l.record(r)?;
    }
    l.finish(header)
}

/// Reads the next line into `line` (without its end), false at the end of the input. A line may
/// have at most [`crate::config::MAX_YAML_BYTES`]: a trace is streamed, but no one record may fill
/// memory (a file without line ends, such as /dev/zero).
fn next_line(reader: &mut impl BufRead, line: &mut String) -> std::io::Result<bool> {
    use std::io::Read;
    let limit = crate::config::MAX_YAML_BYTES;
    line.clear();
    let mut bytes = Vec::new();
    let n = reader.by_ref().take(limit + 1).read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(false);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    } else if n as u64 > limit {
        return Err(std::io::Error::other(format!(
            "longer than the {} MiB a trace line may have",
            limit >> 20
        )));
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    *line = String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(true)
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
