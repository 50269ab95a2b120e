//! The simulation: runs a task graph on a machine with the event engine and the models.
//!
//! This is the one place where engine, models and workload meet. Semantics:
//! - a task may start when it is at the head of its (rank, stream) and its explicit
//!   predecessors are done; on graphs with pools (imported Chakra sets), when its predecessors
//!   are done and it is the ready task of lowest priority of its stream, which has room ([`pool`]);
//! - compute tasks take the compute model's time for their op (times a seeded jitter, if any);
//! - a collective begins when all member tasks have started (rendezvous) and completes for all
//!   members at once;
//! - a send begins its transfer at once (eager) and completes when the transfer does; the matching
//!   receive completes when it has started and the transfer has arrived.
//!
//! Each task kind has its handler in its own file ([`compute`] for compute and delay tasks,
//! [`collective`], [`transfer`] for send/recv, [`storage`]); this file holds the loop, the stream
//! heads and dependency bookkeeping that all kinds share.
//!
//! While it runs, it accounts each rank's time into compute, exposed and overlapped communication,
//! synchronisation wait and idle time, in O(1) per state change; a [`SpanSink`] may keep spans.

mod blocked;
mod clock;
mod collective;
mod compute;
mod copies;
mod host;
mod pool;
mod prefetch;
mod sm_share;
mod spans;
mod storage;
mod streams;
mod transfer;

use crate::config::{HardwareSpec, NetworkModelKind};
use crate::engine::{EventKey, EventQueue};
use crate::model::compute::ComputeModel;
use crate::model::network::{
    AnalyticNetwork, CommId, Communication, FlowNetwork, IdealNetwork, Memoized, NetEvent, NetScheduler, NetworkModel,
};
use crate::units::{SimDuration, SimTime};
use crate::workload::{Stream, TaskGraph, TaskId, TaskKind};
use clock::RankClock;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use streams::StreamState;

pub use clock::RankTime;
pub use copies::network_for;
pub use spans::{NoSpans, SpanSink};

/// The closed set of events of a simulation.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A compute or delay task finished.
    TaskDone {
        /// The task.
        task: TaskId,
        /// Its stream index (rank * streams + stream).
        stream: u32,
        /// Whether it ran kernels (a delay does not).
        kernels: bool,
    },
    /// A network model's own event.
    Network(NetEvent),
}

/// Simulated time at which a run is refused: 1e18 ns, 31.7 years (the u64 clock saturates at 584).
const CLOCK_LIMIT_NS: u64 = 1_000_000_000_000_000_000;

/// A communication the network model runs for the simulation.
#[derive(Clone, Copy, Debug)]
enum Comm {
    /// A collective instance.
    Collective(u32),
    /// A point-to-point transfer.
    Transfer(u32),
    /// A storage operation.
    Storage(u32),
}

/// What a finished simulation reports.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    /// When the last task finished.
    pub makespan: SimTime,
    /// Per rank time accounting over [0, makespan].
    pub rank_time: Vec<RankTime>,
    /// Whether each rank had any task (representative runs leave most ranks empty).
    pub active: Vec<bool>,
    /// Events processed.
    pub events: u64,
    /// Per rank: seconds other members of its collectives spent waiting for it to arrive last.
    pub waited_on: Vec<f64>,
    /// Links that flows of several tenants crossed (flow model with tenants).
    pub shared_links: Vec<crate::model::network::SharedLinks>,
    /// Name of the network model used.
    pub network_model: &'static str,
}

/// The network model's view of a collective, transfer or storage operation of `g`.
fn communication(g: &TaskGraph, comm: Comm) -> Communication<'_> {
    match comm {
        Comm::Collective(c) => {
            let coll = &g.collectives[c as usize];
            Communication::Collective {
                op: coll.op,
                ranks: &g.groups[coll.group as usize],
                bytes: coll.bytes,
            }
        }
        Comm::Transfer(x) => {
            let tr = &g.transfers[x as usize];
            Communication::Transfer {
                src: tr.src,
                dst: tr.dst,
                bytes: tr.bytes,
            }
        }
        Comm::Storage(x) => {
            let op = &g.storage[x as usize];
            Communication::Storage {
                rank: op.rank,
                bytes: op.bytes,
                write: op.write,
            }
        }
    }
}

/// Options of one simulation.
#[derive(Clone, Copy, Debug)]
pub struct SimOptions {
    /// Seed of the one RNG of the run.
    pub seed: u64,
}

/// Builds the network model a hardware spec asks for, for a run on the first `nodes` nodes.
pub fn network_model(hw: &HardwareSpec, nodes: u32) -> Box<dyn NetworkModel> {
    match hw.network.model {
        NetworkModelKind::Analytic => Box::new(Memoized::new(AnalyticNetwork::new(hw))),
        NetworkModelKind::Flow => Box::new(FlowNetwork::new(hw, nodes)),
        NetworkModelKind::Ideal => Box::new(IdealNetwork),
        NetworkModelKind::Astra => Box::new(crate::model::network::AstraNetwork::new(
            hw.network
                .astra
                .as_ref()
                .expect("validated: model astra has network.astra"),
        )),
    }
}

struct Queue<'q>(&'q mut EventQueue<Event>);
impl NetScheduler for Queue<'_> {
    fn schedule(&mut self, at: SimTime, event: NetEvent) -> EventKey {
        self.0.schedule(at, Event::Network(event))
    }
    fn schedule_fixed(&mut self, at: SimTime, event: NetEvent) {
        self.0.schedule_fixed(at, Event::Network(event))
    }
    fn reschedule(&mut self, key: EventKey, at: SimTime) -> bool {
        self.0.reschedule(key, at)
    }
}

/// Runs `graph` on `hw` to completion, with the network model [`network_for`] gives it.
pub fn simulate(
    graph: &TaskGraph,
    hw: &HardwareSpec,
    opts: SimOptions,
    spans: &mut dyn SpanSink,
) -> crate::error::Result<SimOutcome> {
    let net = network_for(graph, hw).map_err(|why| {
        crate::error::Error::Internal(format!("a representative graph cannot run exactly here: {why}"))
    })?;
    simulate_on(graph, hw, net, opts, spans)
}

/// Runs `graph` on `hw` to completion with a given network model.
pub fn simulate_on(
    graph: &TaskGraph,
    hw: &HardwareSpec,
    net: Box<dyn NetworkModel>,
    opts: SimOptions,
    spans: &mut dyn SpanSink,
) -> crate::error::Result<SimOutcome> {
    // each GPU model of the machine prices every op; a rank's node group picks its row
    let op_time: Vec<Vec<compute::OpCost>> = hw
        .gpu_models()
        .into_iter()
        .map(|gpu| {
            let m = ComputeModel::new(gpu);
            graph
                .ops
                .iter()
                .map(|op| compute::OpCost::of(&m, &op.kernels))
                .collect()
        })
        .collect();
    let mut sim = Sim::new(graph, op_time, net, opts.seed, hw.gpu.jitter, spans);
    if !hw.node_groups.is_empty() {
        let nodes = crate::config::groups::group_of_nodes(&hw.node_groups, graph.ranks.div_ceil(hw.node.gpus));
        sim.rank_group = (0..graph.ranks).map(|r| nodes[(r / hw.node.gpus) as usize]).collect();
    }
    sim.host_dispatch = hw.node.host_dispatch;
    sim.sm_share = sm_share::SmShare::for_run(hw, graph);
    sim.slowdown = crate::config::whatif::slowdown_factors(&hw.gpu.slowdown, hw.node.gpus, graph.ranks, opts.seed);
    sim.run()?;
    Ok(sim.outcome())
}

struct Sim<'a> {
    g: &'a TaskGraph,
    /// Each op's time on each GPU model of the machine (`gpu`, then each node group's).
    op_time: Vec<Vec<compute::OpCost>>,
    /// Each rank's GPU model (empty when the machine has one).
    rank_group: Vec<u8>,
    net: Box<dyn NetworkModel>,
    queue: EventQueue<Event>,
    /// Each (rank, stream)'s place in its task list.
    streams: Vec<StreamState>,
    /// Predecessors still running, per gate.
    gate_left: Vec<u32>,
    arrived: Vec<u32>,
    transfer_done: Vec<bool>,
    recv_started: Vec<bool>,
    clocks: Vec<RankClock>,
    /// Tasks that may have become startable, with their stream index (rank * streams + stream).
    ready: Vec<(TaskId, u32)>,
    /// The task of each storage operation.
    storage_task: Vec<TaskId>,
    rng: ChaCha8Rng,
    jitter: crate::config::whatif::Jitter,
    /// Each rank's kernel-duration factor (slow GPUs; 1 for most).
    slowdown: Vec<f64>,
    /// Per rank: seconds others waited for it at collectives.
    waited_on: Vec<f64>,
    /// Host time per dispatched operation (0: no host model), and each rank's host thread.
    host_dispatch: SimDuration,
    hosts: Vec<host::Host>,
    spans: &'a mut dyn SpanSink,
    record: Vec<bool>,
    done: usize,
    /// Ready-order streams, for graphs that have them ([`pool`]).
    pools: Option<Box<pool::PoolState>>,
    /// SMs that communication kernels hold, where the machine names an NCCL ([`sm_share`]).
    sm_share: Option<Box<sm_share::SmShare>>,
}

impl<'a> Sim<'a> {
    fn new(
        g: &'a TaskGraph,
        op_time: Vec<Vec<compute::OpCost>>,
        net: Box<dyn NetworkModel>,
        seed: u64,
        jitter: crate::config::whatif::Jitter,
        spans: &'a mut dyn SpanSink,
    ) -> Self {
        let record = (0..g.ranks).map(|r| spans.wants(r)).collect();
        Sim {
            g,
            op_time,
            rank_group: Vec::new(),
            net,
            queue: EventQueue::new(),
            streams: g.stream_offsets[..g.stream_offsets.len() - 1]
                .iter()
                .map(|&first| StreamState::at(g, first))
                .collect(),
            gate_left: g.gates.iter().map(|x| x.preds).collect(),
            arrived: vec![0; g.collectives.len()],
            transfer_done: vec![false; g.transfers.len()],
            recv_started: vec![false; g.transfers.len()],
            clocks: vec![RankClock::default(); g.ranks as usize],
            ready: Vec::new(),
            storage_task: {
                let mut v = vec![0; g.storage.len()];
                for (t, k) in g.task_kind.iter().enumerate() {
                    if let TaskKind::Storage(x) = k {
                        v[*x as usize] = t as TaskId;
                    }
                }
                v
            },
            rng: ChaCha8Rng::seed_from_u64(seed),
            jitter,
            slowdown: vec![1.0; g.ranks as usize],
            waited_on: vec![0.0; g.ranks as usize],
            host_dispatch: SimDuration::ZERO,
            hosts: vec![host::Host::default(); g.ranks as usize],
            spans,
            record,
            done: 0,
            pools: g.pools.as_ref().map(|p| Box::new(pool::PoolState::new(g, p))),
            sm_share: None,
        }
    }

    fn run(&mut self) -> crate::error::Result<()> {
        if self.pools.is_some() {
            self.seed_pools();
        } else {
            for r in 0..self.g.ranks {
                for s in 0..Stream::COUNT {
                    let tasks = self.g.stream(r, s);
                    if !tasks.is_empty() {
                        self.ready.push((tasks.start, (r as usize * Stream::COUNT + s) as u32));
                    }
                }
            }
        }
        self.drain();
        while let Some((now, event)) = self.queue.pop() {
            self.prefetch_ahead();
            match event {
                Event::TaskDone { task, stream, kernels } => self.task_done(task, stream as usize, kernels),
                Event::Network(ne) => {
                    if let Some(id) = self.net.handle(now, ne, &mut Queue(&mut self.queue)) {
                        self.comm_done(id);
                    }
                }
            }
            self.drain();
        }
        if self.queue.now().0 >= CLOCK_LIMIT_NS {
            return Err(crate::error::Error::Input(format!(
                "error: simulated time reached {:.3e} s, beyond what the nanosecond clock holds reliably ({:.0} years): a delay or a kernel is absurdly long",
                self.queue.now().as_secs_f64(),
                CLOCK_LIMIT_NS as f64 * 1e-9 / 3.156e7
            )));
        }
        if self.done != self.g.len() {
            return Err(crate::error::Error::Input(format!(
                "error: the task graph deadlocked: {} of {} tasks never ran (a receive without a send, a collective some members never reach, or a dependency cycle); blocked: {}",
                self.g.len() - self.done,
                self.g.len(),
                self.blocked()
            )));
        }
        Ok(())
    }

    fn outcome(&mut self) -> SimOutcome {
        let end = self.queue.now();
        for c in &mut self.clocks {
            c.advance(end);
        }
        SimOutcome {
            makespan: end,
            rank_time: self.clocks.iter().map(|c| c.time).collect(),
            active: (0..self.g.ranks)
                .map(|r| (0..Stream::COUNT).any(|s| !self.g.stream(r, s).is_empty()))
                .collect(),
            events: self.queue.events_processed(),
            waited_on: std::mem::take(&mut self.waited_on),
            shared_links: self.net.shared_links(),
            network_model: self.net.name(),
        }
    }

    fn stream_index(&self, t: TaskId) -> usize {
        self.g.task_rank[t as usize] as usize * Stream::COUNT + self.g.task_stream[t as usize] as usize
    }

    fn can_start(&self, t: TaskId, si: usize) -> bool {
        if self.streams[si].head != t || self.streams[si].started {
            return false;
        }
        let st = &self.streams[si];
        st.gate_task != t || self.gate_left[st.gate_cursor as usize] == 0
    }

    fn drain(&mut self) {
        self.prefetch_ready();
        while let Some((t, si)) = self.ready.pop() {
            if self.can_start(t, si as usize) {
                self.start(t, si as usize);
            }
        }
        if self.pools.is_some() {
            self.dispatch_pools();
        }
    }

    /// The communication id the network model knows `comm` by: collectives first, then transfers,
    /// then storage operations.
    fn comm_id(&self, comm: Comm) -> CommId {
        let (collectives, transfers) = (self.g.collectives.len() as u32, self.g.transfers.len() as u32);
        CommId(match comm {
            Comm::Collective(c) => c,
            Comm::Transfer(x) => collectives + x,
            Comm::Storage(x) => collectives + transfers + x,
        })
    }

    /// The inverse of [`Sim::comm_id`].
    fn comm_of(&self, id: CommId) -> Comm {
        let collectives = self.g.collectives.len() as u32;
        let transfers = collectives + self.g.transfers.len() as u32;
        if id.0 < collectives {
            Comm::Collective(id.0)
        } else if id.0 < transfers {
            Comm::Transfer(id.0 - collectives)
        } else {
            Comm::Storage(id.0 - transfers)
        }
    }

    /// The rank a stream index belongs to.
    fn rank_of_stream(&self, si: usize) -> usize {
        si / Stream::COUNT
    }

    /// Starts task `t`, the head of stream `si`: one handler per task kind.
    fn start(&mut self, t: TaskId, si: usize) {
        self.streams[si].started = true;
        self.streams[si].start_time = self.queue.now();
        let r = self.rank_of_stream(si);
        match self.g.task_kind[t as usize] {
            TaskKind::Compute(op) => self.start_compute(t, si, op),
            TaskKind::Delay(i) => self.start_delay(t, si, i),
            TaskKind::Collective(c) => {
                if si % Stream::COUNT == Stream::Compute as usize {
                    self.host_dispatches_collective(t, r, self.queue.now());
                }
                self.start_collective(c, r)
            }
            TaskKind::Send(x) => self.start_send(x),
            TaskKind::Recv(x) => self.start_recv(t, si, x),
            TaskKind::Storage(x) => self.start_storage(x, r),
        }
    }

    /// The network model finished communication `id`.
    fn comm_done(&mut self, id: CommId) {
        match self.comm_of(id) {
            Comm::Collective(c) => self.collective_done(c),
            Comm::Transfer(x) => self.transfer_done(x),
            Comm::Storage(x) => self.storage_done(x),
        }
    }

    /// Task `t`, the head of stream `si`, finished: the stream moves on and its successors may start.
    fn complete(&mut self, t: TaskId, si: usize, now: SimTime) {
        self.done += 1;
        if self.pools.is_some() {
            return self.pool_complete(t, si, now);
        }
        if self.record[si / Stream::COUNT] {
            self.spans.span(t, self.streams[si].start_time, now);
        }
        self.streams[si].head += 1;
        self.streams[si].started = false;
        let head = self.streams[si].head;
        if head < self.g.stream_offsets[si + 1] {
            self.ready.push((head, si as u32));
        }
        let (g, st) = (self.g, &mut self.streams[si]);
        if st.gate_task < head {
            let mut gc = st.gate_cursor as usize;
            while gc < g.gates.len() && g.gates[gc].task < head {
                gc += 1;
            }
            st.gate_cursor = gc as u32;
            st.gate_task = g.gates.get(gc).map_or(TaskId::MAX, |x| x.task);
        }
        if st.edge_task != t {
            return;
        }
        let mut ec = st.edge_cursor as usize;
        while let Some(e) = g.edges.get(ec).filter(|e| e.before == t) {
            let left = &mut self.gate_left[e.gate as usize];
            *left -= 1;
            if *left == 0 {
                self.ready.push((e.after, e.after_stream));
            }
            ec += 1;
        }
        let st = &mut self.streams[si];
        st.edge_cursor = ec as u32;
        st.edge_task = g.edges.get(ec).map_or(TaskId::MAX, |e| e.before);
    }
}
