//! Writing a task graph as a Chakra set (`trace export --format chakra`), so that ASTRA-sim users
//! can run clustersim's generated workloads, with clustersim's own facts as extra attributes that
//! ASTRA-sim ignores and clustersim reads back exactly:
//!
//! - every node: `clustersim_stream` (the stream, 0 compute .. 4 tensor comm; nodes are written in
//!   stream order) and `clustersim_label` ("phase,chunk,layer,microbatch");
//! - compute nodes: `num_ops` (FLOPs) and `tensor_size` (bytes) for other readers, and
//!   `clustersim_op`, an index into rank 0's op table; delay tasks are compute nodes with
//!   `duration_micros` and `clustersim_delay_ns`;
//! - collectives: `comm_size` in ASTRA-sim's convention, `pg_name` = group id + 1 (ASTRA-sim's ids
//!   start at 1), `clustersim_bytes` (the nccl-tests size), `clustersim_cross_stage` and
//!   `clustersim_data_parallel`;
//! - sends and receives: `comm_tag` = the transfer's id; storage: memory load/store nodes;
//! - rank 0's global metadata: `clustersim_ops` (every op with its kernels and host operations, as
//!   the native trace format writes them, JSON) and `clustersim_workload` (the generating
//!   workload, JSON), so that the report of a run of the set is the generator's.

use super::proto::{AttributeProto, GlobalMetadata, Node, NodeType, Value};
use crate::config::WorkloadSpec;
use crate::ops::CollectiveOp;
use crate::workload::graph::{TaskGraph, TaskKind};
use crate::workload::trace::format::{phase_name, KernelRecord, OpRecord};
use prost::Message;

fn attr(name: &str, value: Value) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        doc_string: String::new(),
        value: Some(value),
    }
}

/// The comm_type of a collective.
fn comm_type(op: CollectiveOp) -> i64 {
    match op {
        CollectiveOp::AllReduce => 0,
        CollectiveOp::AllGather => 2,
        CollectiveOp::Broadcast => 5,
        CollectiveOp::AllToAll => 6,
        CollectiveOp::ReduceScatter => 7,
    }
}

/// The node of task `t`.
fn node(g: &TaskGraph, t: usize, deps: Vec<u64>) -> Node {
    let label = g.task_label[t];
    let mut attrs = vec![
        attr("clustersim_stream", Value::Int32Val(g.task_stream[t] as i32)),
        attr(
            "clustersim_label",
            Value::StringVal(format!(
                "{},{},{},{}",
                phase_name(label.phase),
                label.chunk,
                label.layer,
                label.microbatch
            )),
        ),
    ];
    let mut n = Node {
        id: t as u64,
        data_deps: deps,
        ..Default::default()
    };
    let ty = match g.task_kind[t] {
        TaskKind::Compute(op_id) => {
            let op = &g.ops[op_id as usize];
            n.name = op.name.clone();
            let flops: f64 = op.kernels.iter().map(|k| k.flops()).sum();
            let bytes: u64 = op.kernels.iter().map(|k| k.streamed_bytes()).sum();
            attrs.extend([
                attr("num_ops", Value::Int64Val(flops as i64)),
                attr("tensor_size", Value::Uint64Val(bytes)),
                attr("clustersim_op", Value::Int64Val(op_id as i64)),
            ]);
            NodeType::Comp
        }
        TaskKind::Delay(d) => {
            let ns = g.delays[d as usize].0;
            n.name = "delay".into();
            n.duration_micros = ns.div_ceil(1000);
            attrs.push(attr("clustersim_delay_ns", Value::Int64Val(ns as i64)));
            NodeType::Comp
        }
        TaskKind::Collective(c) => {
            let coll = &g.collectives[c as usize];
            let members = g.groups[coll.group as usize].len() as u64;
            // ASTRA-sim's all-gather size is the per-rank input shard
            let size = if coll.op == CollectiveOp::AllGather {
                coll.bytes / members.max(1)
            } else {
                coll.bytes
            };
            n.name = coll.op.name().into();
            attrs.extend([
                attr("comm_type", Value::Int64Val(comm_type(coll.op))),
                attr("comm_size", Value::Int64Val(size as i64)),
                attr("pg_name", Value::StringVal((coll.group + 1).to_string())),
                attr("clustersim_bytes", Value::Int64Val(coll.bytes as i64)),
                attr("clustersim_cross_stage", Value::BoolVal(coll.cross_stage)),
                attr("clustersim_data_parallel", Value::BoolVal(coll.data_parallel)),
            ]);
            NodeType::CommColl
        }
        TaskKind::Send(x) => {
            let tr = g.transfers[x as usize];
            n.name = "send".into();
            attrs.extend([
                attr("comm_dst", Value::Int32Val(tr.dst as i32)),
                attr("comm_size", Value::Int64Val(tr.bytes as i64)),
                attr("comm_tag", Value::Int32Val(x as i32)),
            ]);
            NodeType::CommSend
        }
        TaskKind::Recv(x) => {
            let tr = g.transfers[x as usize];
            n.name = "recv".into();
            attrs.extend([
                attr("comm_src", Value::Int32Val(tr.src as i32)),
                attr("comm_size", Value::Int64Val(tr.bytes as i64)),
                attr("comm_tag", Value::Int32Val(x as i32)),
            ]);
            NodeType::CommRecv
        }
        TaskKind::Storage(x) => {
            let op = g.storage[x as usize];
            n.name = if op.write { "store" } else { "load" }.into();
            attrs.push(attr("tensor_size", Value::Uint64Val(op.bytes)));
            if op.write {
                NodeType::MemStore
            } else {
                NodeType::MemLoad
            }
        }
    };
    n.r#type = ty as i32;
    n.attr = attrs;
    n
}

/// The bytes of every rank's file, in rank order, and the communicator groups as JSON.
pub fn encode(g: &TaskGraph, workload: Option<&WorkloadSpec>) -> (Vec<Vec<u8>>, String) {
    let mut deps: Vec<Vec<u64>> = vec![Vec::new(); g.len()];
    for e in &g.edges {
        deps[e.after as usize].push(e.before as u64);
    }
    let mut files: Vec<Vec<u8>> = vec![Vec::new(); g.ranks as usize];
    for (r, file) in files.iter_mut().enumerate() {
        let mut meta = GlobalMetadata {
            version: "0.0.4".into(),
            attr: Vec::new(),
        };
        if r == 0 {
            let ops: Vec<OpRecord> = g
                .ops
                .iter()
                .enumerate()
                .map(|(id, op)| OpRecord {
                    id: id as u32,
                    name: op.name.clone(),
                    kernels: op.kernels.iter().map(KernelRecord::of).collect(),
                    host_ops: Some(op.host_ops),
                })
                .collect();
            let json = serde_json::to_string(&ops).expect("ops serialise");
            meta.attr.push(attr("clustersim_ops", Value::StringVal(json)));
            if let Some(w) = workload {
                let json = serde_json::to_string(w).expect("a workload serialises");
                meta.attr.push(attr("clustersim_workload", Value::StringVal(json)));
            }
        }
        meta.encode_length_delimited(file).expect("a Vec grows");
    }
    // tasks are numbered stream by stream, so each rank's file lists each stream in order
    for (t, task_deps) in deps.into_iter().enumerate() {
        let n = node(g, t, task_deps);
        n.encode_length_delimited(&mut files[g.task_rank[t] as usize])
            .expect("a Vec grows");
    }
    let groups: std::collections::BTreeMap<String, &Vec<u32>> = g
        .groups
        .iter()
        .enumerate()
        .map(|(i, r)| ((i + 1).to_string(), r))
        .collect();
    (files, serde_json::to_string(&groups).expect("groups serialise"))
}
