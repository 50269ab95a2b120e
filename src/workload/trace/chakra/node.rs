//! One Chakra node read into what clustersim needs of it: its kind, sizes, peers and
//! dependencies; every attribute clustersim does not use is left out here (README lists them).

use super::proto::{AttributeProto, CollectiveCommType, Node, NodeType, Value};
use crate::ops::CollectiveOp;

/// What a node does, in clustersim's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// Nothing (invalid or metadata nodes, and compute nodes with neither ops nor a duration):
    /// done as soon as its dependencies are.
    Skip,
    /// Computation: `num_ops` operations over a `tensor_size` output, or a profiled duration.
    Compute {
        /// `num_ops`.
        ops: u64,
        /// `tensor_size`.
        tensor: u64,
        /// `duration_micros` (0: not profiled).
        micros: u64,
    },
    /// A collective of `size` (`comm_size`, ASTRA-sim's per-rank convention) on group `group`
    /// (`pg_name`; none: every rank).
    Collective {
        /// The operation.
        op: CollectiveOp,
        /// `comm_size`.
        size: u64,
        /// `pg_name`.
        group: Option<String>,
    },
    /// A send of `size` bytes to `peer` with `tag`.
    Send {
        /// `comm_dst`.
        peer: u32,
        /// `comm_size`.
        size: u64,
        /// `comm_tag`.
        tag: u64,
    },
    /// A receive from `peer` with `tag`.
    Recv {
        /// `comm_src`.
        peer: u32,
        /// `comm_tag`.
        tag: u64,
    },
    /// A remote-memory load or store of `tensor_size`.
    Memory {
        /// `tensor_size`.
        size: u64,
        /// A store (true) or a load.
        store: bool,
    },
}

/// A node as the importer keeps it.
#[derive(Clone, Debug)]
pub struct ChakraNode {
    /// Its id in the rank's file.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// What it does.
    pub kind: NodeKind,
    /// Data and control dependencies together.
    pub deps: Vec<u64>,
    /// What clustersim's own export adds (see `write.rs`); none from other producers.
    pub extra: Option<Extra>,
}

/// The attributes clustersim's Chakra export adds, read back exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    /// Stream, 0 (compute) to 4 (tensor comm).
    pub stream: u8,
    /// Phase name, chunk, layer, microbatch.
    pub label: (String, u8, u16, u32),
    /// The compute node's op: an index into rank 0's op table.
    pub op: Option<u32>,
    /// A delay task's nanoseconds.
    pub delay_ns: Option<u64>,
    /// A collective's nccl-tests size.
    pub bytes: Option<u64>,
    /// A collective spanning pipeline stages.
    pub cross_stage: bool,
    /// A collective over a data-parallel group inside a pass.
    pub data_parallel: bool,
}

fn string<'a>(attrs: &'a [AttributeProto], name: &str) -> Option<&'a str> {
    match attr(attrs, name) {
        Some(Value::StringVal(s)) => Some(s),
        _ => None,
    }
}

/// clustersim's extra attributes of a node, if it has them.
fn extra(a: &[AttributeProto]) -> Result<Option<Extra>, String> {
    let Some(stream) = int(a, "clustersim_stream")? else {
        return Ok(None);
    };
    let bad = |what: &str| format!("attribute `{what}` is malformed");
    let label = string(a, "clustersim_label").ok_or_else(|| bad("clustersim_label"))?;
    let f: Vec<&str> = label.split(',').collect();
    let label = match f.as_slice() {
        [phase, chunk, layer, mb] => (
            phase.to_string(),
            chunk.parse().map_err(|_| bad("clustersim_label"))?,
            layer.parse().map_err(|_| bad("clustersim_label"))?,
            mb.parse().map_err(|_| bad("clustersim_label"))?,
        ),
        _ => return Err(bad("clustersim_label")),
    };
    Ok(Some(Extra {
        stream: u8::try_from(stream)
            .ok()
            .filter(|&s| (s as usize) < crate::workload::Stream::COUNT)
            .ok_or_else(|| bad("clustersim_stream"))?,
        label,
        op: int(a, "clustersim_op")?.map(|v| v as u32),
        delay_ns: int(a, "clustersim_delay_ns")?.map(|v| v as u64),
        bytes: int(a, "clustersim_bytes")?.map(|v| v as u64),
        cross_stage: int(a, "clustersim_cross_stage")?.is_some_and(|v| v != 0),
        data_parallel: int(a, "clustersim_data_parallel")?.is_some_and(|v| v != 0),
    }))
}

fn attr<'a>(attrs: &'a [AttributeProto], name: &str) -> Option<&'a Value> {
    attrs.iter().find(|a| a.name == name).and_then(|a| a.value.as_ref())
}

fn int(attrs: &[AttributeProto], name: &str) -> Result<Option<i128>, String> {
    match attr(attrs, name) {
        None => Ok(None),
        Some(v) => v
            .as_i128()
            .map(Some)
            .ok_or_else(|| format!("attribute `{name}` is not an integer")),
    }
}

fn count(attrs: &[AttributeProto], name: &str) -> Result<u64, String> {
    match int(attrs, name)? {
        None => Ok(0),
        Some(v) => u64::try_from(v).map_err(|_| format!("attribute `{name}` = {v} is negative")),
    }
}

fn required(attrs: &[AttributeProto], name: &str, what: &str) -> Result<i128, String> {
    int(attrs, name)?.ok_or_else(|| format!("{what} without attribute `{name}`"))
}

fn rank(attrs: &[AttributeProto], name: &str, what: &str) -> Result<u32, String> {
    let v = required(attrs, name, what)?;
    u32::try_from(v).map_err(|_| format!("attribute `{name}` = {v} is not a rank"))
}

/// The collective a `comm_type` names, or why it cannot run here.
fn collective(comm_type: i128) -> Result<CollectiveOp, String> {
    let t = i32::try_from(comm_type)
        .ok()
        .and_then(|t| CollectiveCommType::try_from(t).ok())
        .ok_or_else(|| format!("unknown `comm_type` {comm_type}"))?;
    Ok(match t {
        CollectiveCommType::AllReduce => CollectiveOp::AllReduce,
        CollectiveCommType::AllGather => CollectiveOp::AllGather,
        CollectiveCommType::ReduceScatter | CollectiveCommType::ReduceScatterBlock => CollectiveOp::ReduceScatter,
        CollectiveCommType::AllToAll => CollectiveOp::AllToAll,
        CollectiveCommType::Broadcast => CollectiveOp::Broadcast,
        other => {
            return Err(format!(
                "collective {other:?} is not supported (all-reduce, all-gather, reduce-scatter, all-to-all and broadcast are)"
            ))
        }
    })
}

/// Reads what clustersim needs of a decoded node.
pub fn read_node(n: &Node) -> Result<ChakraNode, String> {
    let ty = NodeType::try_from(n.r#type).map_err(|_| format!("unknown node type {}", n.r#type))?;
    let a = &n.attr;
    let kind = match ty {
        NodeType::Invalid | NodeType::Metadata => NodeKind::Skip,
        NodeType::Comp => {
            let (ops, tensor) = (count(a, "num_ops")?, count(a, "tensor_size")?);
            if ops == 0 && n.duration_micros == 0 && int(a, "clustersim_stream")?.is_none() {
                NodeKind::Skip
            } else {
                NodeKind::Compute {
                    ops,
                    tensor,
                    micros: n.duration_micros,
                }
            }
        }
        NodeType::CommColl => {
            let op = collective(required(a, "comm_type", "a collective")?)?;
            let group = match attr(a, "pg_name") {
                None => None,
                Some(Value::StringVal(s)) if s.is_empty() => None,
                Some(Value::StringVal(s)) => Some(s.clone()),
                Some(_) => return Err("attribute `pg_name` is not a string".into()),
            };
            NodeKind::Collective {
                op,
                size: count(a, "comm_size")?,
                group,
            }
        }
        NodeType::CommSend => NodeKind::Send {
            peer: rank(a, "comm_dst", "a send")?,
            size: count(a, "comm_size")?,
            tag: count(a, "comm_tag")?,
        },
        NodeType::CommRecv => NodeKind::Recv {
            peer: rank(a, "comm_src", "a receive")?,
            tag: count(a, "comm_tag")?,
        },
        NodeType::MemLoad | NodeType::MemStore => NodeKind::Memory {
            size: count(a, "tensor_size")?,
            store: ty == NodeType::MemStore,
        },
    };
    let mut deps = n.data_deps.clone();
    deps.extend(&n.ctrl_deps);
    deps.sort_unstable();
    deps.dedup();
    Ok(ChakraNode {
        id: n.id,
        name: n.name.clone(),
        kind,
        deps,
        extra: extra(a)?,
    })
}
