//! Which NIC a GPU's traffic between nodes leaves and enters through, as the NCCL version chose it.
//!
//! Where several GPUs share a PCIe switch and its NICs (DGX A100: GPUs 2j and 2j+1 behind one
//! switch with HCAs 2j and 2j+1, `node.gpus_per_pcie_switch: 2`), NCCL decides which of them a
//! communicator uses:
//! - Collectives follow the ring and tree graphs of NCCL's topology search. NCCL 2.8 to 2.9.5 tries
//!   the NICs in index order (`ncclTopoSearchRecNet`, src/graph/search.cc at v2.8.4-1): a channel
//!   enters the node through the first NIC with bandwidth left, at the communicator's GPU closest to
//!   it. With one channel per member, a member takes the first NIC of its switch that no other
//!   member took. Two communicators that each hold one GPU of a switch (the data-parallel groups of
//!   GPU 0 and GPU 1 when tensor parallelism is 2 or more) therefore both take the switch's first
//!   NIC and leave the second idle. NCCL 2.9.6 (April 2021) rotates the equally close NICs by the
//!   communicator's first local GPU's device number (`ncclTopoSelectNets`: "so that when we have 2
//!   NICs and 2 GPUs and create communicators with only one GPU, we will use both NICs").
//! - Point-to-point transfers (send/receive, and the all-to-all built from them) have no graph:
//!   `ncclTopoGetLocalNet` hands out the GPU's closest NICs round robin by channel, so a transfer
//!   spreads evenly over its switch's NICs.
//!
//! Without an NCCL model (`network.nccl` absent), or where each GPU has its own switch, every GPU
//! uses its rail's NIC.

use crate::config::NcclVersion;
use crate::model::topology::{NicLayout, Topology};

/// How NICs are chosen for the GPUs of a communication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicChoice {
    /// Each GPU uses its rail's NIC.
    Rail,
    /// NCCL 2.8-2.9.5: collectives take the NICs of a switch in index order.
    IndexOrder,
    /// NCCL 2.9.6 on: the NICs rotated by the communicator's first local GPU (also taken for 2.21
    /// and 2.25, whose choice among a shared switch's NICs is not modelled: their presets have a
    /// NIC per GPU).
    Rotated,
}

impl NicChoice {
    /// The choice of an NCCL version (none: rails).
    pub fn new(nccl: Option<NcclVersion>) -> Self {
        match nccl {
            None => NicChoice::Rail,
            Some(NcclVersion::V2_8) => NicChoice::IndexOrder,
            Some(NcclVersion::V2_10 | NcclVersion::V2_21 | NcclVersion::V2_25) => NicChoice::Rotated,
        }
    }

    /// The NIC (local index) each member of a collective's communicator takes on one node, in the
    /// order of `locals` (the communicator's local GPUs there, ascending): the graph's NICs in
    /// index order (rotated by the first GPU from 2.9.6), each to the first member behind its switch
    /// that has none yet; a member its switch has no NIC left for shares the switch's first.
    pub fn assign(self, layout: &NicLayout, locals: &[u32]) -> Vec<u32> {
        if self == NicChoice::Rail || locals.is_empty() {
            return locals.iter().map(|&l| layout.rail(l)).collect();
        }
        let mut order: Vec<u32> = locals.iter().flat_map(|&l| layout.switch_nics(l)).collect();
        order.sort_unstable();
        order.dedup();
        if self == NicChoice::Rotated {
            let shift = locals[0] as usize % order.len();
            order.rotate_left(shift);
        }
        let mut taken: Vec<Option<u32>> = vec![None; locals.len()];
        for nic in order {
            let free = (0..locals.len()).find(|&i| taken[i].is_none() && layout.switch_nics(locals[i]).contains(&nic));
            if let Some(i) = free {
                taken[i] = Some(nic);
            }
        }
        locals
            .iter()
            .zip(taken)
            .map(|(&l, nic)| nic.unwrap_or(layout.switch_nics(l).start))
            .collect()
    }

    /// The NIC (global index) of each member of a collective's communicator on one node, in the
    /// order of `members` (the communicator's GPUs on that node, ascending): [`NicChoice::assign`]
    /// on the topology, after `network.degraded` redirects.
    pub fn collective(self, topo: &Topology, members: &[u32]) -> Vec<u32> {
        let locals: Vec<u32> = members.iter().map(|&g| topo.local(g)).collect();
        let nics = self.assign(topo.layout(), &locals);
        members
            .iter()
            .zip(nics)
            .map(|(&g, nic)| topo.node_nic(g, nic))
            .collect()
    }

    /// How many distinct NICs a collective's communicator holds on one node, where its members are
    /// the local GPUs `locals` (ascending): one NCCL channel each (the topology search gives each
    /// channel its own NIC at the NIC's speed).
    pub fn distinct_nics(self, layout: &NicLayout, locals: &[u32]) -> u32 {
        let mut nics = self.assign(layout, locals);
        nics.sort_unstable();
        nics.dedup();
        (nics.len() as u32).max(1)
    }

    /// The NICs (global indices) a point-to-point transfer from or to `gpu` spreads over, evenly.
    pub fn point_to_point(self, topo: &Topology, gpu: u32) -> Vec<u32> {
        match self {
            NicChoice::Rail => vec![topo.nic_of(gpu)],
            NicChoice::IndexOrder | NicChoice::Rotated => {
                topo.switch_nics(gpu).map(|l| topo.node_nic(gpu, l)).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, Document, HardwareSpec};

    fn dgx_a100(nodes: u32) -> Topology {
        let doc = Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap();
        Topology::new(&HardwareSpec::from_document(&doc).unwrap(), nodes)
    }

    #[test]
    fn nccl_2_8_gives_two_data_parallel_groups_of_one_switch_the_same_nics() {
        // t = 2 on DGX A100: GPU 0's data-parallel group holds GPUs 0, 2, 4, 6 of each node and
        // GPU 1's holds 1, 3, 5, 7; every switch (GPUs 2j, 2j+1; NICs 2j, 2j+1) has one member of
        // each, so both take NICs 0, 2, 4, 6 in index order and NICs 1, 3, 5, 7 stay idle
        let topo = dgx_a100(2);
        let even = NicChoice::IndexOrder.collective(&topo, &[0, 2, 4, 6]);
        let odd = NicChoice::IndexOrder.collective(&topo, &[1, 3, 5, 7]);
        assert_eq!(even, vec![0, 2, 4, 6]);
        assert_eq!(odd, vec![0, 2, 4, 6]);
        // a whole node's communicator uses every NIC, each GPU its rail's
        let all: Vec<u32> = (8..16).collect();
        assert_eq!(
            NicChoice::IndexOrder.collective(&topo, &all),
            (8..16).collect::<Vec<u32>>()
        );
        // 2.9.6's rotation by the first GPU's device number: GPU 1 alone on its switch gets NIC 1,
        // as the fix intended; GPU 1's group of four gets 1, 2, 4, 6 (3 is GPU 3's second choice)
        assert_eq!(NicChoice::Rotated.collective(&topo, &[1]), vec![1]);
        assert_eq!(NicChoice::IndexOrder.collective(&topo, &[1]), vec![0]);
        assert_eq!(NicChoice::Rotated.collective(&topo, &[1, 3, 5, 7]), vec![1, 2, 4, 6]);
        assert_eq!(NicChoice::Rail.collective(&topo, &[1, 3, 5, 7]), vec![1, 3, 5, 7]);
    }

    #[test]
    fn a_communicator_has_a_channel_per_distinct_nic_of_a_node() {
        let layout = NicLayout {
            gpus: 8,
            nics: 8,
            gpus_per_switch: 2,
        };
        // a whole node: 8 NICs; GPUs 0, 2, 4, 6 or 1, 3, 5, 7: one NIC per switch, 4; GPUs 0 and 1: 2
        assert_eq!(
            NicChoice::IndexOrder.distinct_nics(&layout, &[0, 1, 2, 3, 4, 5, 6, 7]),
            8
        );
        assert_eq!(NicChoice::IndexOrder.distinct_nics(&layout, &[1, 3, 5, 7]), 4);
        assert_eq!(NicChoice::Rotated.distinct_nics(&layout, &[0, 1]), 2);
        assert_eq!(NicChoice::IndexOrder.distinct_nics(&layout, &[5]), 1);
        // 4 NICs for 8 GPUs on rails: GPUs 0 and 1 share rail 0
        let half = NicLayout {
            nics: 4,
            gpus_per_switch: 1,
            ..layout
        };
        assert_eq!(NicChoice::Rail.distinct_nics(&half, &[0, 1, 2]), 2);
        assert_eq!(NicChoice::IndexOrder.distinct_nics(&half, &[0, 1, 2]), 2);
    }

    #[test]
    fn point_to_point_spreads_over_the_switch_nics() {
        let topo = dgx_a100(2);
        assert_eq!(NicChoice::IndexOrder.point_to_point(&topo, 11), vec![10, 11]);
        assert_eq!(NicChoice::Rail.point_to_point(&topo, 11), vec![11]);
    }
}
