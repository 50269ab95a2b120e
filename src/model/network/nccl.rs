//! NCCL's own cost model: the tuner of the NCCL that Megatron-LM ran in 2021 (2.8.3 to 2.10.3), of
//! the H100 era (2.21.5) or the first for Blackwell (2.25.1), `src/graph/tuning.cc`; the constants
//! and formula switches per version are in
//! [`super::nccl_tables`] (2.8-2.10 transcribed in `shared/reference/nccl/nccl-2.8-2.10-tuning-model.md`).
//!
//! For each algorithm (ring; tree for all-reduce only; from 2.17 NVLS and NVLS tree where the
//! NVSwitch reduces, [`super::nvls`]) and protocol (LL, LL128, Simple) NCCL predicts a bus bandwidth
//! and a latency, and its tuner runs the one with the least predicted time
//! `latency + bytes / algorithm bandwidth`. The machine-specific inputs are what NCCL discovers at
//! run time: the channels of its topology graph and the per-channel speed inside a node and across
//! nodes, plus the fixed cost of launching one collective (host enqueue and kernel launch), which
//! NCCL's model leaves out. Those four live in the hardware file (`network.nccl`) with their fit.
//!
//! Bus bandwidth of a graph: `busBw = channels x speed` (intra-node speed up to 2 nodes, inter-node
//! beyond), capped at 235 GB/s on compute capability 8.0 (A100) up to 2.10. Inside one node the
//! graph is the hardware file's (`channels` x `speed_intra`). A graph across nodes comes from NCCL's
//! search over the NICs (`ncclTopoCompute`, src/graph/search.cc): each channel enters and leaves a
//! node through a NIC of its own at the NIC's speed, so it has one channel per distinct NIC the
//! communicator holds on a node, at `speed_inter` inside and across nodes; for a tree on up to 2
//! nodes the search's second pass then raises the intra-node speed to the highest of NCCL's speeds
//! below twice the inter-node one that the node's NVLink (`channels` x `speed_intra`) carries for
//! every channel. Then per algorithm and protocol:
//! - ring LL: `min(llMaxBw, busBw / 4)` (all-reduce or several nodes; 1/3 otherwise; 2.21: / 2);
//! - ring LL128: `min(busBw x (0.92 with 2+ ranks per node, else 0.7; 2.25: 0.92), LL128 cap x channels)`;
//! - ring Simple: `busBw`;
//! - tree: `min(busBw x 0.92, channels x perChMaxTreeBw)`, then LL `/ 3.8` (capped at llMaxBw),
//!   LL128 `x 7/9` on one node (`x 0.915`, 2.10 on: `x 120/128`, across nodes), Simple as is;
//! - NVLS (Simple, one node): `heads x min(bwIntra, bwInter)` of the NVLS graph; NVLS tree
//!   (Simple, all-reduce across nodes): `heads x min(bwIntra, bwInter, or bwInter / 2 beyond 2 nodes)`.
//!
//! The algorithm bandwidth is `busBw x n / steps` for rings (steps = 2(n-1) for all-reduce, n-1 for
//! reduce-scatter and all-gather, n otherwise), `busBw / 2` for trees, the tree's further scaled
//! by NCCL's tree correction factor for messages under 256 MiB, and `busBw x 5/6` for NVLS and NVLS
//! tree (2.25: NVLS reduce-scatter and all-gather at `busBw`).
//!
//! Latency: `baseLat[algo][proto]` plus, for rings, one hardware latency per step (NVLink steps
//! inside a node, network steps across: 2(N-1) of them for all-reduce over N nodes, 2.21: 2N; 2.25:
//! the tree's network latency where there is one rank per node; and
//! each NVLink step at least the network post overhead, 2.21: 1 us, 3 for Simple), for trees
//! `2 ((ranks per node - 1) x NVLink + log2(N) x network)`; LL's NVLink latency x 1.8 across nodes
//! (up to 2.10), and ring Simple all-reduce across nodes x 1.9 from `n/16 x 64 KiB` (2.21: x 1.4 once
//! a channel of a rank moves 64 B; "plateau effect"). NVLS: its NVLink latency alone (25 us in
//! 2.21); NVLS tree: that plus `2 log2(N)` network latencies.

use super::nccl_tables::{self, Plateau, Table};
use super::nvls;
use crate::config::{NcclHost, NcclSpec};
use crate::ops::CollectiveOp;

/// NCCL's algorithms (CollNet needs SHARP switches in the InfiniBand fabric, which the machines
/// modelled do not use; without CollNet NCCL runs NVLS only inside one node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NcclAlgorithm {
    /// Double binary trees across nodes, chains inside (all-reduce only).
    Tree,
    /// Rings.
    Ring,
    /// NVLink SHARP inside one node: the NVSwitch reduces and multicasts.
    Nvls,
    /// NVLink SHARP inside each node, trees across nodes (all-reduce only).
    NvlsTree,
}

impl NcclAlgorithm {
    /// Name as NCCL_ALGO spells it.
    pub fn name(self) -> &'static str {
        match self {
            NcclAlgorithm::Tree => "Tree",
            NcclAlgorithm::Ring => "Ring",
            NcclAlgorithm::Nvls => "NVLS",
            NcclAlgorithm::NvlsTree => "NVLSTree",
        }
    }
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

/// A communicator as NCCL's model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NcclGroup {
    /// Ranks.
    pub n: u32,
    /// Nodes spanned.
    pub nodes: u32,
    /// Distinct NICs it holds on a node (its channels across nodes).
    pub nics: u32,
    /// Fewest of its ranks on one node (NVLS heads).
    pub per_node: u32,
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
    /// Whether the NVSwitch reduces and multicasts (`node.nvlink.sharp`).
    sharp: bool,
}

impl NcclModel {
    /// The model a hardware file's `network.nccl` describes, on a machine of `host`'s GPU
    /// generation and CPU vendor whose NVSwitch has NVLink SHARP where `sharp`
    /// (`node.nvlink.sharp`; used only by versions that have NVLS).
    pub fn new(spec: &NcclSpec, sharp: bool, host: NcclHost) -> Self {
        NcclModel {
            table: nccl_tables::table(spec.version, host),
            channels: spec.channels as f64,
            speed_intra: spec.speed_intra.bytes_per_s() / 1e9,
            speed_inter: spec.speed_inter.bytes_per_s() / 1e9,
            launch_s: spec.launch.as_secs_f64(),
            sharp,
        }
    }

    /// The graph's (channels, speed in GB/s) that NCCL's bandwidth formula uses for a ring or tree
    /// on `nodes` nodes, where the communicator holds `nics` distinct NICs per node.
    pub(super) fn graph(&self, algo: NcclAlgorithm, nodes: u32, nics: u32) -> (f64, f64) {
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
            .search_speeds
            .iter()
            .copied()
            .find(|&s| s < 2.0 * self.speed_inter && channels * s <= nvlink);
        (channels, raised.unwrap_or(self.speed_inter).max(self.speed_inter))
    }

    /// NCCL's NVLS graph for a group, where this NCCL and machine run NVLS for it.
    fn nvls_graph(&self, group: NcclGroup) -> Option<nvls::NvlsGraph> {
        let t = self.table.nvls.as_ref().filter(|_| self.sharp)?;
        nvls::graph(
            t,
            self.channels * self.speed_intra,
            self.speed_inter,
            group.per_node,
            group.nics,
            group.nodes,
        )
    }

    /// Whether NCCL's tuner considers an algorithm for this collective and group (`uniform`: every
    /// GPU of one architecture, which NVLS, like LL128, needs).
    fn available(&self, op: CollectiveOp, algo: NcclAlgorithm, group: NcclGroup, uniform: bool) -> bool {
        let nvls = || uniform && self.nvls_graph(group).is_some();
        match algo {
            NcclAlgorithm::Ring => true,
            NcclAlgorithm::Tree => op == CollectiveOp::AllReduce,
            // NVLS across nodes needs CollNet; reduce-scatter and all-gather on one node only (2.21)
            NcclAlgorithm::Nvls => {
                group.nodes == 1
                    && matches!(
                        op,
                        CollectiveOp::AllReduce | CollectiveOp::ReduceScatter | CollectiveOp::AllGather
                    )
                    && nvls()
            }
            NcclAlgorithm::NvlsTree => group.nodes > 1 && op == CollectiveOp::AllReduce && nvls(),
        }
    }

    /// NCCL's bus bandwidth (GB/s) of an algorithm and protocol for a group.
    fn bus_bandwidth(&self, op: CollectiveOp, algo: NcclAlgorithm, proto: Protocol, group: NcclGroup) -> f64 {
        let NcclGroup { n, nodes, nics, .. } = group;
        let t = self.table;
        let index = (nodes.min(3) - 1) as usize;
        if matches!(algo, NcclAlgorithm::Nvls | NcclAlgorithm::NvlsTree) {
            let Some(g) = self.nvls_graph(group).filter(|_| proto == Protocol::Simple) else {
                return 0.0;
            };
            let inter = if algo == NcclAlgorithm::NvlsTree && nodes > 2 {
                g.inter / 2.0
            } else {
                g.inter
            };
            return g.channels * g.intra.min(inter);
        }
        let (channels, speed) = self.graph(algo, nodes, nics);
        let bus = (channels * speed).min(t.bus_cap);
        let op_index = match op {
            CollectiveOp::AllReduce => 0,
            CollectiveOp::ReduceScatter => 1,
            CollectiveOp::AllGather => 2,
            _ => 3,
        };
        let per_node = n / nodes.max(1);
        match (algo, proto) {
            (NcclAlgorithm::Ring, Protocol::LL) => {
                let share = if nodes > 1 || op == CollectiveOp::AllReduce {
                    t.ring_ll_share[0]
                } else {
                    t.ring_ll_share[1]
                };
                (bus * share).min(t.ll_max_bw[index])
            }
            (NcclAlgorithm::Ring, Protocol::LL128) => {
                let share = if per_node < 2 { t.ring_ll128_one_per_node } else { 0.92 };
                (bus * share).min(t.ring_ll128_per_channel[op_index][index] * channels)
            }
            (NcclAlgorithm::Ring, Protocol::Simple) => bus,
            (_, _) => {
                let tree = (bus * 0.92).min(channels * t.tree_max_bw_per_channel[index]);
                match proto {
                    Protocol::LL => (tree / 3.8).min(t.ll_max_bw[index]),
                    Protocol::LL128 => (tree * if nodes == 1 { 7.0 / 9.0 } else { t.tree_ll128_multi_node })
                        .min(t.tree_ll128_per_channel[index] * channels),
                    Protocol::Simple => tree,
                }
            }
        }
    }

    /// NCCL's latency (us, without the launch cost) of an algorithm and protocol.
    fn latency_us(&self, op: CollectiveOp, algo: NcclAlgorithm, proto: Protocol, group: NcclGroup, bytes: f64) -> f64 {
        let t = self.table;
        let NcclGroup { n, nodes, nics, .. } = group;
        let levels = (nodes as f64).log2().floor();
        match (&t.nvls, algo) {
            (Some(v), NcclAlgorithm::Nvls) => return v.nvlink_latency,
            (Some(v), NcclAlgorithm::NvlsTree) => return v.tree_nvlink_latency + 2.0 * levels * v.tree_net_latency,
            (None, NcclAlgorithm::Nvls | NcclAlgorithm::NvlsTree) => return 0.0,
            _ => {}
        }
        let (a, p) = (algo as usize, proto as usize);
        let mut intra = t.nvlink_latency[a][p];
        // 2.25: "with ppn=1 latencies are fully exposed, use the Tree network latency"
        let exposed = t.exposed_net_latency && n == nodes;
        let inter = t.net_latency[if exposed { NcclAlgorithm::Tree as usize } else { a }][p];
        if nodes > 1 && proto == Protocol::LL {
            intra *= t.ll_nvlink_multi_node;
        }
        let (n, nodes_f) = (n as f64, nodes as f64);
        let mut latency = t.base_latency[a][p];
        if algo == NcclAlgorithm::Tree {
            return latency + 2.0 * ((n / nodes_f - 1.0) * intra + levels * inter);
        }
        let (steps, mut inter_steps) = ring_steps(op, n, nodes_f);
        if op == CollectiveOp::AllReduce && nodes > 1 {
            inter_steps += t.ring_allreduce_extra_net_steps;
        }
        if nodes > 1 {
            let overhead = t.net_overhead * if proto == Protocol::Simple { 3.0 } else { 1.0 };
            intra = intra.max(overhead);
        }
        latency += (steps - inter_steps) * intra + inter_steps * inter;
        if proto == Protocol::Simple && nodes > 1 && op == CollectiveOp::AllReduce {
            let (plateau, factor) = match t.plateau {
                Plateau::FromRanks { factor } => (bytes >= 65536.0 * n / 16.0, factor),
                // comm->nChannels: the ring graph's channels doubled (connect.cc), at most MAXCHANNELS
                Plateau::FromChannelBytes { factor } => {
                    let channels = (2.0 * nics.max(1) as f64).min(t.max_channels as f64);
                    (bytes / (channels * n) >= 64.0, factor)
                }
            };
            if plateau {
                latency *= factor;
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
            NcclAlgorithm::Nvls | NcclAlgorithm::NvlsTree => {
                let gather = matches!(op, CollectiveOp::ReduceScatter | CollectiveOp::AllGather);
                bus * self
                    .table
                    .nvls
                    .as_ref()
                    .map_or(0.0, |v| if gather { v.gather_bus_to_alg } else { v.bus_to_alg })
            }
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
            latency_s: self.launch_s + self.latency_us(op, algo, proto, group, bytes) * 1e-6,
            bandwidth_s: if alg > 0.0 { bytes / (alg * 1e9) } else { f64::INFINITY },
        }
    }

    /// What NCCL's tuner runs: the least predicted time over the protocols and the algorithms
    /// `allowed` that apply (tree only for all-reduce; NVLS where the machine and version have it);
    /// LL128 and NVLS only where `uniform` (every GPU of the group of one architecture: NCCL
    /// disables LL128 for mixed ones, and NVLS needs compute capability 9.0 on all).
    pub fn tune(
        &self,
        op: CollectiveOp,
        allowed: &[NcclAlgorithm],
        group: NcclGroup,
        bytes: f64,
        uniform: bool,
    ) -> Tuned {
        let mut best: Option<Tuned> = None;
        for &algo in allowed {
            if !self.available(op, algo, group, uniform) {
                continue;
            }
            for proto in Protocol::ALL {
                if proto == Protocol::LL128 && !uniform {
                    continue;
                }
                let t = self.predict(op, algo, proto, group, bytes);
                if t.bandwidth_s.is_finite() && best.is_none_or(|b| t.time_s() < b.time_s()) {
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

    /// Thread blocks NCCL launches for an NVLS or NVLS-tree collective (`comm->nvlsChannels`; 0
    /// for versions without NVLS).
    pub fn nvls_kernel_channels(&self) -> u32 {
        self.table.nvls.as_ref().map_or(0, |v| v.kernel_channels)
    }

    /// NCCL's `MAXCHANNELS`: the most channels a communicator has.
    pub fn max_channels(&self) -> u32 {
        self.table.max_channels
    }

    /// NCCL's bus-bandwidth cap of the Simple protocol on one node (channels x speed, at most the
    /// version's cap), bytes/s: what one GPU's NCCL kernels can move.
    pub fn simple_bus_bandwidth(&self) -> f64 {
        (self.channels * self.speed_intra).min(self.table.bus_cap) * 1e9
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
pub(super) mod tests {
    use super::*;
    use crate::config::NcclVersion;
    use crate::units::{Bandwidth, SimDuration};

    /// 8 GPUs of one node.
    const NODE: NcclGroup = NcclGroup {
        n: 8,
        nodes: 1,
        nics: 8,
        per_node: 8,
    };

    fn model(version: NcclVersion) -> NcclModel {
        NcclModel::new(
            &NcclSpec {
                version,
                channels: 12,
                speed_intra: Bandwidth(21e9),
                speed_inter: Bandwidth(24e9),
                launch: SimDuration(0),
                sm_contention: true,
            },
            false,
            NcclHost::native(version),
        )
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
            m.bus_bandwidth(
                CollectiveOp::AllReduce,
                algo,
                proto,
                NcclGroup {
                    n,
                    nodes,
                    nics,
                    per_node: n / nodes,
                },
            )
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

    /// NCCL 2.21 on a DGX H100 (hardware/dgx-h100.yaml's graph: 12 channels x 30 GB/s inside a node,
    /// 48 GB/s per NIC channel), without the launch cost.
    pub(in crate::model::network) fn h100(sharp: bool) -> NcclModel {
        NcclModel::new(
            &NcclSpec {
                version: NcclVersion::V2_21,
                channels: 12,
                speed_intra: Bandwidth(30e9),
                speed_inter: Bandwidth(48e9),
                launch: SimDuration(0),
                sm_contention: true,
            },
            sharp,
            NcclHost::native(NcclVersion::V2_21),
        )
    }

    const ALL: [NcclAlgorithm; 4] = [
        NcclAlgorithm::Tree,
        NcclAlgorithm::Ring,
        NcclAlgorithm::Nvls,
        NcclAlgorithm::NvlsTree,
    ];
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn group(n: u32, nodes: u32) -> NcclGroup {
        NcclGroup {
            n,
            nodes,
            nics: 8.min(n / nodes),
            per_node: n / nodes,
        }
    }

    /// NVLS all-reduce of 1 GiB over 8 H100s: the NVLS graph has 8 channels at min(bwIntra 40,
    /// bwInter 60) GB/s (nvls.rs), busBw 8 x 40 = 320 GB/s, algorithm bandwidth x 5/6 = 266.67 GB/s;
    /// latency hwLat[NVLINK][NVLS][Simple] = 25 us (baseLat 0). Time = 25 us + 2^30 B / 266.67 GB/s
    /// = 25 us + 4026.53 us = 4051.53 us. nccl-tests' busbw for it: 2^30 / 4051.53 us x 2 x 7/8 =
    /// 463.8 GB/s (published: ~480).
    #[test]
    fn nvls_allreduce_time_on_one_h100_node() {
        let t = h100(true).predict(
            CollectiveOp::AllReduce,
            NcclAlgorithm::Nvls,
            Protocol::Simple,
            NODE,
            GIB,
        );
        assert!((t.latency_s - 25e-6).abs() < 1e-12, "{}", t.latency_s);
        assert!((t.time_s() - 4051.53e-6).abs() < 0.01e-6, "{}", t.time_s());
    }

    /// 2.21 on H100, one node: no 235 GB/s cap (ring Simple 12 x 30 = 360), ring LL min(141,
    /// 360 / 2), ring LL128 min(0.92 x 360 = 331.2, 12 x 36.7 = 440.4); ring LL latency 6.6 + 14 x 0.6
    /// = 15 us. Across 2 nodes (8 NICs at 48) a ring Simple all-reduce has 2N = 4 network steps and
    /// 26 NVLink steps at max(3.4, 3 x 1 us network overhead) us: (8.4 + 26 x 3.4 + 4 x 14) x 1.4
    /// (plateau) = 213.92 us; LL: 6.6 + 26 x max(0.6, 1) + 4 x 2.7 = 43.4 us. NVLS tree: 25 + 2 x
    /// log2(2) x 14 = 53 us.
    #[test]
    fn nccl_2_21_constants_on_h100() {
        let m = h100(true);
        let bus = |p| m.bus_bandwidth(CollectiveOp::AllReduce, NcclAlgorithm::Ring, p, NODE);
        assert!((bus(Protocol::Simple) - 360.0).abs() < 1e-9);
        assert!((bus(Protocol::LL) - 141.0).abs() < 1e-9);
        assert!((bus(Protocol::LL128) - 331.2).abs() < 1e-9);
        let lat = |algo, proto, g| m.latency_us(CollectiveOp::AllReduce, algo, proto, g, GIB);
        assert!((lat(NcclAlgorithm::Ring, Protocol::LL, NODE) - 15.0).abs() < 1e-9);
        assert!((lat(NcclAlgorithm::Ring, Protocol::Simple, group(16, 2)) - 213.92).abs() < 1e-9);
        assert!((lat(NcclAlgorithm::Ring, Protocol::LL, group(16, 2)) - 43.4).abs() < 1e-9);
        assert!((lat(NcclAlgorithm::NvlsTree, Protocol::Simple, group(16, 2)) - 53.0).abs() < 1e-9);
    }

    /// The tuner on one H100 node: LL's 15 us beat NVLS's 25 for tiny messages; at 1 GiB NVLS
    /// (266.7 GB/s) beats ring Simple (360 x 8/14 = 205.7). Not without NVLink SHARP, not with a
    /// version before NVLS, not for mixed GPUs, not for 2 GPUs (NCCL needs 3). With 4 GPUs NVLS has
    /// 4 x 60 x 5/6 = 200 GB/s against the ring's 360 x 4/6 = 240: ring. Reduce-scatter: NVLS's 266.7
    /// against the ring's 360 x 8/7 = 411: ring.
    #[test]
    fn tuner_picks_nvls_inside_an_h100_node() {
        let ar = |m: &NcclModel, g, bytes, uniform| m.tune(CollectiveOp::AllReduce, &ALL, g, bytes, uniform);
        let (on, off) = (h100(true), h100(false));
        assert_eq!(ar(&on, NODE, 8.0, true).algorithm, NcclAlgorithm::Ring);
        assert_eq!(ar(&on, NODE, 8.0, true).protocol, Protocol::LL);
        assert_eq!(ar(&on, NODE, GIB, true).algorithm, NcclAlgorithm::Nvls);
        assert_eq!(ar(&off, NODE, GIB, true).algorithm, NcclAlgorithm::Ring);
        assert_eq!(ar(&on, NODE, GIB, false).algorithm, NcclAlgorithm::Ring);
        assert_eq!(ar(&on, group(2, 1), GIB, true).algorithm, NcclAlgorithm::Ring);
        assert_eq!(ar(&on, group(4, 1), GIB, true).algorithm, NcclAlgorithm::Ring);
        let a100 = NcclModel::new(
            &NcclSpec {
                version: NcclVersion::V2_10,
                channels: 12,
                speed_intra: Bandwidth(21e9),
                speed_inter: Bandwidth(24e9),
                launch: SimDuration(0),
                sm_contention: true,
            },
            true,
            NcclHost::native(NcclVersion::V2_10),
        );
        assert_eq!(ar(&a100, NODE, GIB, true).algorithm, NcclAlgorithm::Ring);
        let rs = on.tune(CollectiveOp::ReduceScatter, &ALL, NODE, GIB, true);
        assert_eq!((rs.algorithm, rs.protocol), (NcclAlgorithm::Ring, Protocol::Simple));
    }

    /// Across H100 nodes NCCL has NVLS tree (all-reduce only): 2 nodes, 8 channels x min(40, 48)
    /// x 5/6 = 266.7 GB/s against the ring's 8 x 48 x 16/30 = 204.8: NVLS tree at 1 GiB. On 4 nodes
    /// NVLS tree halves its inter-node speed: 8 x 24 x 5/6 = 160 against the ring's 384 x 32/62 =
    /// 198.2, so the ring runs 8 GiB. One GPU per node (data-parallel groups at tensor
    /// parallelism 8): no NVLS.
    #[test]
    fn tuner_picks_nvls_tree_across_two_h100_nodes() {
        let m = h100(true);
        let ar = |g, bytes| m.tune(CollectiveOp::AllReduce, &ALL, g, bytes, true).algorithm;
        assert_eq!(ar(group(16, 2), GIB), NcclAlgorithm::NvlsTree);
        assert_eq!(ar(group(32, 4), 8.0 * GIB), NcclAlgorithm::Ring);
        assert_ne!(ar(group(8, 8), GIB), NcclAlgorithm::NvlsTree);
        let ag = m.tune(CollectiveOp::AllGather, &ALL, group(16, 2), GIB, true);
        assert_eq!(ag.algorithm, NcclAlgorithm::Ring);
    }

    /// NCCL 2.25 on a DGX B200 (hardware/dgx-b200.yaml's graph: 16 channels x 45 GB/s inside a node,
    /// 48 GB/s per NIC channel), without the launch cost.
    pub(in crate::model::network) fn b200() -> NcclModel {
        NcclModel::new(
            &NcclSpec {
                version: NcclVersion::V2_25,
                channels: 16,
                speed_intra: Bandwidth(45e9),
                speed_inter: Bandwidth(48e9),
                launch: SimDuration(0),
                sm_contention: true,
            },
            true,
            NcclHost::native(NcclVersion::V2_25),
        )
    }

    /// NCCL 2.25's Blackwell rows on B200s. One node: ring Simple busBw 16 x 45 = 720 GB/s; LL min(2
    /// x 141 = 282, 720 / 2 = 360) = 282; LL128 min(0.92 x 720 = 662.4, 16 x 2 x 36.7 = 1174.4) =
    /// 662.4; latencies baseLat + 14 steps x hwLat[NVLINK][RING]: LL 6.6 + 14 x 0.6 = 15 us, LL128
    /// 14 + 14 x 1.9 = 40.6, Simple 8.4 + 14 x 3.4 = 56. NVLS: one channel per GPU at the fastest of
    /// sm100SpeedArrayIntra {90, 80, ...} with 9 s <= 720: 80 (9 x 90 = 810 does not fit), busBw
    /// 8 x 80 = 640 GB/s, algorithm bandwidth x 5/6 = 533.33, latency 25 us: 1 GiB takes 25 us +
    /// 2^30 B / 533.33 GB/s = 25 + 2013.27 = 2038.27 us (nccl-tests busbw 2^30 / 2038.27 us x 2 x
    /// 7/8 = 921.8 GB/s).
    ///
    /// Two nodes (8 NICs): the tree graph keeps the NIC speed 48 (the first of sm100SpeedArrayInter
    /// under 2 x 48 is 48 itself), busBw 8 x 48 = 384; tree Simple min(0.92 x 384 = 353.28, 8 x 2 x
    /// 41.4 = 662.4) = 353.28, LL min(353.28 / 3.8 = 93.0, llMaxBw Intel N2 39) = 39, LL128
    /// min(353.28 x 120/128 = 331.2, 8 x 2 x 36.7 = 587.2) = 331.2. Tree latency baseLat + 2 ((8 - 1)
    /// x NVLink + log2(2) x network): Simple 8.4 + 2 (7 x 4 + 14) = 92.4 us (2.21: 0 + 2 (7 x 28 +
    /// 28) = 448), LL 6.8 + 2 (7 x 0.6 + 5) = 25.2, LL128 14 + 2 (7 x 1.25 + 8.5) = 48.5. NVLS tree:
    /// 8 heads at 48 (c = floor(720 / 48) - 1 = 14, capped at 8 heads), busBw 384, latency 25 + 2 x
    /// 14 = 53 us. A ring Simple all-reduce (busBw 384) now has 2(N-1) = 2 network steps: (8.4 + 28
    /// x max(3.4, 3 x 1) + 2 x 14) x 1.4 = 184.24 us.
    #[test]
    fn nccl_2_25_constants_on_b200() {
        use NcclAlgorithm::{Nvls, NvlsTree, Ring, Tree};
        use Protocol::{Simple, LL, LL128};
        let m = b200();
        let two = group(16, 2);
        assert_eq!(m.graph(Tree, 2, 8), (8.0, 48.0));
        // (group, algorithm, protocol, busBw GB/s, latency us)
        let expected = [
            (NODE, Ring, Simple, 720.0, 56.0),
            (NODE, Ring, LL, 282.0, 15.0),
            (NODE, Ring, LL128, 662.4, 40.6),
            (NODE, Nvls, Simple, 640.0, 25.0),
            (two, Tree, Simple, 353.28, 92.4),
            (two, Tree, LL, 39.0, 25.2),
            (two, Tree, LL128, 331.2, 48.5),
            (two, NvlsTree, Simple, 384.0, 53.0),
            (two, Ring, Simple, 384.0, 184.24),
        ];
        for (g, algo, proto, bus, lat) in expected {
            let got = m.bus_bandwidth(CollectiveOp::AllReduce, algo, proto, g);
            assert!((got - bus).abs() < 1e-9, "{algo:?}/{proto:?} on {g:?}: busBw {got}");
            let got = m.latency_us(CollectiveOp::AllReduce, algo, proto, g, GIB);
            assert!((got - lat).abs() < 1e-9, "{algo:?}/{proto:?} on {g:?}: latency {got}");
        }
        let old = h100(true).latency_us(CollectiveOp::AllReduce, Tree, Simple, two, GIB);
        assert!((old - 448.0).abs() < 1e-9, "{old}");
        let t = m.predict(CollectiveOp::AllReduce, Nvls, Simple, NODE, GIB);
        assert!((t.time_s() - 2038.27e-6).abs() < 0.01e-6, "{}", t.time_s());
    }

    /// 2.25's formula switches, against 2.21 on the same graph. One rank per node (8 nodes, a NIC
    /// each, 48 GB/s): ring LL128 min(0.92 x 48 = 44.16, 73.4) = 44.16 (2.21: min(0.7 x 48 = 33.6,
    /// 36.7) = 33.6); ring LL all-reduce latency 6.6 + 14 network steps x the tree's 5 us = 76.6 us
    /// (2.21: 6.6 + (14 - 16) x max(0.6, 1) + 16 x 2.7 = 47.8). NVLS reduce-scatter of 1 GiB on one
    /// node keeps busBw 640 as its algorithm bandwidth: 25 us + 2^30 B / 640 GB/s = 1702.72 us (x 5/6
    /// under 2.21's table); the ring's 720 x 8/7 = 822.9 GB/s after 8.4 + 7 x 3.4 = 32.2 us still wins.
    #[test]
    fn nccl_2_25_formula_changes() {
        let (new, old) = (b200(), h100(true));
        let lone = NcclGroup {
            n: 8,
            nodes: 8,
            nics: 1,
            per_node: 1,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let ll128 =
            |m: &NcclModel| m.bus_bandwidth(CollectiveOp::AllReduce, NcclAlgorithm::Ring, Protocol::LL128, lone);
        assert!(close(ll128(&new), 44.16));
        assert!(close(ll128(&old), 33.6));
        let ll = |m: &NcclModel| m.latency_us(CollectiveOp::AllReduce, NcclAlgorithm::Ring, Protocol::LL, lone, GIB);
        assert!(close(ll(&new), 76.6));
        assert!(close(ll(&old), 47.8));
        let rs = new.predict(
            CollectiveOp::ReduceScatter,
            NcclAlgorithm::Nvls,
            Protocol::Simple,
            NODE,
            GIB,
        );
        assert!((rs.time_s() - 1702.72e-6).abs() < 0.01e-6, "{}", rs.time_s());
        let tuned = new.tune(CollectiveOp::ReduceScatter, &ALL, NODE, GIB, true);
        assert_eq!(
            (tuned.algorithm, tuned.protocol),
            (NcclAlgorithm::Ring, Protocol::Simple)
        );
    }

    /// The tuner on B200s: one node, ring LL up to 2 MiB (15 us against NVLS's 25), NVLS from 4 MiB
    /// (at 4 MiB NVLS 25 + 7.86 = 32.9 us against LL128's 40.6 + 11.1 = 51.7 and LL's 15 + 26.0 =
    /// 41.0); 2 nodes, NVLS tree at 1 GiB (320 GB/s against the ring's 8 x 48 x 16/30 = 204.8).
    #[test]
    fn tuner_on_b200() {
        let m = b200();
        let ar = |g, bytes| {
            let t = m.tune(CollectiveOp::AllReduce, &ALL, g, bytes, true);
            (t.algorithm, t.protocol)
        };
        const MIB: f64 = 1024.0 * 1024.0;
        assert_eq!(ar(NODE, 2.0 * MIB), (NcclAlgorithm::Ring, Protocol::LL));
        assert_eq!(ar(NODE, 4.0 * MIB), (NcclAlgorithm::Nvls, Protocol::Simple));
        assert_eq!(ar(NODE, GIB), (NcclAlgorithm::Nvls, Protocol::Simple));
        assert_eq!(ar(group(16, 2), GIB), (NcclAlgorithm::NvlsTree, Protocol::Simple));
    }
}
