//! Placement of ranks on the machine: which node and which local GPU each rank runs on.

use crate::config::HardwareSpec;
use crate::model::network::algorithms::GroupShape;
use crate::model::network::NicChoice;
use crate::model::topology::NicLayout;

/// Ranks placed in order: rank r runs on node r / gpus_per_node, local GPU r mod gpus_per_node.
#[derive(Clone, Debug)]
pub struct Placement {
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// GPU kind of each node of a heterogeneous machine, by index of its distinct generations (or
    /// model names, where the generation is unknown; empty when every node has the same GPU).
    model_of_node: Vec<u8>,
    /// Where each node's NICs sit, and how NCCL picks among them.
    nics: (NicLayout, NicChoice),
    /// Whether rings leave a node through the CPU where no member sits beside the NIC (NCCL before
    /// PXN on a machine that names `node.nic_through_cpu`).
    through_cpu: bool,
}

impl Placement {
    /// Placement on a hardware spec.
    pub fn new(hw: &HardwareSpec) -> Self {
        let model_of_node = if hw.node_groups.is_empty() {
            Vec::new()
        } else {
            // NCCL tells GPUs apart by compute capability (LL128 and NVLS need one across the
            // communicator): by generation where it is known, else by model name
            let models = hw.gpu_models();
            let kind = |m: &crate::config::GpuSpec| m.architecture().map_or(m.model.clone(), |a| a.name().to_string());
            let index: Vec<u8> = models
                .iter()
                .map(|m| models.iter().position(|o| kind(o) == kind(m)).unwrap_or(0) as u8)
                .collect();
            crate::config::groups::group_of_nodes(&hw.node_groups, hw.nodes)
                .into_iter()
                .map(|g| index[g as usize])
                .collect()
        };
        Placement {
            gpus_per_node: hw.node.gpus,
            model_of_node,
            nics: (
                NicLayout::new(hw),
                NicChoice::new(hw.network.nccl.as_ref().map(|n| n.version)),
            ),
            through_cpu: hw.nic_through_cpu_path().is_some(),
        }
    }

    /// The shape of a group of ranks for the collective algorithms.
    pub fn shape(&self, ranks: &[u32]) -> GroupShape {
        let (nodes, per_node) = self.spread(ranks);
        let model = |r: u32| self.model_of_node.get(self.node(r) as usize).copied().unwrap_or(0);
        GroupShape {
            n: ranks.len() as u32,
            nodes,
            per_node,
            mixed: ranks.iter().any(|&r| model(r) != model(ranks[0])),
            nics: self.fewest_nics(ranks),
            through_cpu: self.through_cpu && nodes > 1 && self.each_on_its_own_switch(ranks),
        }
    }

    /// Whether on some node the group holds 2 or more GPUs, no two behind one PCIe switch: NCCL
    /// before PXN leaves such a node from a GPU that is not beside the NIC.
    fn each_on_its_own_switch(&self, ranks: &[u32]) -> bool {
        let layout = &self.nics.0;
        let mut sorted = ranks.to_vec();
        sorted.sort_unstable();
        sorted.chunk_by(|a, b| self.node(*a) == self.node(*b)).any(|members| {
            let mut switches: Vec<u32> = members
                .iter()
                .map(|r| r % self.gpus_per_node / layout.gpus_per_switch)
                .collect();
            switches.dedup();
            members.len() >= 2 && switches.len() == members.len()
        })
    }

    /// The fewest distinct NICs the group's members use on one of its nodes.
    fn fewest_nics(&self, ranks: &[u32]) -> u32 {
        let (layout, choice) = &self.nics;
        let mut sorted = ranks.to_vec();
        sorted.sort_unstable();
        sorted
            .chunk_by(|a, b| self.node(*a) == self.node(*b))
            .map(|members| {
                let locals: Vec<u32> = members.iter().map(|r| r % self.gpus_per_node).collect();
                choice.distinct_nics(layout, &locals)
            })
            .min()
            .unwrap_or(1)
    }
    /// How many groups shaped like this one share the busiest NIC it uses across nodes when every
    /// GPU of its nodes runs such a group at the same time, as in a data-parallel phase (each tensor
    /// and pipeline position reduces with a group of its own). On a node where the group holds m
    /// local GPUs evenly spaced d apart (d = 1 for one), those groups tile the node as the group
    /// does: blocks of m d GPUs, each holding d groups shifted by 0 to d - 1; each takes the NICs
    /// that NCCL's choice gives it. 1 inside one node, and where the members of a node do not tile
    /// it so.
    pub fn nic_sharing(&self, ranks: &[u32]) -> u32 {
        let (layout, choice) = &self.nics;
        let mut sorted = ranks.to_vec();
        sorted.sort_unstable();
        let per_node: Vec<&[u32]> = sorted.chunk_by(|a, b| self.node(*a) == self.node(*b)).collect();
        if per_node.len() < 2 {
            return 1;
        }
        let gpus = self.gpus_per_node;
        let sharing = |members: &[u32]| -> u32 {
            let locals: Vec<u32> = members.iter().map(|r| r % gpus).collect();
            let gaps: Vec<u32> = locals.windows(2).map(|w| w[1] - w[0]).collect();
            let spacing = gaps.first().copied().unwrap_or(1);
            let (m, first) = (locals.len() as u32, locals[0]);
            let block = m * spacing;
            if gaps.iter().any(|&g| g != spacing) || gpus % block != 0 || first % block >= spacing {
                return 1;
            }
            let nics_of = |start: u32| {
                let group: Vec<u32> = (0..m).map(|i| start + i * spacing).collect();
                let mut nics = choice.assign(layout, &group);
                nics.sort_unstable();
                nics.dedup();
                nics
            };
            let mut load = vec![0u32; layout.nics as usize];
            for start in (0..gpus).step_by(block as usize).flat_map(|b| b..b + spacing) {
                for nic in nics_of(start) {
                    load[nic as usize] += 1;
                }
            }
            nics_of(first)
                .iter()
                .map(|&n| load[n as usize])
                .max()
                .unwrap_or(1)
                .max(1)
        };
        per_node.into_iter().map(sharing).max().unwrap_or(1)
    }

    /// Node of a rank.
    pub fn node(&self, rank: u32) -> u32 {
        rank / self.gpus_per_node
    }
    /// How a group of ranks spreads over nodes: (nodes spanned, fewest group members on one of them).
    pub fn spread(&self, ranks: &[u32]) -> (u32, u32) {
        let mut nodes: Vec<u32> = ranks.iter().map(|&r| self.node(r)).collect();
        nodes.sort_unstable();
        let (mut count, mut fewest, mut run) = (0u32, u32::MAX, 0u32);
        for (i, &n) in nodes.iter().enumerate() {
            run += 1;
            if i + 1 == nodes.len() || nodes[i + 1] != n {
                count += 1;
                fewest = fewest.min(run);
                run = 0;
            }
        }
        (count, if count == 0 { 0 } else { fewest })
    }
}
