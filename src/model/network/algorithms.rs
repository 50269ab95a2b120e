//! Collective algorithms and their alpha-beta costs, shared by the analytic model (which uses them
//! as the answer) and the flow model (which uses them to choose an algorithm and for the latency
//! term, and gets the bandwidth term from contention).
//!
//! A group of n ranks spans N nodes with at least k members on each; S is the buffer size in the
//! nccl-tests convention. Latency follows NCCL's tuning model: each algorithm step costs the NVLink
//! latency inside a node and the NIC latency across nodes. Bandwidth terms:
//! - ring: C = k x NICs per GPU channels; inside one node B = NVLink, across nodes
//!   B = min(NVLink, C x NIC) (each ring crosses each node boundary once, through its own NIC);
//!   all-reduce moves 2(n-1)/n S per rank, reduce-scatter / all-gather / all-to-all (n-1)/n S,
//!   broadcast S;
//! - hierarchical all-reduce: ring reduce-scatter and all-gather inside each node (2(k-1)/k S over
//!   NVLink) pipelined with a ring all-reduce of S/k per rail across nodes (2(N-1)/N S/k per NIC);
//!   time is the slower of the two;
//! - tree all-reduce: as hierarchical, with a double binary tree across nodes per rail (about
//!   2 S/k per NIC, but only 2 log2(N) network steps);
//! - NVLS all-reduce (NVLink SHARP, one node): each GPU sends its data to the NVSwitch once and
//!   receives the reduced result once; as the head of 1/k of it, it also pulls that share reduced
//!   and multicasts it: (k+1)/k S over each NVLink direction. Reduce-scatter and all-gather over
//!   NVLS are costed as rings ((k-1)/k S);
//! - NVLS tree all-reduce: NVLS inside each node, and per rail a double binary tree across nodes
//!   for the head's share (S/k per NIC on 2 nodes, up to 2 S/k beyond; 2 log2(N) network steps).
//!
//! `auto` picks the faster estimate of ring and tree, the two NCCL has (as NCCL's tuner does);
//! hierarchical is not an NCCL algorithm and runs only when asked for, for what-if studies. NVLS
//! runs only as NCCL's tuner chooses it (an NCCL version with NVLS and `node.nvlink.sharp`).
//!
//! With `network.nccl` in the hardware file, [`plan`] follows NCCL instead: its tuner picks the
//! algorithm and protocol, the latency is NCCL's (plus the launch cost), and the bandwidth term is
//! the slower of the links' (above, uncontended) and NCCL's predicted protocol bandwidth
//! ([`super::nccl`]), so nothing is counted twice: links carry physical figures, protocols their
//! factors.

use super::nccl::{NcclAlgorithm, NcclGroup, NcclModel, Protocol};
use crate::config::{AlgorithmChoice, HardwareSpec};
use crate::ops::CollectiveOp;

/// An algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Flat rings.
    Ring,
    /// Intra-node rings + inter-node rings per rail.
    Hierarchical,
    /// Intra-node rings + inter-node double binary trees per rail.
    Tree,
    /// NVLink SHARP inside one node.
    Nvls,
    /// NVLink SHARP inside nodes + inter-node double binary trees per rail.
    NvlsTree,
}

impl Algorithm {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ring => "ring",
            Algorithm::Hierarchical => "hierarchical",
            Algorithm::Tree => "tree",
            Algorithm::Nvls => "nvls",
            Algorithm::NvlsTree => "nvls-tree",
        }
    }
}

/// How a group sits on the machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupShape {
    /// Ranks.
    pub n: u32,
    /// Nodes spanned.
    pub nodes: u32,
    /// Fewest members on one node.
    pub per_node: u32,
    /// Whether its GPUs are of different models (NCCL then runs without LL128).
    pub mixed: bool,
    /// Fewest distinct NICs its members use on one node (NCCL's channels across nodes).
    pub nics: u32,
    /// Whether its rings leave some node through the CPU (NCCL before PXN, 2-4 members each on
    /// its own PCIe switch, `node.nic_through_cpu`).
    pub through_cpu: bool,
}

/// Link parameters the cost model needs.
#[derive(Clone, Copy, Debug)]
pub struct LinkCosts {
    /// Effective NVLink bandwidth per GPU and direction, bytes/s.
    pub nvlink_bw: f64,
    /// NVLink step latency, s.
    pub nvlink_alpha: f64,
    /// Effective bandwidth of one NIC, bytes/s.
    pub nic_bw: f64,
    /// NIC step latency, s.
    pub nic_alpha: f64,
    /// NICs per GPU (1 on DGX A100).
    pub nics_per_gpu: f64,
    /// NCCL's cost model, if the hardware file names an NCCL.
    pub nccl: Option<NcclModel>,
    /// What a NIC sends through the CPU, where this NCCL takes that path
    /// ([`HardwareSpec::nic_through_cpu_path`]), bytes/s.
    pub nic_through_cpu: Option<f64>,
}

impl LinkCosts {
    /// From a hardware spec.
    pub fn new(hw: &HardwareSpec) -> Self {
        LinkCosts {
            nvlink_bw: hw.node.nvlink.effective_bandwidth().bytes_per_s(),
            nvlink_alpha: hw.node.nvlink.latency.as_secs_f64(),
            nic_bw: hw.node.nic.effective_bandwidth().bytes_per_s(),
            nic_alpha: hw.node.nic.latency.as_secs_f64(),
            nics_per_gpu: hw.node.nics as f64 / hw.node.gpus as f64,
            nccl: hw
                .network
                .nccl
                .as_ref()
                .map(|spec| NcclModel::new(spec, hw.node.nvlink.sharp, hw.nccl_host(spec.version))),
            nic_through_cpu: hw.nic_through_cpu_path().map(|b| b.bytes_per_s()),
        }
    }

    /// Ring channels a group gets: one per NIC its GPUs on a node own (at least one).
    pub fn ring_channels(&self, shape: &GroupShape) -> u32 {
        if shape.nodes <= 1 {
            1
        } else {
            ((shape.per_node as f64 * self.nics_per_gpu).floor() as u32).max(1)
        }
    }
}

/// (latency s, bandwidth time s) of a collective with a given algorithm.
pub fn cost(op: CollectiveOp, algo: Algorithm, shape: &GroupShape, bytes: f64, c: &LinkCosts) -> (f64, f64) {
    let (n, nodes, k) = (shape.n as f64, shape.nodes as f64, shape.per_node.max(1) as f64);
    if shape.n <= 1 {
        return (0.0, 0.0);
    }
    let per_nic = c.nic_bw * c.nics_per_gpu.min(1.0);
    match (algo, op) {
        (Algorithm::Hierarchical, CollectiveOp::AllReduce) if shape.nodes > 1 => {
            let latency = 2.0 * (k - 1.0) * c.nvlink_alpha + 2.0 * (nodes - 1.0) * c.nic_alpha;
            let intra = 2.0 * (k - 1.0) / k * bytes / c.nvlink_bw;
            let inter = 2.0 * (nodes - 1.0) / nodes * (bytes / k) / per_nic;
            (latency, intra.max(inter))
        }
        (Algorithm::Tree, CollectiveOp::AllReduce) if shape.nodes > 1 => {
            let latency = 2.0 * (k - 1.0) * c.nvlink_alpha + 2.0 * nodes.log2().ceil() * c.nic_alpha;
            let intra = 2.0 * (k - 1.0) / k * bytes / c.nvlink_bw;
            let inter = 2.0 * (bytes / k) / per_nic;
            (latency, intra.max(inter))
        }
        (Algorithm::Nvls, CollectiveOp::AllReduce) if shape.nodes == 1 => {
            (2.0 * c.nvlink_alpha, (n + 1.0) / n * bytes / c.nvlink_bw)
        }
        (Algorithm::NvlsTree, CollectiveOp::AllReduce) if shape.nodes > 1 => {
            let latency = 2.0 * c.nvlink_alpha + 2.0 * nodes.log2().ceil() * c.nic_alpha;
            let intra = (k + 1.0) / k * bytes / c.nvlink_bw;
            // the two trees on 2 nodes: each NIC sends its rail's share once (S/k), beyond: up to 2 S/k
            let inter = if shape.nodes == 2 { 1.0 } else { 2.0 } * (bytes / k) / per_nic;
            (latency, intra.max(inter))
        }
        _ => {
            let (steps, inter_steps, factor) = match op {
                CollectiveOp::AllReduce => (2.0 * (n - 1.0), 2.0 * (nodes - 1.0), 2.0 * (n - 1.0) / n),
                CollectiveOp::ReduceScatter | CollectiveOp::AllGather => (n - 1.0, nodes - 1.0, (n - 1.0) / n),
                CollectiveOp::Broadcast => (n - 1.0, nodes - 1.0, 1.0),
                CollectiveOp::AllToAll => (1.0, if shape.nodes > 1 { 1.0 } else { 0.0 }, (n - 1.0) / n),
            };
            let latency = (steps - inter_steps) * c.nvlink_alpha + inter_steps * c.nic_alpha;
            let bw = if shape.nodes <= 1 {
                c.nvlink_bw
            } else if op == CollectiveOp::AllToAll {
                c.nvlink_bw.min(per_nic)
            } else {
                c.nvlink_bw.min(c.ring_channels(shape) as f64 * c.nic_bw)
            };
            (latency, factor * bytes / bw)
        }
    }
}

/// The algorithm to use: the fixed choice when it applies, else the fastest estimate.
pub fn choose(op: CollectiveOp, choice: AlgorithmChoice, shape: &GroupShape, bytes: f64, c: &LinkCosts) -> Algorithm {
    let multi_node_allreduce = op == CollectiveOp::AllReduce && shape.nodes > 1;
    match choice {
        AlgorithmChoice::Ring => Algorithm::Ring,
        AlgorithmChoice::Hierarchical if multi_node_allreduce => Algorithm::Hierarchical,
        AlgorithmChoice::Tree if multi_node_allreduce => Algorithm::Tree,
        AlgorithmChoice::Auto if multi_node_allreduce => {
            let time = |a| {
                let (l, b) = cost(op, a, shape, bytes, c);
                l + b
            };
            [Algorithm::Ring, Algorithm::Tree]
                .into_iter()
                .min_by(|a, b| time(*a).total_cmp(&time(*b)))
                .unwrap_or(Algorithm::Ring)
        }
        _ => Algorithm::Ring,
    }
}

/// How one collective runs and what it costs without contention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollectivePlan {
    /// The algorithm (its flows, in the flow model).
    pub algorithm: Algorithm,
    /// NCCL's protocol, when NCCL is modelled.
    pub protocol: Option<Protocol>,
    /// Launch and per-step latency, s.
    pub latency_s: f64,
    /// Bandwidth time the links allow, s.
    pub link_s: f64,
    /// Bandwidth time NCCL's protocol allows (0 without NCCL), s.
    pub protocol_s: f64,
    /// Thread blocks (SMs) NCCL's kernel holds on each member (0 without NCCL).
    pub blocks: u32,
}

impl CollectivePlan {
    /// The uncontended time, s.
    pub fn time_s(&self) -> f64 {
        self.latency_s + self.link_s.max(self.protocol_s)
    }
    /// How much slower than its links the protocol moves data (at least 1): the flow model sends
    /// this many times the bytes, so that contention shares what the protocol really occupies.
    pub fn slowdown(&self) -> f64 {
        if self.link_s > 0.0 {
            (self.protocol_s / self.link_s).max(1.0)
        } else {
            1.0
        }
    }
}

/// Which algorithm and protocol a collective runs with, and its uncontended cost: NCCL's tuner when
/// the machine names an NCCL (hierarchical, not an NCCL algorithm, keeps the alpha-beta costs).
pub fn plan(
    op: CollectiveOp,
    choice: AlgorithmChoice,
    shape: &GroupShape,
    bytes: f64,
    c: &LinkCosts,
) -> CollectivePlan {
    let alpha_beta = |algorithm| {
        let (latency_s, link_s) = cost(op, algorithm, shape, bytes, c);
        CollectivePlan {
            algorithm,
            protocol: None,
            latency_s,
            link_s,
            protocol_s: 0.0,
            blocks: 0,
        }
    };
    let nccl = match c.nccl {
        Some(m) if shape.n > 1 => m,
        _ => return alpha_beta(choose(op, choice, shape, bytes, c)),
    };
    let multi_node_allreduce = op == CollectiveOp::AllReduce && shape.nodes > 1;
    let allowed: &[NcclAlgorithm] = match choice {
        AlgorithmChoice::Hierarchical if multi_node_allreduce => return alpha_beta(Algorithm::Hierarchical),
        AlgorithmChoice::Auto => &[
            NcclAlgorithm::Tree,
            NcclAlgorithm::Ring,
            NcclAlgorithm::Nvls,
            NcclAlgorithm::NvlsTree,
        ],
        AlgorithmChoice::Tree => &[NcclAlgorithm::Tree],
        _ => &[NcclAlgorithm::Ring],
    };
    let group = NcclGroup {
        n: shape.n,
        nodes: shape.nodes,
        nics: shape.nics,
        per_node: shape.per_node,
    };
    let tuned = nccl.tune(op, allowed, group, bytes, !shape.mixed);
    let algorithm = match tuned.algorithm {
        NcclAlgorithm::Tree => Algorithm::Tree,
        NcclAlgorithm::Ring => Algorithm::Ring,
        NcclAlgorithm::Nvls => Algorithm::Nvls,
        NcclAlgorithm::NvlsTree => Algorithm::NvlsTree,
    };
    CollectivePlan {
        algorithm,
        protocol: Some(tuned.protocol),
        latency_s: tuned.latency_s,
        link_s: cost(op, algorithm, shape, bytes, c).1,
        protocol_s: tuned.bandwidth_s,
        blocks: super::occupancy::nccl_blocks(&nccl, tuned.algorithm, tuned.protocol, group, bytes),
    }
}

/// The path's bandwidth over what NCCL's channels move on it (at least 1; 1 without NCCL).
pub fn transfer_slowdown(same_node: bool, c: &LinkCosts) -> f64 {
    let link_bw = if same_node {
        c.nvlink_bw
    } else {
        c.nic_bw * c.nics_per_gpu.min(1.0)
    };
    match c.nccl {
        Some(m) => (link_bw / m.simple_bus_bandwidth()).max(1.0),
        None => 1.0,
    }
}

/// (latency s, bandwidth time s) of a point-to-point transfer. With NCCL: its launch cost and one
/// Simple-protocol step, and at most what one GPU's NCCL channels move.
pub fn transfer_cost(same_node: bool, bytes: f64, c: &LinkCosts) -> (f64, f64) {
    let (alpha, link_bw) = if same_node {
        (c.nvlink_alpha, c.nvlink_bw)
    } else {
        (c.nic_alpha, c.nic_bw * c.nics_per_gpu.min(1.0))
    };
    match c.nccl {
        None => (alpha, bytes / link_bw),
        Some(m) => (
            m.p2p_latency_s(same_node),
            bytes / link_bw.min(m.simple_bus_bandwidth()),
        ),
    }
}
