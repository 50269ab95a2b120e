//! Writing a task graph as a JSON Lines trace.

use super::format::*;
use crate::config::WorkloadSpec;
use crate::workload::graph::{Phase, TaskGraph, TaskKind};
use std::io::Write;

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
                host_ops: Some(op.host_ops),
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
            stream: StreamName::of(g.task_stream[t]),
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
                    cross_stage: coll.cross_stage,
                    // written only where it differs from what its stream implies
                    userbuffers: (coll.userbuffers != (rec.stream == StreamName::Tensor)).then_some(coll.userbuffers),
                    data_parallel: coll.data_parallel,
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
