//! Chakra execution traces (MLCommons; the `<prefix>.<rank>.et` sets ASTRA-sim reads), imported
//! into clustersim's task graph.
//!
//! Mapping (README, "Chakra traces"):
//! - `COMP_NODE`: a kernel of `num_ops` operations (x2 when `--chakra-ops macs`) over
//!   `tensor_size` elements of `--chakra-element-bytes` bytes, priced by the compute model; a
//!   profiled `duration_micros` is taken as is; `--chakra-compute 1ns` prices every unprofiled
//!   node at 1 ns (ASTRA-sim without its roofline);
//! - `COMM_COLL_NODE`: the collective of its `comm_type` over the ranks of its `pg_name`
//!   (`--comm-groups`; none: every rank), `comm_size` read as ASTRA-sim does (all-reduce: the
//!   per-rank buffer; all-gather: the per-rank input shard, so the gathered size is n times it;
//!   reduce-scatter: the per-rank input; all-to-all: the per-rank send buffer); the k-th
//!   collective of a group on each member rank are one collective;
//! - `COMM_SEND_NODE` / `COMM_RECV_NODE`: a transfer matched by (`comm_src`, `comm_dst`, `comm_tag`);
//! - `MEM_LOAD_NODE` / `MEM_STORE_NODE`: a storage read / write of `tensor_size`;
//! - `data_deps` and `ctrl_deps` both order nodes; invalid and metadata nodes, and compute nodes
//!   with neither ops nor a duration, take no time (their dependencies pass through them).
//!
//! Streams: compute nodes on the compute stream, collectives and sends on one communication
//! stream, receives on their own (ASTRA-sim's rule: one compute and one communication in flight
//! per rank, receives exempt), memory nodes on the I/O stream; each in the order of
//! [`order`] (a topological order of the whole set), and each a pool that runs its tasks in ready
//! order, lowest node id first ([`ISSUE_CAPACITY`]; the engine's `sim::pool`).

mod build;
mod node;
mod order;
pub mod proto;
mod write;

pub use write::encode;

use super::format::*;
use super::read::loader;
use super::Trace;
use crate::error::{Error, Result};
use crate::ops::CollectiveOp;
use crate::workload::Pools;
use node::ChakraNode;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How many tasks of each stream (in [`crate::workload::Stream::ALL`] order) a rank runs at once,
/// ASTRA-sim's resources (astra-sim `astra-sim/workload/HardwareResource.cc`:76-105 at 4f387bc):
/// one compute node; one collective or send (the data-parallel stream holds both); receives
/// (the pipeline-send stream holds them) without limit (0). Memory nodes (the I/O stream) one at a
/// time, where ASTRA-sim makes them share the communication place (`Workload.cc`:181-189): no trace
/// here has one. The tensor-parallel, context-parallel and expert-parallel streams are unused.
pub const ISSUE_CAPACITY: [u32; crate::workload::Stream::COUNT] = [1, 1, 0, 1, 1, 1, 1];

/// What a node's `num_ops` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OpsUnit {
    /// Floating-point operations (ASTRA-sim's reading).
    #[default]
    Flops,
    /// Multiply-accumulates (Symbolic Tensor Graph writes these): 2 FLOPs each.
    Macs,
}

/// How unprofiled compute nodes are priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ComputePricing {
    /// clustersim's compute model on `num_ops` and `tensor_size`.
    #[default]
    Model,
    /// 1 ns each (ASTRA-sim with its roofline off).
    #[value(name = "1ns")]
    Nanosecond,
}

/// How to read a Chakra set.
#[derive(Clone, Debug)]
pub struct ChakraOptions {
    /// `num_ops` unit.
    pub ops: OpsUnit,
    /// Bytes per element of `comm_size` and `tensor_size` (1: read them as bytes, as ASTRA-sim does).
    pub element_bytes: u64,
    /// Pricing of compute nodes without a duration.
    pub compute: ComputePricing,
    /// The `pg_name` -> ranks JSON (`--comm-groups`).
    pub comm_groups: Option<String>,
}

/// Whether `path` names a Chakra set: a directory of `.et` files, a `.et` file, or a prefix whose
/// rank-0 file exists.
pub fn is_chakra(path: &str) -> bool {
    let p = Path::new(path);
    p.is_dir() || path.ends_with(".et") || Path::new(&format!("{path}.0.et")).is_file()
}

/// The rank files of a set, in rank order, and the set's name.
fn rank_files(path: &str) -> Result<(Vec<PathBuf>, String)> {
    let bad = |what: String| Error::Input(format!("error: {path}: {what}"));
    let p = Path::new(path);
    let prefix: PathBuf = if p.is_dir() {
        let mut prefixes: Vec<String> = std::fs::read_dir(p)
            .map_err(|e| bad(format!("cannot list the directory: {e}")))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".0.et").map(str::to_string))
            .collect();
        prefixes.sort();
        match prefixes.as_slice() {
            [one] => p.join(one),
            [] => return Err(bad("no Chakra rank files (`<prefix>.0.et`) in this directory".into())),
            many => {
                return Err(bad(format!(
                    "several Chakra sets here ({}); name one by its prefix",
                    many.join(", ")
                )))
            }
        }
    } else if let Some(stem) = path.strip_suffix(".et") {
        // `set.3.et` names the set `set`
        PathBuf::from(stem.rsplit_once('.').map_or(stem, |(s, _)| s))
    } else {
        PathBuf::from(path)
    };
    let file = |r: usize| PathBuf::from(format!("{}.{r}.et", prefix.display()));
    let files: Vec<PathBuf> = (0..).map(file).take_while(|f| f.is_file()).collect();
    if files.is_empty() {
        return Err(bad(format!(
            "no Chakra rank files: {} does not exist",
            file(0).display()
        )));
    }
    if file(files.len() + 1).is_file() {
        return Err(bad(format!(
            "rank {} is missing: {} does not exist",
            files.len(),
            file(files.len()).display()
        )));
    }
    let name = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::config::is_safe_name(n))
        .unwrap_or("chakra")
        .to_string();
    Ok((files, name))
}

/// The `--comm-groups` JSON: `{"<pg_name>": [ranks]}`.
fn comm_groups(file: &str, ranks: u32) -> Result<BTreeMap<String, Vec<u32>>> {
    let bad = |what: String| Error::Input(format!("error: {file}: {what}"));
    let text =
        crate::config::read_limited(file).map_err(|e| bad(format!("cannot read the communicator groups: {e}")))?;
    let groups: BTreeMap<String, Vec<u32>> =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a {{\"<pg_name>\": [ranks]}} JSON: {e}")))?;
    for (name, members) in &groups {
        if members.is_empty() {
            return Err(bad(format!("group {name:?} has no ranks")));
        }
        if let Some(r) = members.iter().find(|&&r| r >= ranks) {
            return Err(bad(format!(
                "group {name:?}: rank {r} is outside the trace's {ranks} ranks"
            )));
        }
        let mut sorted = members.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!("group {name:?}: rank {} is listed twice", w[0])));
        }
    }
    Ok(groups)
}

/// What clustersim's export records in rank 0's global metadata: the generating workload and the op table.
#[derive(Default)]
struct Recorded {
    workload: Option<crate::config::WorkloadSpec>,
    ops: Vec<OpRecord>,
}

/// Reads one rank's file: its nodes, in file order, and what its metadata records.
fn read_rank(file: &Path, rank: u32) -> Result<(Vec<ChakraNode>, Recorded)> {
    let name = file.display();
    let bytes = crate::config::open_input(file)
        .and_then(|mut f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
        })
        .map_err(|e| Error::Input(format!("error: {name}: cannot read: {e}")))?;
    let bad = |what: String| Error::Input(format!("error: {name}: rank {rank}: {what}"));
    let Some((meta, mut pos)) = proto::next_record(&bytes, 0).map_err(bad)? else {
        return Err(bad("empty file: no global metadata record".into()));
    };
    let meta: proto::GlobalMetadata = proto::decode(meta).map_err(|e| bad(format!("global metadata: {e}")))?;
    let json = |name: &str| match meta.attr.iter().find(|a| a.name == name).and_then(|a| a.value.as_ref()) {
        Some(proto::Value::StringVal(text)) => Some(text.as_str()),
        _ => None,
    };
    let mut recorded = Recorded::default();
    if let Some(text) = json("clustersim_workload") {
        let w = serde_json::from_str(text).map_err(|e| bad(format!("global metadata `clustersim_workload`: {e}")))?;
        recorded.workload = Some(w);
    }
    if let Some(text) = json("clustersim_ops") {
        recorded.ops = serde_json::from_str(text).map_err(|e| bad(format!("global metadata `clustersim_ops`: {e}")))?;
    }
    let mut nodes = Vec::new();
    while let Some((record, next)) = proto::next_record(&bytes, pos).map_err(bad)? {
        let n: proto::Node = proto::decode(record).map_err(|e| bad(format!("record at byte {pos}: {e}")))?;
        nodes.push(node::read_node(&n).map_err(|e| bad(format!("node {}: {e}", n.id)))?);
        pos = next;
    }
    Ok((nodes, recorded))
}

/// A Chakra set read and matched: its records, with the tasks in the order of [`order`].
pub struct ChakraSet {
    path: String,
    header: Header,
    /// Ops and groups.
    shared: Vec<Record>,
    /// Tasks, each rank's in the first order.
    tasks: Vec<TaskRecord>,
    /// Per task: the id of its node.
    node_ids: Vec<u64>,
    /// Written by clustersim's export: its streams' order is the generator's, kept as is.
    native: bool,
}

impl ChakraSet {
    /// Ranks in the set.
    pub fn ranks(&self) -> u32 {
        self.header.ranks
    }
    /// Tasks in the set.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }
    /// Whether clustersim's own export wrote the set (its stream order is kept).
    pub fn is_native(&self) -> bool {
        self.native
    }
    /// Whether the set has no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The task graph, moving the records: each stream's tasks in the first order ([`order`]);
    /// unless clustersim's export wrote the set (its streams' order is the generator's, kept),
    /// every stream a pool ([`Pools`], [`ISSUE_CAPACITY`]) that starts its ready task of lowest
    /// node id first, as ASTRA-sim issues them.
    pub fn into_graph(self) -> Result<Trace> {
        // sorted by rank and stream (stable), the builder keeps this order as the graph's task ids
        let mut perm: Vec<usize> = (0..self.tasks.len()).collect();
        perm.sort_by_key(|&i| (self.tasks[i].rank, self.tasks[i].stream.stream() as u8));
        let priority: Vec<u64> = perm.iter().map(|&i| self.node_ids[i]).collect();
        let mut tasks: Vec<Option<TaskRecord>> = self.tasks.into_iter().map(Some).collect();
        let mut l = loader(&self.path, self.header.ranks);
        for r in self.shared {
            l.record(r)?;
        }
        for &i in &perm {
            l.record(Record::Task(tasks[i].take().expect("each task once")))?;
        }
        let mut trace = l.finish(self.header)?;
        if !self.native {
            trace.graph.pools = Some(Box::new(Pools {
                capacity: ISSUE_CAPACITY,
                priority,
            }));
        }
        Ok(trace)
    }
}

/// Reads a Chakra set (`path`: a prefix, a rank file, or a directory).
pub fn read(path: &str, options: &ChakraOptions) -> Result<ChakraSet> {
    let (files, name) = rank_files(path)?;
    let ranks = files.len() as u32;
    let groups = match &options.comm_groups {
        Some(f) => comm_groups(f, ranks)?,
        None => BTreeMap::new(),
    };
    let mut b = Builder::new(ranks, options, groups);
    let mut workload = None;
    for (r, file) in files.iter().enumerate() {
        let (nodes, recorded) = read_rank(file, r as u32)?;
        if r == 0 {
            workload = recorded.workload;
            b.table_ops = recorded.ops.len() as u32;
            b.records.extend(recorded.ops.into_iter().map(Record::Op));
        }
        b.add_rank(file.display().to_string(), r as u32, nodes)?;
    }
    let (mut shared, mut tasks) = (Vec::new(), Vec::new());
    let (records, node_ids, native) = b.finish()?;
    for r in records {
        match r {
            Record::Task(t) => tasks.push(t),
            other => shared.push(other),
        }
    }
    let header = Header {
        format: "clustersim-trace".into(),
        version: VERSION,
        name,
        ranks,
        workload,
    };
    Ok(ChakraSet {
        path: path.to_string(),
        header,
        shared,
        tasks,
        node_ids,
        native,
    })
}

/// Where a node came from, for messages.
#[derive(Clone, Debug)]
struct Origin {
    file: String,
    rank: u32,
    node: u64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: rank {}: node {}", self.file, self.rank, self.node)
    }
}

/// One collective instance while its members are read.
struct Instance {
    id: u32,
    op: CollectiveOp,
    size: u64,
    members: Vec<u32>,
    first: Origin,
}

/// Collects the trace records rank by rank and matches collectives and transfers across ranks.
struct Builder<'a> {
    ranks: u32,
    options: &'a ChakraOptions,
    groups: BTreeMap<String, Vec<u32>>,
    /// Group key ("" for every rank) -> trace group id.
    group_ids: BTreeMap<String, u32>,
    /// (group key, k-th collective of it) -> the instance.
    instances: HashMap<(String, u32), Instance>,
    /// (src, dst, tag) -> (send, receive), each with its node's index in its rank.
    transfers: BTreeMap<(u32, u32, u64), Ends>,
    /// The ranks read so far.
    ranks_read: Vec<build::RankNodes>,
    records: Vec<Record>,
    next_task: u64,
    /// Per task emitted: its node's id.
    node_of_task: Vec<u64>,
    /// Ops of rank 0's op table (clustersim's export); other compute nodes' ops are numbered after.
    table_ops: u32,
}

/// Where a transfer's send and receive were read.
type Ends = (Option<(Origin, u32)>, Option<(Origin, u32)>);

impl<'a> Builder<'a> {
    fn new(ranks: u32, options: &'a ChakraOptions, groups: BTreeMap<String, Vec<u32>>) -> Self {
        Builder {
            ranks,
            options,
            groups,
            group_ids: BTreeMap::new(),
            instances: HashMap::new(),
            transfers: BTreeMap::new(),
            ranks_read: Vec::new(),
            records: Vec::new(),
            next_task: 0,
            node_of_task: Vec::new(),
            table_ops: 0,
        }
    }

    /// The members of a collective's group.
    fn members(&self, key: &Option<String>, at: &Origin) -> Result<Vec<u32>> {
        match key {
            None => Ok((0..self.ranks).collect()),
            Some(k) => match self.groups.get(k) {
                Some(m) => Ok(m.clone()),
                None => Err(Error::Input(match &self.options.comm_groups {
                    None => format!(
                        "error: {at}: collective on group `pg_name` {k:?}: give the groups with --comm-groups FILE"
                    ),
                    Some(f) => format!("error: {at}: collective on group `pg_name` {k:?}, which {f} does not define"),
                })),
            },
        }
    }

    /// The members of a collective's group, and its trace group id (recorded the first time).
    fn group(&mut self, key: &Option<String>, at: &Origin) -> Result<(u32, Vec<u32>)> {
        let members = self.members(key, at)?;
        let next = self.group_ids.len() as u32;
        let id = *self
            .group_ids
            .entry(key.clone().unwrap_or_default())
            .or_insert_with(|| {
                self.records.push(Record::Group(GroupRecord {
                    id: next,
                    ranks: members.clone(),
                }));
                next
            });
        Ok((id, members))
    }
}
