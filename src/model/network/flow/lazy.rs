//! Communications priced in closed form while they are alone on their links.
//!
//! Most communications of a training iteration cross links no other flow crosses while they run
//! (a tensor-parallel all-reduce on its node's NVLink ports, a pipeline send between two NICs).
//! Max-min sharing then gives each of their flows the rate it would have alone, which depends on
//! nothing but the communication itself: the first time one is seen alone its flows are solved
//! ([`FlowNetwork::learn_solo`]) and the memo keeps their rates and common drain time. Later
//! copies that find their links free take no flows at all: they mark their links as owned and
//! schedule their drain event at once ([`FlowNetwork::begin_lazy`]). Should another flow want one
//! of those links before then, the owner's flows are put on the links as they would have been from
//! the start, with their rates and drain time ([`FlowNetwork::materialize_owners`]), and the
//! rebalance that follows shares the links as it always does. So the results are the same, bit for
//! bit, as if every flow had been placed; on GPT-1T over 3072 GPUs this skips most flows.

use super::{FlowNetwork, NetEvent, NetScheduler};
use crate::model::network::decompose::FlowSpec;
use crate::units::{SimDuration, SimTime};

/// A link no closed-form communication owns.
pub(super) const NO_OWNER: u32 = u32::MAX;

/// What the memo keeps of a communication alone on its links.
#[derive(Clone, Debug, Default)]
pub(super) enum Solo {
    /// Not yet seen alone on its links.
    #[default]
    Unknown,
    /// Seen alone, but its flows drain at different times: always placed.
    Uneven,
    /// Seen alone: each flow's rate (bytes/s per unit weight, in spec order) and their common
    /// time to drain.
    Known { rates: Vec<f64>, duration: SimDuration },
}

/// What a flow network derives from a communication once: its flows, its latency, s, and how it
/// runs alone.
#[derive(Clone, Debug, Default)]
pub(super) struct Derived {
    pub(super) specs: Vec<FlowSpec>,
    pub(super) latency: f64,
    pub(super) solo: Solo,
}

impl FlowNetwork {
    /// Starts communication `c` (memo entry `entry`, flows `specs`) in closed form if it has been
    /// seen alone before and its links are free now; returns whether it did.
    pub(super) fn begin_lazy(
        &mut self,
        c: u32,
        entry: usize,
        specs: &[FlowSpec],
        now: SimTime,
        sched: &mut dyn NetScheduler,
    ) -> bool {
        let Solo::Known { duration, .. } = self.memo.value(entry).solo else {
            return false;
        };
        let unowned = |s: &FlowSpec| s.path.links().iter().all(|&l| self.owner[l as usize] == NO_OWNER);
        if !specs.iter().all(|s| unowned(s) && self.no_flows_on(&s.path)) {
            return false;
        }
        self.count_bytes(specs);
        for s in specs {
            for &l in s.path.links() {
                self.owner[l as usize] = c;
            }
        }
        let at = now + duration;
        let comm = &mut self.comms[c as usize];
        comm.lazy = Some(entry as u32);
        comm.started = now;
        comm.event = Some((sched.schedule(at, NetEvent::FlowsDrained(c)), at));
        true
    }

    /// Places the flows of every closed-form communication owning a link of `specs` (the flows of
    /// memo entry `entry`, if any, whose stored flows are lent out as `specs` right now).
    pub(super) fn materialize_owners(&mut self, specs: &[FlowSpec], entry: Option<usize>) {
        for s in specs {
            for &l in s.path.links() {
                let owner = self.owner[l as usize];
                if owner != NO_OWNER {
                    self.materialize(owner, specs, entry);
                }
            }
        }
    }

    /// Puts closed-form communication `c`'s flows on their links, as placed when it started.
    fn materialize(&mut self, c: u32, lent: &[FlowSpec], lent_entry: Option<usize>) {
        let comm = &mut self.comms[c as usize];
        let entry = comm.lazy.take().expect("an owner is in closed form") as usize;
        let (started, at) = (comm.started, comm.event.expect("a pending drain").1);
        let derived = self.memo.value(entry);
        let specs = if lent_entry == Some(entry) {
            lent.to_vec()
        } else {
            derived.specs.clone()
        };
        let Solo::Known { rates, .. } = &derived.solo else {
            unreachable!("closed form only with known rates")
        };
        let rates = rates.clone();
        for (s, rate) in specs.iter().zip(rates) {
            for &l in s.path.links() {
                self.owner[l as usize] = NO_OWNER;
            }
            let f = self.add_flow(s.path, [s.weight; 8], s.bytes, c, started, false);
            let flow = self.flows[f as usize].as_mut().expect("just placed");
            flow.rate = rate;
            flow.timed = true;
            flow.done = at;
        }
    }

    /// Communication `c` (memo entry `entry`) was just solved alone at `now`: remembers its rates
    /// and drain time if its flows drain together.
    pub(super) fn learn_solo(&mut self, c: u32, entry: usize, now: SimTime) {
        if !matches!(self.memo.value(entry).solo, Solo::Unknown) {
            return;
        }
        let flows = &self.comms[c as usize].flows;
        let live = |f: &u32| self.flows[*f as usize].as_ref().expect("live");
        let done = live(&flows[0]).done;
        let solo = if flows.iter().all(|f| live(f).done == done) {
            Solo::Known {
                rates: flows.iter().map(|f| live(f).rate).collect(),
                duration: done.since(now),
            }
        } else {
            Solo::Uneven
        };
        self.memo.value_mut(entry).solo = solo;
    }

    /// Closed-form communication `c` drained at `now`: frees its links and schedules its end.
    pub(super) fn drain_lazy(&mut self, c: u32, now: SimTime, sched: &mut dyn NetScheduler) {
        let comm = &mut self.comms[c as usize];
        let entry = comm.lazy.take().expect("in closed form") as usize;
        let (id, latency) = (comm.id, comm.latency);
        comm.event = None;
        for s in &self.memo.value(entry).specs {
            for &l in s.path.links() {
                self.owner[l as usize] = NO_OWNER;
            }
        }
        self.free_comms.push(c);
        sched.schedule_fixed(now + latency, NetEvent::Done(id));
    }
}
