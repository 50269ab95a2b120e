//! From every rank's nodes to trace records: collectives matched across ranks (the k-th of a group
//! on each member, in file order), transfers by (sender, receiver, tag), the ranks ordered
//! together ([`order`]), then one task per node in that order.

use super::node::{ChakraNode, NodeKind};
use super::order::{self, RankGraph};
use super::{Builder, ComputePricing, Instance, OpsUnit, Origin};
use crate::error::{Error, Result};
use crate::ops::{CollectiveOp, Kernel};
use crate::workload::trace::format::*;
use std::collections::HashMap;

/// One rank as read.
pub(super) struct RankNodes {
    file: String,
    nodes: Vec<ChakraNode>,
    index: HashMap<u64, u32>,
    /// Per node: its collective instance.
    instance: Vec<Option<u32>>,
}

fn input(msg: String) -> Error {
    Error::Input(msg)
}

impl Builder<'_> {
    /// Adds one rank's nodes (from `file`), matching its collectives and transfers with the ranks before.
    pub(super) fn add_rank(&mut self, file: String, rank: u32, nodes: Vec<ChakraNode>) -> Result<()> {
        let at = |node: u64| Origin {
            file: file.clone(),
            rank,
            node,
        };
        let index = order::index(nodes.iter().map(|n| n.id))
            .map_err(|id| input(format!("error: {}: the id is used twice", at(id))))?;
        let mut instance = vec![None; nodes.len()];
        let mut nth: HashMap<String, u32> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            if let Some(d) = n.deps.iter().find(|d| !index.contains_key(d)) {
                return Err(input(format!(
                    "error: {}: depends on node {d}, which the file does not have",
                    at(n.id)
                )));
            }
            match &n.kind {
                NodeKind::Collective { op, size, group } => {
                    let members = self.members(group, &at(n.id))?;
                    if !members.contains(&rank) {
                        return Err(input(format!(
                            "error: {}: collective on group {}, which does not include rank {rank}",
                            at(n.id),
                            group_name(group)
                        )));
                    }
                    let key = group.clone().unwrap_or_default();
                    let k = nth.entry(key.clone()).or_insert(0);
                    let next = self.instances.len() as u32;
                    let inst = self.instances.entry((key, *k)).or_insert_with(|| Instance {
                        id: next,
                        op: *op,
                        size: *size,
                        members: Vec::new(),
                        first: at(n.id),
                    });
                    *k += 1;
                    if inst.op != *op || inst.size != *size {
                        return Err(input(format!(
                            "error: {}: {} of {} on group {} disagrees with {} ({} of {}): the k-th collectives of a group on its ranks are one collective",
                            at(n.id),
                            op.name(),
                            size,
                            group_name(group),
                            inst.first,
                            inst.op.name(),
                            inst.size
                        )));
                    }
                    inst.members.push(rank);
                    instance[i] = Some(inst.id);
                }
                NodeKind::Send { peer, tag, .. } => self.transfer_end(rank, *peer, *tag, true, at(n.id), i as u32)?,
                NodeKind::Recv { peer, tag } => self.transfer_end(*peer, rank, *tag, false, at(n.id), i as u32)?,
                _ => {}
            }
        }
        self.ranks_read.push(RankNodes {
            file,
            nodes,
            index,
            instance,
        });
        Ok(())
    }

    /// Records one end of the transfer (src, dst, tag).
    fn transfer_end(&mut self, src: u32, dst: u32, tag: u64, send: bool, at: Origin, index: u32) -> Result<()> {
        let peer = if send { dst } else { src };
        if peer >= self.ranks {
            return Err(input(format!(
                "error: {at}: peer rank {peer} is outside the set's {} ranks",
                self.ranks
            )));
        }
        let entry = self.transfers.entry((src, dst, tag)).or_default();
        let end = if send { &mut entry.0 } else { &mut entry.1 };
        if let Some((first, _)) = end {
            let what = if send { "send to" } else { "receive from" };
            return Err(input(format!(
                "error: {at}: a second {what} rank {peer} with tag {tag} (the first: {first})"
            )));
        }
        *end = Some((at, index));
        Ok(())
    }

    /// Checks the matching, orders the ranks and returns every record, with each task's node id,
    /// and whether clustersim's export wrote the set (its files' order is then kept).
    pub(super) fn finish(mut self) -> Result<(Vec<Record>, Vec<u64>, bool)> {
        self.check_complete()?;
        let native = self
            .ranks_read
            .iter()
            .all(|r| r.nodes.iter().all(|n| n.extra.is_some()));
        let positions = if native { None } else { Some(self.positions()?) };
        let ranks = std::mem::take(&mut self.ranks_read);
        for (r, rank) in ranks.iter().enumerate() {
            let order: Vec<usize> = match &positions {
                Some(p) => order::by_position(&p[r]),
                None => (0..rank.nodes.len()).collect(),
            };
            self.emit(r as u32, rank, &order)?;
        }
        Ok((self.records, self.node_of_task, native))
    }

    /// Each node's position in the order of the whole set ([`order::positions`]).
    fn positions(&self) -> Result<Vec<Vec<u32>>> {
        let mut send_of: Vec<Vec<Option<(u32, u32)>>> =
            self.ranks_read.iter().map(|r| vec![None; r.nodes.len()]).collect();
        for (&(src, dst, _), ends) in &self.transfers {
            if let (Some((_, s)), Some((_, r))) = ends {
                send_of[dst as usize][*r as usize] = Some((src, *s));
            }
        }
        let graphs: Vec<RankGraph> = self
            .ranks_read
            .iter()
            .zip(send_of)
            .map(|(r, send_of)| RankGraph {
                deps: r
                    .nodes
                    .iter()
                    .map(|n| n.deps.iter().map(|d| r.index[d]).collect())
                    .collect(),
                instance: r.instance.clone(),
                send_of,
                ids: r.nodes.iter().map(|n| n.id).collect(),
            })
            .collect();
        order::positions(&graphs, self.instances.len()).map_err(|(r, i)| {
            let rank = &self.ranks_read[r as usize];
            input(format!(
                "error: {}: rank {r}: node {}: its dependencies, with the collectives and transfers they wait for, form a cycle",
                rank.file, rank.nodes[i as usize].id
            ))
        })
    }

    /// Every collective has all its members, every transfer both ends.
    fn check_complete(&self) -> Result<()> {
        let mut instances: Vec<(&(String, u32), &Instance)> = self.instances.iter().collect();
        instances.sort_by_key(|(_, inst)| inst.id);
        for ((key, k), inst) in instances {
            let members = if key.is_empty() {
                (0..self.ranks).collect()
            } else {
                self.groups[key].clone()
            };
            let missing: Vec<u32> = members.iter().copied().filter(|r| !inst.members.contains(r)).collect();
            if !missing.is_empty() {
                return Err(input(format!(
                    "error: {}: collective #{k} of group {} ({} of {}) has no counterpart on rank(s) {missing:?}, so it can never start",
                    inst.first,
                    if key.is_empty() { "(every rank)".to_string() } else { format!("{key:?}") },
                    inst.op.name(),
                    inst.size
                )));
            }
        }
        for ((src, dst, tag), ends) in &self.transfers {
            match ends {
                (Some((send, _)), None) => {
                    return Err(input(format!(
                        "error: {send}: send to rank {dst} with tag {tag} has no matching receive on rank {dst}"
                    )))
                }
                (None, Some((recv, _))) => {
                    return Err(input(format!(
                        "error: {recv}: receive from rank {src} with tag {tag} has no matching send on rank {src}"
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One task per node of `rank` in `order`; nodes that take no time pass their dependencies on.
    fn emit(&mut self, rank: u32, nodes: &RankNodes, order: &[usize]) -> Result<()> {
        let mut task: Vec<Option<u64>> = vec![None; nodes.nodes.len()];
        let mut passed: Vec<Vec<u64>> = vec![Vec::new(); nodes.nodes.len()];
        for &i in order {
            let n = &nodes.nodes[i];
            let mut deps: Vec<u64> = Vec::new();
            for d in &n.deps {
                let p = nodes.index[d] as usize;
                match task[p] {
                    Some(t) => deps.push(t),
                    None => deps.extend_from_slice(&passed[p]),
                }
            }
            deps.sort_unstable();
            deps.dedup();
            if n.kind == NodeKind::Skip {
                passed[i] = deps;
                continue;
            }
            let id = self.next_task;
            self.next_task += 1;
            task[i] = Some(id);
            self.node_of_task.push(n.id);
            let mut t = TaskRecord {
                id,
                rank,
                deps,
                ..Default::default()
            };
            let at = Origin {
                file: nodes.file.clone(),
                rank,
                node: n.id,
            };
            self.fill(&mut t, n, nodes.instance[i], &at)?;
            self.records.push(Record::Task(t));
        }
        Ok(())
    }

    /// Sets the stream and kind of task `t` for node `n`.
    fn fill(&mut self, t: &mut TaskRecord, n: &ChakraNode, instance: Option<u32>, at: &Origin) -> Result<()> {
        let bytes = |size: u64| size.saturating_mul(self.options.element_bytes);
        let extra = n.extra.as_ref();
        match &n.kind {
            NodeKind::Skip => unreachable!("skipped nodes make no task"),
            NodeKind::Compute { .. } if extra.is_some_and(|x| x.delay_ns.is_some()) => {
                t.delay_ns = extra.and_then(|x| x.delay_ns);
            }
            NodeKind::Compute { .. } if extra.is_some_and(|x| x.op.is_some()) => {
                let op = extra.and_then(|x| x.op).expect("checked");
                if op >= self.table_ops {
                    return Err(input(format!(
                        "error: {at}: attribute `clustersim_op` = {op}, but rank 0's op table has {} ops",
                        self.table_ops
                    )));
                }
                t.op = Some(op);
            }
            NodeKind::Compute { ops, tensor, micros } => {
                let op = self.table_ops + t.id as u32;
                self.records.push(Record::Op(OpRecord {
                    id: op,
                    name: n.name.clone(),
                    kernels: vec![KernelRecord::of(&self.kernel(*ops, *tensor, *micros))],
                    host_ops: Some(0),
                }));
                t.op = Some(op);
            }
            NodeKind::Collective { op, size, group } => {
                let (gid, members) = self.group(group, at)?;
                // ASTRA-sim's all-gather size is the per-rank input; nccl-tests' is the output
                let scale = if *op == CollectiveOp::AllGather {
                    members.len() as u64
                } else {
                    1
                };
                t.collective = Some(CollectiveRecord {
                    id: instance.expect("collectives are matched") as u64,
                    op: (*op).into(),
                    group: gid,
                    bytes: extra
                        .and_then(|x| x.bytes)
                        .unwrap_or_else(|| bytes(*size).saturating_mul(scale)),
                    cross_stage: extra.is_some_and(|x| x.cross_stage),
                    userbuffers: None,
                    data_parallel: extra.is_some_and(|x| x.data_parallel),
                });
                t.stream = StreamName::DataParallel;
            }
            NodeKind::Send { peer, size, tag } => {
                t.send = Some(SendRecord {
                    peer: *peer,
                    bytes: bytes(*size),
                    tag: *tag,
                });
                t.stream = StreamName::DataParallel;
            }
            NodeKind::Recv { peer, tag } => {
                t.recv = Some(RecvRecord { peer: *peer, tag: *tag });
                t.stream = StreamName::Send;
            }
            NodeKind::Memory { size, store } => {
                t.storage = Some(StorageRecord {
                    bytes: bytes(*size),
                    write: *store,
                });
                t.stream = StreamName::Io;
            }
        }
        if let Some(x) = extra {
            t.stream = StreamName::of(x.stream);
            let (phase, chunk, layer, microbatch) = &x.label;
            t.phase = (phase != "other").then(|| phase.clone());
            t.chunk = (*chunk != 0).then_some(*chunk);
            t.layer = (*layer != u16::MAX).then_some(*layer);
            t.microbatch = (*microbatch != u32::MAX).then_some(*microbatch);
        }
        Ok(())
    }

    /// The kernel of a compute node from another producer.
    fn kernel(&self, ops: u64, tensor: u64, micros: u64) -> Kernel {
        if micros > 0 {
            Kernel::Measured {
                ns: micros.saturating_mul(1000),
            }
        } else if self.options.compute == ComputePricing::Nanosecond {
            Kernel::Measured { ns: 1 }
        } else {
            let per_op = if self.options.ops == OpsUnit::Macs { 2 } else { 1 };
            Kernel::Generic {
                flops: ops.saturating_mul(per_op),
                bytes: tensor.saturating_mul(self.options.element_bytes),
            }
        }
    }
}

fn group_name(group: &Option<String>) -> String {
    match group {
        Some(g) => format!("{g:?}"),
        None => "(every rank)".into(),
    }
}
