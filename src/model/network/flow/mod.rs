//! Flow-level network model: communications become flows on the topology's links, sharing
//! bandwidth max-min fairly.
//!
//! When flows start or end at some instant, the model marks their links dirty and schedules one
//! `Rebalance` event at that same instant (events at equal times pop in scheduling order, so all the
//! changes of the instant are seen together). Rebalancing collects the connected component of the
//! dirty links (links → flows on them → their links ...), brings those flows' remaining bytes up to
//! date, recomputes their max-min rates and drain times, and moves the drain event of each
//! communication whose flows changed to its earliest flow's drain time with `reschedule` (the
//! queue's change of priority), scheduling one where there was none ([`comms`]: one event per
//! communication, not per flow). Flows outside the component keep their rates and times.
//!
//! A collective completes when its last flow has drained plus the algorithm's latency
//! ([`algorithms::cost`]); a transfer when its flow has drained plus the path latency.
//!
//! A representative run ([`FlowNetwork::representative`]) runs the same model on class links: each
//! flow stands for its symmetric copies, with per-link weights ([`super::copies`]).

mod comms;
mod lazy;

use super::algorithms::{self, GroupShape, LinkCosts};
use super::copies::{self, ClassFabric, CommCopies};
use super::decompose::{self, FlowSpec};
use super::maxmin::{FlowTable, Solver};
use super::memo::Memo;
use super::nics::NicChoice;
use super::{CommId, Communication, NetEvent, NetScheduler, NetworkModel, SharedLinks};
use crate::config::{AlgorithmChoice, HardwareSpec};
use crate::model::cluster::Placement;
use crate::model::topology::{Path, Topology};
use crate::units::{SimDuration, SimTime};
use comms::Comm;
use lazy::{Derived, NO_OWNER};

#[derive(Clone, Debug)]
struct Flow {
    path: Path,
    /// position of this flow in each of its links' lists
    slot: [u32; 8],
    /// connections it stands for on each link of its path
    weights: [f64; 8],
    /// bytes per unit weight still to move
    remaining: f64,
    /// bytes/s per unit weight
    rate: f64,
    updated: SimTime,
    /// When it drains at its current rate (valid once `timed`).
    done: SimTime,
    /// Whether a rebalance has given it a rate and a drain time.
    timed: bool,
    /// The communication it belongs to (its slot in `comms`).
    comm: u32,
}

/// Max-min fair flow model on the cluster topology.
pub struct FlowNetwork {
    topo: Topology,
    /// Capacity of each link the flows cross: the topology's, or its class links' in a
    /// representative run.
    capacity: Vec<f64>,
    /// In a representative run: the class links, and the template of each communication id.
    classes: Option<(ClassFabric, Vec<u32>)>,
    /// With tenants: each rank's tenant, and per link the tenants whose flows crossed it (bits).
    tenants: Option<(Vec<u32>, Vec<u64>)>,
    placement: Placement,
    costs: LinkCosts,
    choice: AlgorithmChoice,
    /// How the NCCL version picks NICs where GPUs share a PCIe switch.
    nics: NicChoice,
    io_latency: f64,
    flows: Vec<Option<Flow>>,
    free_flows: Vec<u32>,
    on_link: Vec<Vec<u32>>,
    comms: Vec<Comm>,
    free_comms: Vec<u32>,
    dirty_links: Vec<u32>,
    rebalance_pending: bool,
    solver: Solver,
    rate_scratch: Vec<f64>,
    link_mark: Vec<u32>,
    flow_mark: Vec<u32>,
    epoch: u32,
    comp_links: Vec<u32>,
    comp_flows: Vec<u32>,
    /// Communications whose flows a rebalance re-timed.
    touched: Vec<u32>,
    /// Each communication's flows and latency, derived once.
    memo: Memo<Derived>,
    /// Per link: the communication in closed form that owns it, or [`NO_OWNER`] ([`lazy`]).
    owner: Vec<u32>,
    /// Total bytes moved per link class, for reports.
    pub bytes_moved: f64,
}

/// At most this many flows (about 60 B each) are kept in the memo of communications' flows.
const MEMO_FLOWS: usize = 1 << 20;

struct Table<'a> {
    flows: &'a [Option<Flow>],
    on_link: &'a [Vec<u32>],
}
impl FlowTable for Table<'_> {
    fn weights(&self, f: u32) -> &[f64] {
        self.flows[f as usize]
            .as_ref()
            .map_or(&[], |x| &x.weights[..x.path.links().len()])
    }
    fn path(&self, f: u32) -> &[u32] {
        self.flows[f as usize].as_ref().map_or(&[], |x| x.path.links())
    }
    fn flows_on(&self, l: u32) -> &[u32] {
        &self.on_link[l as usize]
    }
}

impl FlowNetwork {
    /// The model for the first `nodes` nodes of a machine.
    pub fn new(hw: &HardwareSpec, nodes: u32) -> Self {
        let topo = Topology::new(hw, nodes);
        let links = topo.links();
        FlowNetwork {
            placement: Placement::new(hw),
            costs: LinkCosts::new(hw),
            choice: hw.network.algorithm,
            nics: NicChoice::new(hw.network.nccl.as_ref().map(|n| n.version)),
            io_latency: hw.storage.as_ref().map_or(0.0, |st| st.io_latency.as_secs_f64()),
            on_link: vec![Vec::new(); links],
            link_mark: vec![0; links],
            capacity: topo.capacity.clone(),
            classes: None,
            tenants: None,
            topo,
            flows: Vec::new(),
            free_flows: Vec::new(),
            comms: Vec::new(),
            free_comms: Vec::new(),
            dirty_links: Vec::new(),
            rebalance_pending: false,
            solver: Solver::default(),
            rate_scratch: Vec::new(),
            flow_mark: Vec::new(),
            epoch: 0,
            comp_links: Vec::new(),
            comp_flows: Vec::new(),
            touched: Vec::new(),
            memo: Memo::new(MEMO_FLOWS),
            owner: vec![NO_OWNER; links],
            bytes_moved: 0.0,
        }
    }

    /// The model for a representative run on the first `nodes` nodes: each communication id `i`
    /// stands for the copies of `templates[template_of[i]]`. Fails, saying where, if the machine is
    /// not symmetric for those copies (then only an every-rank run is exact).
    pub fn representative(
        hw: &HardwareSpec,
        nodes: u32,
        templates: &[CommCopies<'_>],
        template_of: Vec<u32>,
    ) -> Result<Self, String> {
        let mut net = FlowNetwork::new(hw, nodes);
        let fabric = copies::build(&net.topo.capacity, templates, |comm| net.specs(comm))?;
        let links = fabric.capacity.len();
        net.capacity = fabric.capacity.clone();
        net.on_link = vec![Vec::new(); links];
        net.owner = vec![NO_OWNER; links];
        net.link_mark = vec![0; links];
        net.classes = Some((fabric, template_of));
        Ok(net)
    }

    /// Records which tenants' flows cross each link: `tenant_of_rank[r]` (below 64) is the job of
    /// rank r; [`NetworkModel::shared_links`] then reports the links several of them crossed.
    pub fn with_tenants(mut self, tenant_of_rank: Vec<u32>) -> Self {
        let links = self.topo.links();
        self.tenants = Some((tenant_of_rank, vec![0; links]));
        self
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Puts a flow of communication `comm` on its links; `dirty`: mark them for the next rebalance.
    fn add_flow(&mut self, path: Path, weights: [f64; 8], bytes: f64, comm: u32, now: SimTime, dirty: bool) -> u32 {
        let id = self.free_flows.pop().unwrap_or_else(|| {
            self.flows.push(None);
            (self.flows.len() - 1) as u32
        });
        let mut slot = [0u32; 8];
        for (i, &l) in path.links().iter().enumerate() {
            slot[i] = self.on_link[l as usize].len() as u32;
            self.on_link[l as usize].push(id);
            if dirty {
                self.dirty_links.push(l);
            }
        }
        self.flows[id as usize] = Some(Flow {
            path,
            slot,
            weights,
            remaining: bytes,
            rate: 0.0,
            updated: now,
            done: now,
            timed: false,
            comm,
        });
        self.comms[comm as usize].flows.push(id);
        id
    }

    fn remove_flow(&mut self, id: u32) -> Flow {
        let flow = self.flows[id as usize].take().expect("a live flow");
        for (i, &l) in flow.path.links().iter().enumerate() {
            let list = &mut self.on_link[l as usize];
            let pos = flow.slot[i] as usize;
            list.swap_remove(pos);
            if let Some(&moved) = list.get(pos) {
                // fix the moved flow's slot for this link
                let m = self.flows[moved as usize].as_mut().expect("flows on links are live");
                let hop = m
                    .path
                    .links()
                    .iter()
                    .position(|&x| x == l)
                    .expect("the flow crosses the link");
                m.slot[hop] = pos as u32;
            }
            // the flows left on the link may now go faster (none left: nothing to share)
            if !list.is_empty() {
                self.dirty_links.push(l);
            }
        }
        self.free_flows.push(id);
        flow
    }

    fn request_rebalance(&mut self, now: SimTime, sched: &mut dyn NetScheduler) {
        if !self.rebalance_pending {
            self.rebalance_pending = true;
            sched.schedule_fixed(now, NetEvent::Rebalance);
        }
    }

    fn rebalance(&mut self, now: SimTime, sched: &mut dyn NetScheduler) {
        self.rebalance_pending = false;
        self.epoch = self.epoch.wrapping_add(1);
        if self.flow_mark.len() < self.flows.len() {
            self.flow_mark.resize(self.flows.len(), 0);
        }
        let epoch = self.epoch;
        // connected component of the dirty links
        self.comp_links.clear();
        self.comp_flows.clear();
        let mut stack: Vec<u32> = std::mem::take(&mut self.dirty_links);
        while let Some(l) = stack.pop() {
            if self.link_mark[l as usize] == epoch {
                continue;
            }
            self.link_mark[l as usize] = epoch;
            self.comp_links.push(l);
            for &f in &self.on_link[l as usize] {
                if self.flow_mark[f as usize] != epoch {
                    self.flow_mark[f as usize] = epoch;
                    self.comp_flows.push(f);
                    let flow = self.flows[f as usize].as_ref().expect("live");
                    stack.extend(
                        flow.path
                            .links()
                            .iter()
                            .copied()
                            .filter(|&m| self.link_mark[m as usize] != epoch),
                    );
                }
            }
        }
        stack.clear();
        self.dirty_links = stack;
        if self.comp_flows.is_empty() {
            return;
        }
        // bring the component's flows up to now, then recompute their rates
        for &f in &self.comp_flows {
            let flow = self.flows[f as usize].as_mut().expect("live");
            let dt = now.since(flow.updated).as_secs_f64();
            flow.remaining = (flow.remaining - flow.rate * dt).max(0.0);
            flow.updated = now;
        }
        self.time_component(now, sched);
    }

    /// Solves the max-min shares of the component in `comp_links` and `comp_flows` (remaining
    /// bytes up to date) and moves the drain events of the communications whose flows changed.
    fn time_component(&mut self, now: SimTime, sched: &mut dyn NetScheduler) {
        if self.rate_scratch.len() < self.flows.len() {
            self.rate_scratch.resize(self.flows.len(), 0.0);
        }
        let table = Table {
            flows: &self.flows,
            on_link: &self.on_link,
        };
        self.solver.solve(
            &self.capacity,
            &self.comp_links,
            &self.comp_flows,
            &table,
            &mut self.rate_scratch,
        );
        for i in 0..self.comp_flows.len() {
            let f = self.comp_flows[i];
            let rate = self.rate_scratch[f as usize];
            let flow = self.flows[f as usize].as_mut().expect("live");
            if flow.rate == rate && flow.timed {
                continue;
            }
            flow.rate = rate;
            flow.timed = true;
            flow.done = if rate.is_infinite() {
                now
            } else {
                now + SimDuration((flow.remaining / rate * 1e9).ceil() as u64)
            };
            let c = flow.comm;
            self.touch(c);
        }
        self.time_drains(sched);
    }

    /// The flows of a communication on the topology's links, and its latency, s.
    fn specs(&self, comm: Communication<'_>) -> (Vec<FlowSpec>, f64) {
        let (mut specs, latency) = self.flows_of(comm);
        // a flow that drains within one tick of the nanosecond clock at its path's capacity takes
        // no time the clock can resolve, and would only perturb its neighbours' shares for that
        // tick: it is priced by latency alone (tiny control all-reduces: loss, found-inf, norm)
        specs.retain(|f| {
            let slowest = f
                .path
                .links()
                .iter()
                .map(|&l| self.topo.capacity[l as usize])
                .fold(f64::INFINITY, f64::min);
            f.bytes * f.weight > slowest * 1e-9
        });
        (specs, latency)
    }

    /// The flows of a communication and its latency, before [`FlowNetwork::specs`] drops the ones
    /// below the clock's resolution.
    fn flows_of(&self, comm: Communication<'_>) -> (Vec<FlowSpec>, f64) {
        match comm {
            Communication::Collective { op, ranks, bytes } => {
                let shape = self.group_shape(ranks);
                let plan = algorithms::plan(op, self.choice, &shape, bytes as f64, &self.costs);
                let channels = self.costs.ring_channels(&shape);
                // a protocol slower than the links occupies them for longer: as if it sent more
                let wire_bytes = bytes as f64 * plan.slowdown();
                (
                    decompose::collective(&self.topo, self.nics, op, plan.algorithm, ranks, wire_bytes, channels),
                    plan.latency_s,
                )
            }
            Communication::Storage { rank, bytes, write } => {
                let specs = self
                    .topo
                    .storage_route(rank, write)
                    .map(|path| {
                        vec![FlowSpec {
                            path,
                            weight: 1.0,
                            bytes: bytes as f64,
                        }]
                    })
                    .unwrap_or_default();
                (specs, self.io_latency)
            }
            Communication::Transfer { src, dst, bytes } => {
                let same = self.topo.node(src) == self.topo.node(dst);
                let (latency, _) = algorithms::transfer_cost(same, bytes as f64, &self.costs);
                // NCCL's channels may move less than the path carries: stretch the flow likewise
                let wire_bytes = bytes as f64 * algorithms::transfer_slowdown(same, &self.costs);
                (
                    decompose::transfer(&self.topo, self.nics, src, dst, wire_bytes),
                    latency,
                )
            }
        }
    }

    fn group_shape(&self, ranks: &[u32]) -> GroupShape {
        self.placement.shape(ranks)
    }
}

impl NetworkModel for FlowNetwork {
    fn name(&self) -> &'static str {
        "flow"
    }

    fn start(&mut self, now: SimTime, id: CommId, comm: Communication<'_>, sched: &mut dyn NetScheduler) {
        let hit = self.memo.find(&comm);
        let (specs, latency) = match hit {
            Some(i) => {
                let derived = self.memo.value_mut(i);
                (std::mem::take(&mut derived.specs), derived.latency)
            }
            None => self.specs(comm),
        };
        if let Some((of_rank, on_link)) = &mut self.tenants {
            let member = comm.members()[0] as usize;
            let bit = 1u64 << of_rank.get(member).copied().unwrap_or(0).min(63);
            for s in &specs {
                for &l in s.path.links() {
                    on_link[l as usize] |= bit;
                }
            }
        }
        self.begin(now, id, &specs, latency, hit, sched);
        match hit {
            Some(i) => self.memo.value_mut(i).specs = specs,
            None => {
                let cost = specs.len().max(1);
                let derived = Derived {
                    specs,
                    latency,
                    ..Derived::default()
                };
                self.memo.insert(&comm, derived, cost);
            }
        }
    }

    fn shared_links(&self) -> Vec<SharedLinks> {
        let Some((_, on_link)) = &self.tenants else {
            return Vec::new();
        };
        let mut counts: std::collections::BTreeMap<(u64, &'static str), u32> = Default::default();
        for (l, &mask) in on_link.iter().enumerate() {
            if mask.count_ones() > 1 {
                *counts.entry((mask, self.topo.class[l].name())).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|((mask, class), links)| SharedLinks {
                tenants: (0..64).filter(|b| mask >> b & 1 == 1).collect(),
                class,
                links,
            })
            .collect()
    }

    fn handle(&mut self, now: SimTime, event: NetEvent, sched: &mut dyn NetScheduler) -> Option<CommId> {
        match event {
            NetEvent::Done(id) => Some(id),
            NetEvent::Rebalance => {
                self.rebalance(now, sched);
                None
            }
            NetEvent::FlowsDrained(c) => {
                self.drain_due(c, now, sched);
                None
            }
        }
    }
}
