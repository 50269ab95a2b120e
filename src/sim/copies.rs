//! The network model of a representative graph: each communication priced with its symmetric
//! copies (see [`crate::workload::replication`] and [`crate::model::network::copies`]).

use super::{communication, network_model, Comm};
use crate::config::{HardwareSpec, NetworkModelKind};
use crate::model::network::{CommCopies, Communication, FlowNetwork, NetworkModel};
use crate::ops::CollectiveOp;
use crate::workload::replication::CommKind;
use crate::workload::TaskGraph;
use std::collections::HashMap;

/// The network model for `graph` on `hw`. A representative graph runs exactly only where all its
/// copies would run alike: `Err` says why not (compute jitter draws differ per rank; a flow-model
/// fabric on which the copies load links unlike their representative), and then only an every-rank
/// graph is exact. Work only replica 0 does (checkpoint I/O) breaks it on any model. Closed-form
/// models price a communication alone, so they need no more checks.
pub fn network_for<'a>(graph: &'a TaskGraph, hw: &HardwareSpec) -> Result<Box<dyn NetworkModel>, String> {
    let nodes = graph.ranks.div_ceil(hw.node.gpus).max(1);
    let Some(replication) = graph.replication else {
        return Ok(network_model(hw, nodes));
    };
    if hw.gpu.jitter.is_active() {
        return Err("compute jitter draws a different time for every rank".to_string());
    }
    if !hw.gpu.slowdown.is_empty() {
        return Err("slow GPUs (gpu.slowdown) make ranks differ".to_string());
    }
    if !hw.network.degraded.is_empty() {
        return Err("degraded links (network.degraded) make ranks differ".to_string());
    }
    if replication.layout.d > 1 && graph.storage.iter().any(|s| !s.every_replica) {
        return Err("checkpoint I/O runs on data-parallel replica 0 only, so replicas differ".to_string());
    }
    if hw.network.model != NetworkModelKind::Flow {
        return Ok(network_model(hw, nodes));
    }
    // one template per distinct communication, in communication-id order (collectives, transfers,
    // storage: as the simulation numbers them)
    let mut index: HashMap<Key, u32> = HashMap::new();
    let mut templates: Vec<CommCopies<'a>> = Vec::new();
    let mut template_of = Vec::with_capacity(graph.collectives.len() + graph.transfers.len() + graph.storage.len());
    let mut add = |key: Key, comm: Communication<'a>, templates: &mut Vec<CommCopies<'a>>| {
        let next = templates.len() as u32;
        let t = *index.entry(key).or_insert(next);
        if t == next {
            templates.push(CommCopies {
                copies: replication.copies(&comm.members(), kind_of(&comm)),
                comm,
            });
        }
        t
    };
    let ids = (0..graph.collectives.len() as u32)
        .map(Comm::Collective)
        .chain((0..graph.transfers.len() as u32).map(Comm::Transfer))
        .chain((0..graph.storage.len() as u32).map(Comm::Storage));
    for id in ids {
        let comm = communication(graph, id);
        let key = match comm {
            Communication::Collective { op, bytes, .. } => {
                let Comm::Collective(c) = id else {
                    unreachable!("a collective's id")
                };
                Key::Collective(graph.collectives[c as usize].group, op, bytes)
            }
            Communication::Transfer { src, dst, bytes } => Key::Transfer(src, dst, bytes),
            Communication::Storage { rank, bytes, write } => Key::Storage(rank, write, bytes),
        };
        template_of.push(add(key, comm, &mut templates));
    }
    let net = FlowNetwork::representative(hw, nodes, &templates, template_of)?;
    Ok(Box::new(net))
}

/// Which blocks of data positions a communication is copied along.
fn kind_of(comm: &Communication<'_>) -> CommKind {
    match comm {
        Communication::Transfer { .. } => CommKind::Transfer,
        Communication::Collective { .. } | Communication::Storage { .. } => CommKind::Collective,
    }
}

/// What makes two communications of a graph the same template.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Collective(u32, CollectiveOp, u64),
    Transfer(u32, u32, u64),
    Storage(u32, bool, u64),
}
