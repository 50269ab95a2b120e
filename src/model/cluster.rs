//! Placement of ranks on the machine: which node and which local GPU each rank runs on.

use crate::config::HardwareSpec;

/// Ranks placed in order: rank r runs on node r / gpus_per_node, local GPU r mod gpus_per_node.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// GPUs per node.
    pub gpus_per_node: u32,
}

impl Placement {
    /// Placement on a hardware spec.
    pub fn new(hw: &HardwareSpec) -> Self {
        Placement {
            gpus_per_node: hw.node.gpus,
        }
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
