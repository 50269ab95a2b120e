//! The communications a flow network is running, and the one completion event each keeps.
//!
//! A communication's flows mostly drain together: the rings of a tensor-parallel all-reduce move
//! equal bytes at equal shares, so each would pop its own completion event at the same instant.
//! Each communication instead keeps one event, at the earliest time one of its flows drains
//! ([`FlowNetwork::time_drains`] moves it after a rebalance changed some of its flows' rates); when
//! it pops, every flow of the communication due by then leaves at once
//! ([`FlowNetwork::drain_due`]). On GPT-1T over 3072 GPUs that is about five flows per event.

use super::{FlowNetwork, NetEvent, NetScheduler};
use crate::engine::EventKey;
use crate::model::network::decompose::FlowSpec;
use crate::model::network::CommId;
use crate::units::{SimDuration, SimTime};

/// One communication in flight.
#[derive(Clone, Debug)]
pub(super) struct Comm {
    /// The id the simulation knows it by.
    pub(super) id: CommId,
    /// Its flows still moving bytes.
    pub(super) flows: Vec<u32>,
    /// What is added after the last flow drains.
    pub(super) latency: SimDuration,
    /// Its pending drain event and that event's time.
    pub(super) event: Option<(EventKey, SimTime)>,
    /// The rebalance that last touched it (to list it once per rebalance).
    pub(super) mark: u32,
    /// In closed form, without flows ([`super::lazy`]): its memo entry.
    pub(super) lazy: Option<u32>,
    /// When it started.
    pub(super) started: SimTime,
}

impl FlowNetwork {
    /// Starts communication `id` with flows `specs` (its leaders' copies in a representative run).
    pub(super) fn begin(
        &mut self,
        now: SimTime,
        id: CommId,
        specs: &[FlowSpec],
        latency: f64,
        entry: Option<usize>,
        sched: &mut dyn NetScheduler,
    ) {
        let latency = SimDuration::from_secs_f64(latency);
        if specs.is_empty() {
            sched.schedule_fixed(now + latency, NetEvent::Done(id));
            return;
        }
        let c = self.free_comms.pop().unwrap_or_else(|| {
            self.comms.push(Comm {
                id,
                flows: Vec::new(),
                latency,
                event: None,
                mark: 0,
                lazy: None,
                started: now,
            });
            (self.comms.len() - 1) as u32
        });
        let comm = &mut self.comms[c as usize];
        comm.id = id;
        comm.latency = latency;
        comm.event = None;
        comm.started = now;
        debug_assert!(
            comm.flows.is_empty() && comm.lazy.is_none(),
            "a recycled communication is idle"
        );
        if self.classes.is_none() {
            if let Some(i) = entry {
                if self.begin_lazy(c, i, specs, now, sched) {
                    return;
                }
            }
            self.materialize_owners(specs, entry);
        }
        // a communication alone on its links is priced on the spot: the rebalance would find it
        // alone in its component and solve just that (on GPT-1T most tensor-parallel collectives)
        let alone = self.alone(id, specs);
        match self.classes.as_ref().map(|(_, of)| of[id.0 as usize] as usize) {
            Some(t) => {
                let fabric = &self.classes.as_ref().expect("a representative run").0;
                let copies = fabric.copies[t] as f64;
                self.bytes_moved += copies * specs.iter().map(|s| s.weight * s.bytes).sum::<f64>();
                // one leader per colour: the others drain with it
                for i in 0..fabric.flows[t].len() {
                    let leader = self.classes.as_ref().expect("a representative run").0.flows[t][i];
                    let s = specs[leader.spec as usize];
                    let weights = leader.multiplicity.map(|m| m * s.weight);
                    self.add_flow(leader.path, weights, s.bytes, c, now, !alone);
                }
            }
            None => {
                self.count_bytes(specs);
                for s in specs {
                    self.add_flow(s.path, [s.weight; 8], s.bytes, c, now, !alone);
                }
            }
        }
        if alone {
            self.solve_alone(c, now, sched);
            if let (Some(i), None) = (entry, &self.classes) {
                self.learn_solo(c, i, now);
            }
        } else {
            self.request_rebalance(now, sched);
        }
    }

    /// Whether no other flow crosses any link the flows of communication `id` will take.
    fn alone(&self, id: CommId, specs: &[FlowSpec]) -> bool {
        match self
            .classes
            .as_ref()
            .map(|(fabric, of)| (fabric, of[id.0 as usize] as usize))
        {
            Some((fabric, t)) => fabric.flows[t].iter().all(|leader| self.no_flows_on(&leader.path)),
            None => specs.iter().all(|s| self.no_flows_on(&s.path)),
        }
    }

    /// Whether no placed flow crosses any link of `path`.
    pub(super) fn no_flows_on(&self, path: &crate::model::topology::Path) -> bool {
        path.links().iter().all(|&l| self.on_link[l as usize].is_empty())
    }

    /// Counts the bytes of an every-rank communication's flows in [`FlowNetwork::bytes_moved`].
    pub(super) fn count_bytes(&mut self, specs: &[FlowSpec]) {
        for s in specs {
            self.bytes_moved += s.weight * s.bytes;
        }
    }

    /// Gives the flows of communication `c`, alone on their links, their max-min rates and times.
    fn solve_alone(&mut self, c: u32, now: SimTime, sched: &mut dyn NetScheduler) {
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        self.comp_links.clear();
        self.comp_flows.clear();
        for &f in &self.comms[c as usize].flows {
            self.comp_flows.push(f);
            for &l in self.flows[f as usize].as_ref().expect("live").path.links() {
                if self.link_mark[l as usize] != epoch {
                    self.link_mark[l as usize] = epoch;
                    self.comp_links.push(l);
                }
            }
        }
        self.time_component(now, sched);
    }

    /// Lists communication `c` among those a rebalance changed (once per rebalance).
    pub(super) fn touch(&mut self, c: u32) {
        let comm = &mut self.comms[c as usize];
        if comm.mark != self.epoch {
            comm.mark = self.epoch;
            self.touched.push(c);
        }
    }

    /// Moves each touched communication's drain event to its earliest flow's drain time.
    pub(super) fn time_drains(&mut self, sched: &mut dyn NetScheduler) {
        for i in 0..self.touched.len() {
            let c = self.touched[i];
            let next = self.earliest_drain(c);
            let comm = &mut self.comms[c as usize];
            match comm.event {
                Some((_, at)) if at == next => {}
                Some((key, _)) => {
                    sched.reschedule(key, next);
                    comm.event = Some((key, next));
                }
                None => comm.event = Some((sched.schedule(next, NetEvent::FlowsDrained(c)), next)),
            }
        }
        self.touched.clear();
    }

    /// When the first of communication `c`'s flows drains.
    fn earliest_drain(&self, c: u32) -> SimTime {
        self.comms[c as usize]
            .flows
            .iter()
            .map(|&f| self.flows[f as usize].as_ref().expect("live").done)
            .min()
            .expect("a communication in flight has flows")
    }

    /// Communication `c`'s drain event popped at `now`: its flows due by now leave. Returns the
    /// communication's id and latency when that was its last flow.
    pub(super) fn drain_due(&mut self, c: u32, now: SimTime, sched: &mut dyn NetScheduler) {
        if self.comms[c as usize].lazy.is_some() {
            return self.drain_lazy(c, now, sched);
        }
        let mut flows = std::mem::take(&mut self.comms[c as usize].flows);
        flows.retain(|&f| {
            let due = self.flows[f as usize].as_ref().expect("live").done <= now;
            if due {
                self.remove_flow(f);
            }
            !due
        });
        let comm = &mut self.comms[c as usize];
        comm.flows = flows;
        comm.event = None;
        if comm.flows.is_empty() {
            let (id, latency) = (comm.id, comm.latency);
            self.free_comms.push(c);
            sched.schedule_fixed(now + latency, NetEvent::Done(id));
        } else {
            let next = self.earliest_drain(c);
            self.comms[c as usize].event = Some((sched.schedule(next, NetEvent::FlowsDrained(c)), next));
        }
        // links the flows left empty need no new shares
        if !self.dirty_links.is_empty() {
            self.request_rebalance(now, sched);
        }
    }
}
