//! Contention-free communication models: alpha-beta per collective algorithm, and free.
//!
//! The analytic model charges each collective `latency + bandwidth time` of the algorithm that
//! [`algorithms::choose`] picks (see that module for the formulas), and each transfer its path's
//! latency plus bytes over the path's bandwidth (NVLink inside a node, one NIC across nodes). It has
//! no contention but one: a ring across nodes runs at its share of the NICs it uses when every GPU
//! of its nodes is in a group like it at once ([`Placement::nic_sharing`]: the data-parallel
//! phase, where NCCL 2.8 puts the groups of a PCIe switch's GPUs on one NIC).

use super::algorithms::{self, Algorithm, GroupShape, LinkCosts};
use super::{ClosedForm, Communication};
use crate::config::{AlgorithmChoice, HardwareSpec};
use crate::model::cluster::Placement;

/// Alpha-beta model with no contention.
#[derive(Clone, Debug)]
pub struct AnalyticNetwork {
    placement: Placement,
    costs: LinkCosts,
    choice: AlgorithmChoice,
    storage: Option<crate::config::StorageSpec>,
}

impl AnalyticNetwork {
    /// The model for a machine, with the algorithm choice of its YAML.
    pub fn new(hw: &HardwareSpec) -> Self {
        AnalyticNetwork {
            placement: Placement::new(hw),
            costs: LinkCosts::new(hw),
            choice: hw.network.algorithm,
            storage: hw.storage.clone(),
        }
    }

    /// How a group of ranks sits on the nodes.
    pub fn shape(&self, ranks: &[u32]) -> GroupShape {
        self.placement.shape(ranks)
    }

    /// Seconds for a communication.
    pub fn seconds(&self, comm: &Communication<'_>) -> f64 {
        match *comm {
            Communication::Collective { op, ranks, bytes } => {
                let shape = self.shape(ranks);
                let plan = algorithms::plan(op, self.choice, &shape, bytes as f64, &self.costs);
                if shape.nodes <= 1 || plan.algorithm != Algorithm::Ring {
                    return plan.time_s();
                }
                // a ring across nodes: its channels at what each NIC gives one group when the groups
                // of a data-parallel phase all reduce at once (NCCL may put several on one NIC), and
                // through the CPU's rate where the ring leaves that way
                let c = &self.costs;
                let cpu = c.nic_through_cpu.filter(|_| shape.through_cpu).unwrap_or(f64::INFINITY);
                let sharing = self.placement.nic_sharing(ranks) as f64;
                let channels = c.ring_channels(&shape) as f64;
                let bw = |nic: f64| c.nvlink_bw.min(channels * nic);
                let slower = bw(c.nic_bw) / bw(c.nic_bw.min(cpu) / sharing);
                plan.latency_s + (plan.link_s * slower).max(plan.protocol_s)
            }
            // one node's I/O alone: no other node shares the filesystem in this contention-free model
            Communication::Storage { bytes, write, .. } => match &self.storage {
                Some(st) => {
                    let dir = if write {
                        crate::model::storage::Direction::Write
                    } else {
                        crate::model::storage::Direction::Read
                    };
                    crate::model::storage::transfer_seconds(st, bytes as f64, 1, dir)
                }
                None => 0.0,
            },
            Communication::Transfer { src, dst, bytes } => {
                let same = self.placement.node(src) == self.placement.node(dst);
                let (latency, bw) = algorithms::transfer_cost(same, bytes as f64, &self.costs);
                latency + bw
            }
        }
    }
}

impl ClosedForm for AnalyticNetwork {
    fn model_name(&self) -> &'static str {
        "analytic"
    }
    fn comm_seconds(&self, comm: &Communication<'_>) -> f64 {
        self.seconds(comm)
    }
}

/// Every communication completes the moment it starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdealNetwork;

impl ClosedForm for IdealNetwork {
    fn model_name(&self) -> &'static str {
        "ideal"
    }
    fn comm_seconds(&self, _comm: &Communication<'_>) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, Document};
    use crate::ops::CollectiveOp;

    fn a100(choice: AlgorithmChoice) -> AnalyticNetwork {
        let doc = Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap();
        let mut net = AnalyticNetwork::new(&HardwareSpec::from_document(&doc).unwrap());
        net.choice = choice;
        net
    }

    fn allreduce_seconds(net: &AnalyticNetwork, ranks: &[u32], bytes: u64) -> f64 {
        net.seconds(&Communication::Collective {
            op: CollectiveOp::AllReduce,
            ranks,
            bytes,
        })
    }

    fn busbw(net: &AnalyticNetwork, ranks: &[u32], bytes: u64) -> f64 {
        let n = ranks.len() as f64;
        let t = net.seconds(&Communication::Collective {
            op: CollectiveOp::AllReduce,
            ranks,
            bytes,
        });
        bytes as f64 / t * 2.0 * (n - 1.0) / n
    }

    /// Without `network.nccl`, a ring all-reduce is alpha-beta per step: 8 GPUs in one node, 1 GiB:
    /// 2 x 7 steps of 2 us + 2 x 7/8 x 2^30 B / 300 GB/s (NVLink carries its physical bandwidth).
    #[test]
    fn ring_allreduce_time_is_alpha_beta_without_nccl() {
        let mut net = a100(AlgorithmChoice::Auto);
        net.costs.nccl = None;
        let ranks: Vec<u32> = (0..8).collect();
        let s = (1u64 << 30) as f64;
        let expected = 14.0 * 2e-6 + 1.75 * s / 300e9;
        let got = allreduce_seconds(&net, &ranks, 1 << 30);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    /// With NCCL 2.8 (12 channels x 21 GB/s, launch 10 us), 1 GiB over 8 GPUs runs ring/Simple: latency
    /// 10 + 8.4 + 14 x 3.4 = 66 us, bandwidth min(252, 235) GB/s bus = 235 x 8/14 GB/s algorithm
    /// bandwidth, slower than NVLink's 300 x 8/14: so 66 us + 2^30 B / (134.29 GB/s).
    #[test]
    fn ring_allreduce_time_follows_nccl() {
        let net = a100(AlgorithmChoice::Auto);
        let ranks: Vec<u32> = (0..8).collect();
        let s = (1u64 << 30) as f64;
        let expected = 66e-6 + s / (235e9 * 8.0 / 14.0);
        let got = allreduce_seconds(&net, &ranks, 1 << 30);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn ring_bus_bandwidth_matches_nccl_tests_on_dgx_a100() {
        let net = a100(AlgorithmChoice::Ring);
        // intra-node: NCCL's 235 GB/s cap at large sizes (nccl-tests: 230-235 GB/s)
        let intra: Vec<u32> = (0..8).collect();
        let bw = busbw(&net, &intra, 8 << 30);
        assert!((bw / 235e9 - 1.0).abs() < 0.01, "{bw}");
        // 2 and 8 full nodes: busbw -> 8 NICs x 24 GB/s = 192 GB/s (nccl issue 812), less latency
        for nodes in [2u32, 8] {
            let ranks: Vec<u32> = (0..nodes * 8).collect();
            let bw = busbw(&net, &ranks, 8 << 30);
            assert!((bw / 192e9 - 1.0).abs() < 0.05, "{nodes} nodes: {bw}");
        }
        // one GPU per node (a data-parallel group when tensor parallelism fills the node): a single
        // NIC, 24 GB/s; but with every GPU of the node in such a group at once, NCCL 2.8 puts the
        // groups of GPUs 0 and 1 (one PCIe switch, NICs 0 and 1) both on NIC 0: 12 GB/s each, as the
        // flow model has them. NCCL 2.10 rotates the NICs by the GPU, so each group has its own.
        let rail: Vec<u32> = (0..16).map(|n| n * 8).collect();
        let bw = busbw(&net, &rail, 8 << 30);
        assert!((bw / 12e9 - 1.0).abs() < 0.02, "{bw}");
        let mut doc = Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap();
        doc.apply(&crate::config::Override::parse("hardware.network.nccl.version=\"2.10\"").unwrap())
            .unwrap();
        let mut rotated = AnalyticNetwork::new(&HardwareSpec::from_document(&doc).unwrap());
        rotated.choice = AlgorithmChoice::Ring;
        let bw = busbw(&rotated, &rail, 8 << 30);
        assert!((bw / 24e9 - 1.0).abs() < 0.02, "{bw}");
    }

    /// The groups of a data-parallel phase on NCCL 2.8 (DGX A100: GPUs 2j and 2j+1 behind one PCIe
    /// switch with NICs 2j and 2j+1), each priced with the others running: GPU 0's group of one GPU
    /// a node shares NIC 0 with GPU 1's (2); with tensor parallelism 2 the groups {0, 2, 4, 6} and
    /// {1, 3, 5, 7} both take NICs 0, 2, 4, 6 (2); a whole node's group has the 8 NICs to itself (1);
    /// inside one node, or with unevenly spaced members, no NIC is counted (1).
    #[test]
    fn data_parallel_groups_share_the_nics_nccl_gives_them() {
        let net = a100(AlgorithmChoice::Ring);
        let across =
            |locals: &[u32]| -> Vec<u32> { (0..2).flat_map(|n| locals.iter().map(move |l| n * 8 + l)).collect() };
        let sharing = |ranks: &[u32]| net.placement.nic_sharing(ranks);
        assert_eq!(sharing(&across(&[0])), 2);
        assert_eq!(sharing(&across(&[0, 2, 4, 6])), 2);
        assert_eq!(sharing(&across(&[0, 4])), 2);
        // every group of a phase alike: GPU 1's and GPU 7's, the odd GPUs' and the upper half's
        assert_eq!(sharing(&across(&[1])), 2);
        assert_eq!(sharing(&across(&[7])), 2);
        assert_eq!(sharing(&across(&[1, 3, 5, 7])), 2);
        assert_eq!(sharing(&across(&[3, 7])), 2);
        // half a node (4 GPUs on 2 switches, NICs 4-7 in index order): 4 NICs to itself
        assert_eq!(sharing(&across(&[4, 5, 6, 7])), 1);
        assert_eq!(sharing(&across(&[0, 1, 2, 3, 4, 5, 6, 7])), 1);
        assert_eq!(sharing(&[0, 2, 4, 6]), 1);
        assert_eq!(sharing(&across(&[0, 1, 5])), 1);
    }

    #[test]
    fn auto_prefers_fewer_network_steps_at_scale() {
        // 64 nodes, 256 MiB: NCCL's ring/LL128 latency is 10 + 1022 - 126 = 896 NVLink steps x 1.9 us
        // + 126 network steps x 4 us = 2.21 ms (ring/Simple's, with its x 1.9 plateau, more); its
        // tree/Simple latency 2 (7 x 28 + 6 x 28) = 728 us, for about the same per-NIC traffic, so the
        // tuner picks the tree (at 1 GiB the bandwidth terms dominate and the two come within 4%)
        let ranks: Vec<u32> = (0..512).collect();
        let ring = busbw(&a100(AlgorithmChoice::Ring), &ranks, 256 << 20);
        let auto = busbw(&a100(AlgorithmChoice::Auto), &ranks, 256 << 20);
        assert!(auto > ring * 1.15, "{auto} vs {ring}");
    }

    #[test]
    fn small_messages_are_latency_bound() {
        let net = a100(AlgorithmChoice::Auto);
        let ranks: Vec<u32> = (0..8).collect();
        // 8 bytes: ring/LL, 10 us launch + 3.6 + 14 x 0.47 us; LL's algorithm bandwidth is
        // min(235 / 4, 87.7) x 8/14 GB/s, so the 8 bytes add 8 / 33.57e9 s
        let t = net.seconds(&Communication::Collective {
            op: CollectiveOp::AllReduce,
            ranks: &ranks,
            bytes: 8,
        });
        let expected = 20.18e-6 + 8.0 / (58.75e9 * 8.0 / 14.0);
        assert!((t - expected).abs() < 1e-12, "{t} vs {expected}");
    }
}
