//! NCCL's own cost model, as the NCCL that Megatron-LM ran in 2021 has it (2.8.3 to 2.10.3,
//! `src/graph/tuning.cc`; constants transcribed in `shared/reference/nccl/nccl-2.8-2.10-tuning-model.md`).
//!
//! For each algorithm (ring; tree for all-reduce only) and protocol (LL, LL128, Simple) NCCL
//! predicts a bus bandwidth and a latency, and its tuner runs the one with the least predicted time
//! `latency + bytes / algorithm bandwidth`. The machine-specific inputs are what NCCL discovers at
//! run time: the channels of its topology graph and the per-channel speed inside a node and across
//! nodes, plus the fixed cost of launching one collective (host enqueue and kernel launch), which
//! NCCL's model leaves out. Those four live in the hardware file (`network.nccl`) with their fit.
//!
//! Bus bandwidth of a graph: `busBw = channels x speed` (intra-node speed up to 2 nodes, inter-node
//! beyond), capped at 235 GB/s on compute capability 8.0 (A100). Inside one node the graph is the
//! hardware file's (`channels` x `speed_intra`). A graph across nodes comes from NCCL's search over
//! the NICs (`ncclTopoCompute`, src/graph/search.cc): each channel enters and leaves a node through a
//! NIC of its own at the NIC's speed, so it has one channel per distinct NIC the communicator holds on
//! a node, at `speed_inter` inside and across nodes; for a tree on up to 2 nodes the search's second
//! pass then raises the intra-node speed to the highest of NCCL's speeds below twice the inter-node
//! one that the node's NVLink (`channels` x `speed_intra`) carries for every channel. Then per
//! algorithm and protocol:
//! - ring LL: `min(llMaxBw, busBw / 4)` (all-reduce or several nodes; 1/3 otherwise);
//! - ring LL128: `min(busBw x (0.92 with 2+ ranks per node, else 0.7), ll128MaxBwPerCh x channels)`;
//! - ring Simple: `busBw`;
//! - tree: `min(busBw x 0.92, channels x perChMaxTreeBw)`, then LL `/ 3.8` (capped at llMaxBw),
//!   LL128 `x 7/9` on one node (`x 0.915`, 2.10: `x 120/128`, across nodes), Simple as is.
//!
//! The algorithm bandwidth is `busBw x n / steps` for rings (steps = 2(n-1) for all-reduce, n-1 for
//! reduce-scatter and all-gather, n otherwise) and `busBw / 2` for trees, the tree's further scaled
//! by NCCL's tree correction factor for messages under 256 MiB.
//!
//! Latency: `baseLat[algo][proto]` plus, for rings, one hardware latency per step (NVLink steps
//! inside a node, network steps across: 2(N-1) of them for all-reduce over N nodes), for trees
//! `2 ((ranks per node - 1) x NVLink + log2(N) x network)`; LL's NVLink latency x 1.8 across nodes,
//! and ring Simple all-reduce x 1.9 across nodes from `n/16 x 64 KiB` ("plateau effect").

use crate::config::{NcclSpec, NcclVersion};
use crate::ops::CollectiveOp;

/// NCCL's algorithms (CollNet needs SHARP switches, which DGX A100 clusters of 2021 did not use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NcclAlgorithm {
    /// Double binary trees across nodes, chains inside (all-reduce only).
    Tree,
    /// Rings.
    Ring,
}

/// NCCL's protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Low latency: 8-byte stores carrying 4 bytes of data and a flag.
    LL,
    /// 128-byte lines carrying 120 bytes of data.
    LL128,
    /// Plain copies with a fence per step: the full bandwidth, the highest latency.
    Simple,
}

impl Protocol {
    /// All protocols, in NCCL's index order.
    pub const ALL: [Protocol; 3] = [Protocol::LL, Protocol::LL128, Protocol::Simple];
    /// Name as NCCL_PROTO spells it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::LL => "LL",
            Protocol::LL128 => "LL128",
            Protocol::Simple => "Simple",
        }
    }
}

/// The constants of one NCCL version's tuning model (algorithm rows tree, ring; protocol columns
/// LL, LL128, Simple), for an A100 (compute capability 8.0) host with AMD CPUs.
#[derive(Debug, PartialEq)]
struct Table {
    /// baseLat, us.
    base_latency: [[f64; 3]; 2],
    /// hwLat[NVLINK], us.
    nvlink_latency: [[f64; 3]; 2],
    /// hwLat[NET], us.
    net_latency: [[f64; 3]; 2],
    /// llMaxBws for Ampere on one node / AMD hosts across nodes, by min(nodes, 3) - 1, GB/s.
    ll_max_bw: [f64; 3],
    /// perChMaxTreeBws for Ampere, by min(nodes, 3) - 1, GB/s.
    tree_max_bw_per_channel: [f64; 3],
    /// ll128MaxBwPerCh for all-reduce, reduce-scatter, all-gather, broadcast, GB/s.
    ll128_max_bw_per_channel: [f64; 4],
    /// Tree LL128 bandwidth factor across nodes.
    tree_ll128_multi_node: f64,
    /// treeCorrectionFactor[proto][log2(bytes / 64)], for 64 B to 256 MiB.
    tree_correction: [[f64; 23]; 3],
    /// The search's per-channel speeds inside a node, fastest first (speedArray; 2.10:
    /// speedArrayIntra), GB/s.
    intra_speeds: &'static [f64],
}

const TREE_CORRECTION_LL: [f64; 23] = [
    1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.5, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0,
];
const TREE_CORRECTION_SIMPLE: [f64; 23] = [
    0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.7, 0.7, 0.8, 0.9, 0.9,
];
const BASE_LATENCY: [[f64; 3]; 2] = [[4.4, 4.4, 0.0], [3.6, 10.0, 8.4]];
const NVLINK_LATENCY: [[f64; 3]; 2] = [[0.52, 1.25, 28.0], [0.47, 1.9, 3.4]];
const NET_LATENCY: [[f64; 3]; 2] = [[5.0, 8.5, 28.0], [2.7, 4.0, 9.6]];
const LL_MAX_BW: [f64; 3] = [87.7, 22.5, 19.0];

/// NCCL 2.8.3 to 2.9.9.
const NCCL_2_8: Table = Table {
    base_latency: BASE_LATENCY,
    nvlink_latency: NVLINK_LATENCY,
    net_latency: NET_LATENCY,
    ll_max_bw: LL_MAX_BW,
    tree_max_bw_per_channel: [24.0, 22.5, 16.0],
    ll128_max_bw_per_channel: [16.9, 15.2, 18.3, 18.8],
    tree_ll128_multi_node: 0.915,
    tree_correction: [
        TREE_CORRECTION_LL,
        [
            1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 0.9,
            0.92, 0.92,
        ],
        TREE_CORRECTION_SIMPLE,
    ],
    intra_speeds: &[
        42.0, 30.0, 24.0, 21.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0,
    ],
};

/// NCCL 2.10.3.
const NCCL_2_10: Table = Table {
    base_latency: BASE_LATENCY,
    nvlink_latency: NVLINK_LATENCY,
    net_latency: NET_LATENCY,
    ll_max_bw: LL_MAX_BW,
    tree_max_bw_per_channel: [24.0, 23.6, 17.8],
    ll128_max_bw_per_channel: [20.0; 4],
    tree_ll128_multi_node: 120.0 / 128.0,
    tree_correction: [
        TREE_CORRECTION_LL,
        [
            1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.8, 0.9, 0.9, 0.9, 0.9,
            1.0, 1.0,
        ],
        TREE_CORRECTION_SIMPLE,
    ],
    intra_speeds: &[44.0, 30.0, 22.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0],
};

/// NCCL's global bus-bandwidth cap on compute capability 8.0, GB/s.
const SM80_MAX_BUS_BW: f64 = 235.0;

/// A communicator as NCCL's model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NcclGroup {
    /// Ranks.
    pub n: u32,
    /// Nodes spanned.
    pub nodes: u32,
    /// Distinct NICs it holds on a node (its channels across nodes).
    pub nics: u32,
}

/// What NCCL runs for one collective and what its model predicts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuned {
    /// Algorithm.
    pub algorithm: NcclAlgorithm,
    /// Protocol.
    pub protocol: Protocol,
    /// Launch cost plus NCCL's latency, s.
    pub latency_s: f64,
    /// Seconds the bandwidth term takes at NCCL's predicted algorithm bandwidth.
    pub bandwidth_s: f64,
}

impl Tuned {
    /// The whole predicted time, s.
    pub fn time_s(&self) -> f64 {
        self.latency_s + self.bandwidth_s
    }
}

/// NCCL's model for one machine: a version's table and what NCCL discovered there.
#[derive(Clone, Copy, Debug)]
pub struct NcclModel {
    table: &'static Table,
    channels: f64,
    /// GB/s per channel.
    speed_intra: f64,
    /// GB/s per channel.
    speed_inter: f64,
    launch_s: f64,
}

impl NcclModel {
    /// The model a hardware file's `network.nccl` describes.
    pub fn new(spec: &NcclSpec) -> Self {
        NcclModel {
            table: match spec.version {
                NcclVersion::V2_8 => &NCCL_2_8,
                NcclVersion::V2_10 => &NCCL_2_10,
            },
            channels: spec.channels as f64,
            speed_intra: spec.speed_intra.bytes_per_s() / 1e9,
            speed_inter: spec.speed_inter.bytes_per_s() / 1e9,
            launch_s: spec.launch.as_secs_f64(),
        }
    }

    /// The graph's (channels, speed in GB/s) that NCCL's bandwidth formula uses for an algorithm
    /// on `nodes` nodes, where the communicator holds `nics` distinct NICs per node.
    fn graph(&self, algo: NcclAlgorithm, nodes: u32, nics: u32) -> (f64, f64) {
        if nodes <= 1 {
            return (self.channels, self.speed_intra);
        }
        let channels = nics.max(1) as f64;
        if algo == NcclAlgorithm::Ring || nodes > 2 {
            return (channels, self.speed_inter);
        }
        let nvlink = self.channels * self.speed_intra;
        let raised = self
            .table
            .intra_speeds
            .iter()
            .copied()
            .find(|&s| s < 2.0 * self.speed_inter && channels * s <= nvlink);
        (channels, raised.unwrap_or(self.speed_inter).max(self.speed_inter))
    }

    /// NCCL's bus bandwidth (GB/s) of an algorithm and protocol for a group.
    fn bus_bandwidth(&self, op: CollectiveOp, algo: NcclAlgorithm, proto: Protocol, group: NcclGroup) -> f64 {
        let NcclGroup { n, nodes, nics } = group;
        let t = self.table;
        let index = (nodes.min(3) - 1) as usize;
        let (channels, speed) = self.graph(algo, nodes, nics);
        let bus = (channels * speed).min(SM80_MAX_BUS_BW);
        let ll128_cap = t.ll128_max_bw_per_channel[match op {
            CollectiveOp::AllReduce => 0,
            CollectiveOp::ReduceScatter => 1,
            CollectiveOp::AllGather => 2,
            _ => 3,
        }] * channels;
        let per_node = n / nodes.max(1);
        match (algo, proto) {
            (NcclAlgorithm::Ring, Protocol::LL) => {
                let share = if nodes > 1 || op == CollectiveOp::AllReduce {
                    0.25
                } else {
                    1.0 / 3.0
                };
                (bus * share).min(t.ll_max_bw[index])
            }
            (NcclAlgorithm::Ring, Protocol::LL128) => (bus * if per_node < 2 { 0.7 } else { 0.92 }).min(ll128_cap),
            (NcclAlgorithm::Ring, Protocol::Simple) => bus,
            (NcclAlgorithm::Tree, _) => {
                let tree = (bus * 0.92).min(channels * t.tree_max_bw_per_channel[index]);
                match proto {
                    Protocol::LL => (tree / 3.8).min(t.ll_max_bw[index]),
                    Protocol::LL128 => {
                        (tree * if nodes == 1 { 7.0 / 9.0 } else { t.tree_ll128_multi_node }).min(ll128_cap)
                    }
                    Protocol::Simple => tree,
                }
            }
        }
    }

    /// NCCL's latency (us, without the launch cost) of an algorithm and protocol.
    fn latency_us(
        &self,
        op: CollectiveOp,
        algo: NcclAlgorithm,
        proto: Protocol,
        n: u32,
        nodes: u32,
        bytes: f64,
    ) -> f64 {
        let t = self.table;
        let (a, p) = (algo as usize, proto as usize);
        let mut intra = t.nvlink_latency[a][p];
        let inter = t.net_latency[a][p];
        if nodes > 1 && proto == Protocol::LL {
            intra *= 1.8;
        }
        let (n, nodes_f) = (n as f64, nodes as f64);
        let mut latency = t.base_latency[a][p];
        match algo {
            NcclAlgorithm::Ring => {
                let (steps, inter_steps) = ring_steps(op, n, nodes_f);
                latency += (steps - inter_steps) * intra + inter_steps * inter;
                let plateau = 65536.0 * n / 16.0;
                if proto == Protocol::Simple && nodes > 1 && op == CollectiveOp::AllReduce && bytes >= plateau {
                    latency *= 1.9;
                }
            }
            NcclAlgorithm::Tree => {
                latency += 2.0 * ((n / nodes_f - 1.0) * intra + (nodes as f64).log2().floor() * inter);
            }
        }
        latency
    }

    /// The prediction for one algorithm and protocol; `bytes` per rank in nccl-tests' convention.
    pub fn predict(
        &self,
        op: CollectiveOp,
        algo: NcclAlgorithm,
        proto: Protocol,
        group: NcclGroup,
        bytes: f64,
    ) -> Tuned {
        let NcclGroup { n, nodes, .. } = group;
        let bus = self.bus_bandwidth(op, algo, proto, group);
        let mut alg = match algo {
            NcclAlgorithm::Ring => bus * n as f64 / ring_steps(op, n as f64, nodes as f64).0,
            NcclAlgorithm::Tree => bus * 0.5,
        };
        if algo == NcclAlgorithm::Tree {
            let log = ((bytes as u64) >> 6).max(1).ilog2() as usize;
            if log < 23 {
                alg *= self.table.tree_correction[proto as usize][log];
            }
        }
        Tuned {
            algorithm: algo,
            protocol: proto,
            latency_s: self.launch_s + self.latency_us(op, algo, proto, n, nodes, bytes) * 1e-6,
            bandwidth_s: if alg > 0.0 { bytes / (alg * 1e9) } else { f64::INFINITY },
        }
    }

    /// What NCCL's tuner runs: the least predicted time over the protocols and the algorithms
    /// `allowed` (tree only for all-reduce); LL128 only where `ll128` (every GPU of the group of
    /// one architecture: NCCL disables it for mixed ones).
    pub fn tune(
        &self,
        op: CollectiveOp,
        allowed: &[NcclAlgorithm],
        group: NcclGroup,
        bytes: f64,
        ll128: bool,
    ) -> Tuned {
        let mut best: Option<Tuned> = None;
        for &algo in allowed {
            if algo == NcclAlgorithm::Tree && op != CollectiveOp::AllReduce {
                continue;
            }
            for proto in Protocol::ALL {
                if proto == Protocol::LL128 && !ll128 {
                    continue;
                }
                let t = self.predict(op, algo, proto, group, bytes);
                if best.is_none_or(|b| t.time_s() < b.time_s()) {
                    best = Some(t);
                }
            }
        }
        best.unwrap_or_else(|| self.predict(op, NcclAlgorithm::Ring, Protocol::Simple, group, bytes))
    }

    /// Latency of a send/receive pair, s: the launch cost and one Simple-protocol step over NVLink
    /// or the network (NCCL's tuner has no model for point-to-point).
    pub fn p2p_latency_s(&self, same_node: bool) -> f64 {
        let step = if same_node {
            self.table.nvlink_latency[NcclAlgorithm::Ring as usize][Protocol::Simple as usize]
        } else {
            self.table.net_latency[NcclAlgorithm::Ring as usize][Protocol::Simple as usize]
        };
        self.launch_s + step * 1e-6
    }

    /// NCCL's bus-bandwidth cap of the Simple protocol on one node (channels x speed, at most the
    /// SM80 cap), bytes/s: what one GPU's NCCL kernels can move.
    pub fn simple_bus_bandwidth(&self) -> f64 {
        (self.channels * self.speed_intra).min(SM80_MAX_BUS_BW) * 1e9
    }
}

/// (steps, network steps) of a ring collective over `n` ranks on `nodes` nodes.
fn ring_steps(op: CollectiveOp, n: f64, nodes: f64) -> (f64, f64) {
    match op {
        CollectiveOp::AllReduce => (2.0 * (n - 1.0), 2.0 * (nodes - 1.0)),
        CollectiveOp::ReduceScatter | CollectiveOp::AllGather => (n - 1.0, nodes - 1.0),
        _ => (n, if nodes > 1.0 { nodes } else { 0.0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Bandwidth, SimDuration};

    /// 8 GPUs of one node.
    const NODE: NcclGroup = NcclGroup {
        n: 8,
        nodes: 1,
        nics: 8,
    };

    fn model(version: NcclVersion) -> NcclModel {
        NcclModel::new(&NcclSpec {
            version,
            channels: 12,
            speed_intra: Bandwidth(21e9),
            speed_inter: Bandwidth(24e9),
            launch: SimDuration(0),
        })
    }

    /// Across nodes the graph has a channel per NIC at the NIC's speed: 16 GPUs on 2 DGX A100
    /// nodes (8 NICs each) give 8 x 24 = 192 GB/s for a ring; LL128 then min(0.92 x 192 = 176.6,
    /// 16.9 x 8 = 135.2) = 135.2. A 2-node tree raises the intra-node speed to the highest of NCCL
    /// 2.8's speeds {42, 30, 24, ...} under 2 x 24 that NVLink (12 x 21 = 252 GB/s) carries on all 8
    /// channels: 30 (8 x 42 = 336 would not fit); busBw min(8 x 30, 235) = 235, tree min(0.92 x 235,
    /// 8 x 22.5) = 180. Beyond 2 nodes, 8 x 24 = 192 and a tree min(176.6, 8 x 16) = 128. A group with
    /// one GPU per node (1 NIC) has a single 24 GB/s channel.
    #[test]
    fn graphs_across_nodes_have_a_channel_per_nic() {
        let m = model(NcclVersion::V2_8);
        let ar = |algo, proto, n, nodes, nics| {
            m.bus_bandwidth(CollectiveOp::AllReduce, algo, proto, NcclGroup { n, nodes, nics })
        };
        assert!((ar(NcclAlgorithm::Ring, Protocol::Simple, 16, 2, 8) - 192.0).abs() < 1e-9);
        assert!((ar(NcclAlgorithm::Ring, Protocol::LL128, 16, 2, 8) - 135.2).abs() < 1e-9);
        assert_eq!(m.graph(NcclAlgorithm::Tree, 2, 8), (8.0, 30.0));
        assert!((ar(NcclAlgorithm::Tree, Protocol::Simple, 16, 2, 8) - 180.0).abs() < 1e-9);
        assert!((ar(NcclAlgorithm::Tree, Protocol::Simple, 32, 4, 8) - 128.0).abs() < 1e-9);
        assert!((ar(NcclAlgorithm::Ring, Protocol::Simple, 8, 8, 1) - 24.0).abs() < 1e-9);
    }

    /// The reference file's worked example: ring LL all-reduce inside one node of 8 GPUs has NCCL
    /// latency 3.6 + 14 x 0.47 = 10.18 us.
    #[test]
    fn ring_ll_latency_in_one_node() {
        let m = model(NcclVersion::V2_8);
        let t = m.predict(CollectiveOp::AllReduce, NcclAlgorithm::Ring, Protocol::LL, NODE, 8.0);
        assert!((t.latency_s - 10.18e-6).abs() < 1e-12, "{}", t.latency_s);
    }

    /// 12 channels x 21 GB/s = 252 GB/s, capped at 235 for Simple; LL128 = min(0.92 x 235,
    /// 16.9 x 12) = 202.8 (2.8) or min(216.2, 20 x 12) = 216.2 (2.10); LL = min(235 / 4, 87.7) = 58.75.
    #[test]
    fn protocol_bandwidths_in_one_node() {
        let bus = |v, p| model(v).bus_bandwidth(CollectiveOp::AllReduce, NcclAlgorithm::Ring, p, NODE);
        assert!((bus(NcclVersion::V2_8, Protocol::Simple) - 235.0).abs() < 1e-9);
        assert!((bus(NcclVersion::V2_8, Protocol::LL128) - 202.8).abs() < 1e-9);
        assert!((bus(NcclVersion::V2_10, Protocol::LL128) - 0.92 * 235.0).abs() < 1e-9);
        assert!((bus(NcclVersion::V2_8, Protocol::LL) - 58.75).abs() < 1e-9);
    }

    /// The tuner takes LL for small messages, LL128 in the middle and Simple for large ones inside a
    /// node: at 1 GiB, Simple's 235 GB/s beats LL128's 202.8 by far more than its 22 us of extra
    /// latency; at 8 B, LL's latency wins.
    #[test]
    fn tuner_moves_from_ll_to_simple_with_size() {
        let m = model(NcclVersion::V2_8);
        let tune = |bytes: f64| {
            m.tune(
                CollectiveOp::AllReduce,
                &[NcclAlgorithm::Ring, NcclAlgorithm::Tree],
                NODE,
                bytes,
                true,
            )
        };
        assert_eq!(tune(8.0).protocol, Protocol::LL);
        // GPUs of mixed architectures: NCCL disables LL128, so a size where it won takes another
        let mid = (1..40)
            .map(|k| 2f64.powi(k))
            .find(|&b| tune(b).protocol == Protocol::LL128)
            .expect("LL128 wins somewhere");
        let mixed = m.tune(
            CollectiveOp::AllReduce,
            &[NcclAlgorithm::Ring, NcclAlgorithm::Tree],
            NODE,
            mid,
            false,
        );
        assert_ne!(mixed.protocol, Protocol::LL128);
        assert_eq!(tune(4.0 * 1024.0 * 1024.0).protocol, Protocol::LL128);
        assert_eq!(tune(1024.0 * 1024.0 * 1024.0).protocol, Protocol::Simple);
        assert_eq!(tune(1024.0 * 1024.0 * 1024.0).algorithm, NcclAlgorithm::Ring);
    }
}
