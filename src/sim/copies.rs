//! The network model of a representative graph: each communication priced with its symmetric
//! copies (see [`crate::workload::replication`] and [`crate::model::network::copies`]).

use super::{communication, network_model, Comm};
use crate::config::{HardwareSpec, NetworkModelKind};
use crate::model::network::{
    AnalyticNetwork, ClosedForm, CommCopies, Communication, FlowNetwork, Memoized, NetworkModel,
};
use crate::ops::CollectiveOp;
use crate::workload::replication::{CommKind, Replication};
use crate::workload::TaskGraph;
use std::collections::HashMap;

/// The network model for `graph` on `hw`. A representative graph runs exactly only where all its
/// copies would run alike: `Err` says why not (compute jitter draws differ per rank; a flow-model
/// fabric on which the copies load links unlike their representative), and then only an every-rank
/// graph is exact. Work only replica 0 does (checkpoint I/O) breaks it on any model. The analytic
/// model prices each communication as its slowest copy ([`SlowestCopy`]).
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
    match hw.network.model {
        NetworkModelKind::Flow => {}
        NetworkModelKind::Analytic => {
            return Ok(Box::new(Memoized::new(SlowestCopy {
                inner: AnalyticNetwork::new(hw),
                replication,
            })))
        }
        _ => return Ok(network_model(hw, nodes)),
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

/// A closed-form model for a representative graph: each communication takes what the slowest of
/// its copies takes alone. The copies are priced alike where the machine is symmetric, but not a
/// context-parallel ring's steps, whose representative edge may stay inside a node while another
/// copy's crosses to the next: every rank of the ring waits for the slowest edge each step.
struct SlowestCopy<M> {
    inner: M,
    replication: Replication,
}

impl<M: ClosedForm> ClosedForm for SlowestCopy<M> {
    fn model_name(&self) -> &'static str {
        self.inner.model_name()
    }

    fn comm_seconds(&self, comm: &Communication<'_>) -> f64 {
        let slowest =
            |copies: Vec<Vec<u32>>, price: &dyn Fn(&[u32]) -> f64| copies.iter().map(|c| price(c)).fold(0.0, f64::max);
        match *comm {
            Communication::Transfer { src, dst, bytes } => {
                slowest(self.replication.copies(&[src, dst], CommKind::Transfer), &|c| {
                    self.inner.comm_seconds(&Communication::Transfer {
                        src: c[0],
                        dst: c[1],
                        bytes,
                    })
                })
            }
            Communication::Collective { op, ranks, bytes } => {
                slowest(self.replication.copies(ranks, CommKind::Collective), &|c| {
                    self.inner
                        .comm_seconds(&Communication::Collective { op, ranks: c, bytes })
                })
            }
            Communication::Storage { .. } => self.inner.comm_seconds(comm),
        }
    }
}
