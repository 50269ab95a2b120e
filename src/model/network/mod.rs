//! Network models: turn collectives and point-to-point transfers into completion times.
//!
//! The seam is event-based so that a contention model (flows whose completion moves when rates
//! change) fits behind the same trait as the closed-form models: the simulation calls
//! [`NetworkModel::start`] when a communication can begin, the model schedules its own events
//! through a [`NetScheduler`], and [`NetworkModel::handle`] reports which communication finished.

pub mod algorithms;
mod analytic;
mod astra;
pub mod copies;
mod decompose;
mod flow;
pub mod maxmin;
mod memo;
pub mod nccl;
mod nccl_tables;
mod nics;
mod nvls;
pub mod occupancy;
pub use nics::NicChoice;

pub use analytic::{AnalyticNetwork, IdealNetwork};
pub use astra::AstraNetwork;
pub use copies::CommCopies;
pub use flow::FlowNetwork;
pub use memo::Memoized;

use crate::engine::EventKey;
use crate::ops::CollectiveOp;
use crate::units::SimTime;

/// Identifies one communication (a collective instance or a transfer) to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommId(pub u32);

/// What to communicate.
#[derive(Clone, Copy, Debug)]
pub enum Communication<'a> {
    /// A collective over `ranks` with `bytes` per rank (nccl-tests size convention).
    Collective {
        /// The operation.
        op: CollectiveOp,
        /// Participating ranks.
        ranks: &'a [u32],
        /// Buffer size.
        bytes: u64,
    },
    /// A read from or a write to the parallel filesystem.
    Storage {
        /// The rank doing the I/O.
        rank: u32,
        /// Bytes.
        bytes: u64,
        /// Write (true) or read.
        write: bool,
    },
    /// A point-to-point transfer.
    Transfer {
        /// Sender.
        src: u32,
        /// Receiver.
        dst: u32,
        /// Payload.
        bytes: u64,
    },
}

impl Communication<'_> {
    /// The ranks taking part, in order (a transfer: sender then receiver).
    pub fn members(&self) -> Vec<u32> {
        match *self {
            Communication::Collective { ranks, .. } => ranks.to_vec(),
            Communication::Storage { rank, .. } => vec![rank],
            Communication::Transfer { src, dst, .. } => vec![src, dst],
        }
    }

    /// The same communication among other ranks, listed as [`Communication::members`] lists them.
    pub fn among<'b>(&self, members: &'b [u32]) -> Communication<'b> {
        match *self {
            Communication::Collective { op, bytes, .. } => Communication::Collective {
                op,
                ranks: members,
                bytes,
            },
            Communication::Storage { bytes, write, .. } => Communication::Storage {
                rank: members[0],
                bytes,
                write,
            },
            Communication::Transfer { bytes, .. } => Communication::Transfer {
                src: members[0],
                dst: members[1],
                bytes,
            },
        }
    }
}

/// Events that network models schedule for themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// The communication is complete.
    Done(CommId),
    /// Flows of a communication (flow model: its slot) may have moved all their bytes.
    FlowsDrained(u32),
    /// Flows started or ended at this time: recompute the shares.
    Rebalance,
}

/// The simulation's event queue, as seen by a network model.
pub trait NetScheduler {
    /// Schedules a network event that may move later.
    fn schedule(&mut self, at: SimTime, event: NetEvent) -> EventKey;
    /// Schedules a network event that will never move (cheaper to pop than a keyed one).
    fn schedule_fixed(&mut self, at: SimTime, event: NetEvent);
    /// Moves a pending network event.
    fn reschedule(&mut self, key: EventKey, at: SimTime) -> bool;
}

/// A contention-free model: each communication's time is known when it starts.
pub trait ClosedForm {
    /// The name written in reports.
    fn model_name(&self) -> &'static str;
    /// Seconds for a communication.
    fn comm_seconds(&self, comm: &Communication<'_>) -> f64;
}

impl<T: ClosedForm> NetworkModel for T {
    fn name(&self) -> &'static str {
        self.model_name()
    }
    fn start(&mut self, now: SimTime, id: CommId, comm: Communication<'_>, sched: &mut dyn NetScheduler) {
        let done = now + crate::units::SimDuration::from_secs_f64(self.comm_seconds(&comm));
        sched.schedule_fixed(done, NetEvent::Done(id));
    }
    fn handle(&mut self, _now: SimTime, event: NetEvent, _sched: &mut dyn NetScheduler) -> Option<CommId> {
        match event {
            NetEvent::Done(id) => Some(id),
            _ => None,
        }
    }
}

/// A network model.
pub trait NetworkModel {
    /// The name written in reports (`analytic`, `ideal`, ...).
    fn name(&self) -> &'static str;
    /// Begins a communication at `now`.
    fn start(&mut self, now: SimTime, id: CommId, comm: Communication<'_>, sched: &mut dyn NetScheduler);
    /// Handles one of the model's own events; returns the communication it completed, if any.
    fn handle(&mut self, now: SimTime, event: NetEvent, sched: &mut dyn NetScheduler) -> Option<CommId>;
    /// Links that flows of more than one tenant crossed (see [`FlowNetwork::with_tenants`]), by the
    /// set of tenants and the link class; empty for models without links or tenants.
    fn shared_links(&self) -> Vec<SharedLinks> {
        Vec::new()
    }
}

/// Links that the flows of several tenants (jobs) crossed during a run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SharedLinks {
    /// The tenants, in order.
    pub tenants: Vec<u32>,
    /// The link class ("NIC", "leaf uplink", ...).
    pub class: &'static str,
    /// How many links of that class they shared.
    pub links: u32,
}
