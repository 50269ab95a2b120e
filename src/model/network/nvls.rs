//! The NVLS graph NCCL's topology search builds (`ncclTopoCompute` with NCCL_TOPO_PATTERN_NVLS,
//! src/graph/search.cc at v2.21.5-1), from which its tuner predicts NVLink SHARP's bandwidth.
//!
//! An NVLS channel has a head GPU: the head pulls its share of the data reduced by the NVSwitch
//! (multimem.ld_reduce) and multicasts the result back (multimem.st). The search charges each
//! channel its speed s on every member's NVLink in each direction and 2s on the head's
//! (`ncclTopoSearchTryNvls`), so with c channels whose heads differ the busiest GPU carries
//! (c + 1) s. The budget is a GPU's NVLink bandwidth as NCCL rates it; here the ring graph's
//! channels x per-channel speed (H100: 12 x 30 = 360 GB/s of NCCL's 18 x 20.6 = 370.8, which gives
//! the same graphs for every group of 3 to 8 GPUs).
//!
//! - One node (no NIC in the communicator's topology): the search is forced to one channel per
//!   GPU ("pull evenly from all GPUs"), so k GPUs give k channels at the fastest speed of
//!   sm90SpeedArrayIntra with (k + 1) s within the budget: 8 H100s 8 x 40 GB/s, 5 or 4 H100s
//!   k x 60. The pass that then raises the inter-node speed does not change min(intra, inter).
//! - Across nodes (NVLS tree): a channel per NIC whose local GPU is in the communicator, speeds from
//!   sm90SpeedArrayInter starting at what one NIC and its PCIe path carry (`speed_inter`); the
//!   first pass keeps more channels over faster ones and lowers the speed until every GPU heads a
//!   channel (or the next speed falls under 0.49 of the best), the second raises the inter-node
//!   speed back while it is under twice the intra-node one. 8 H100s with 8 NICs at 48 GB/s:
//!   48 gives 6 channels, 45 and 42 seven, 40 all 8; then inter 48.
//!
//! NCCL disables NVLS for communicators with at most 2 GPUs on a node (`ncclNvlsInit`).

use super::nccl_tables::NvlsTable;

/// An NVLS graph: channels, per-channel speed inside the node and across nodes, GB/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NvlsGraph {
    /// Channels (heads).
    pub channels: f64,
    /// graph->bwIntra.
    pub intra: f64,
    /// graph->bwInter.
    pub inter: f64,
}

/// The NVLS graph of a communicator with `k` GPUs and `nics` distinct NICs on each of `nodes`
/// nodes, where one GPU's NVLinks carry `nvlink` GB/s and one NIC path `speed_inter`; `None` where
/// NCCL runs no NVLS.
pub fn graph(t: &NvlsTable, nvlink: f64, speed_inter: f64, k: u32, nics: u32, nodes: u32) -> Option<NvlsGraph> {
    if k <= 2 {
        return None;
    }
    let fits = |c: f64, s: f64| (c + 1.0) * s <= nvlink + 1e-9;
    if nodes <= 1 {
        let c = k as f64;
        let s = t.intra_speeds.iter().copied().find(|&s| fits(c, s))?;
        return Some(NvlsGraph {
            channels: c,
            intra: s,
            inter: s,
        });
    }
    let heads = k.min(nics.max(1)) as f64;
    let start = t.inter_speeds.iter().position(|&s| s <= speed_inter + 1e-9)?;
    let mut best: Option<(f64, usize)> = None;
    for (i, &s) in t.inter_speeds.iter().enumerate().skip(start) {
        if let Some((_, b)) = best {
            if s / t.inter_speeds[b] <= 0.49 {
                break;
            }
        }
        let c = ((nvlink / s + 1e-9).floor() - 1.0).min(heads);
        if c < 1.0 {
            continue;
        }
        let better = best.is_none_or(|(bc, b)| c > bc || c * s > bc * t.inter_speeds[b]);
        if better {
            best = Some((c, i));
        }
        if c >= heads {
            break;
        }
    }
    let (channels, mut i) = best?;
    let intra = t.inter_speeds[i];
    while i > start && t.inter_speeds[i] < 2.0 * intra {
        i -= 1;
    }
    Some(NvlsGraph {
        channels,
        intra,
        inter: t.inter_speeds[i],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network::nccl_tables::NCCL_2_21;

    fn nvls(k: u32, nodes: u32) -> Option<NvlsGraph> {
        graph(NCCL_2_21.nvls.as_ref().unwrap(), 360.0, 48.0, k, 8, nodes)
    }

    /// One node: k channels at the fastest of {60, 50, 40, ...} with (k + 1) s <= 360: k = 8:
    /// 9 x 40 = 360; k = 6: 7 x 50 = 350; k = 5: 6 x 60 = 360; k = 3: 4 x 60. At most 2 GPUs: none.
    #[test]
    fn one_node_has_a_channel_per_gpu() {
        let g = |k| nvls(k, 1).map(|g| (g.channels, g.intra));
        assert_eq!(g(8), Some((8.0, 40.0)));
        assert_eq!(g(7), Some((7.0, 40.0)));
        assert_eq!(g(6), Some((6.0, 50.0)));
        assert_eq!(g(5), Some((5.0, 60.0)));
        assert_eq!(g(3), Some((3.0, 60.0)));
        assert_eq!(g(2), None);
    }

    /// Across nodes from 48 GB/s: k = 8: floor(360 / 48) - 1 = 6 channels, 45: 7, 42: 7, 40: 8
    /// (all heads), then inter raised 42, 45, 48 (each under 2 x 40); k = 7: 45 gives 7; k = 4:
    /// 48 gives 6, capped at the 4 heads. Fewer NICs than GPUs: heads = NICs.
    #[test]
    fn across_nodes_every_gpu_heads_a_channel() {
        assert_eq!(
            nvls(8, 2),
            Some(NvlsGraph {
                channels: 8.0,
                intra: 40.0,
                inter: 48.0
            })
        );
        assert_eq!(
            nvls(7, 4),
            Some(NvlsGraph {
                channels: 7.0,
                intra: 45.0,
                inter: 48.0
            })
        );
        assert_eq!(nvls(4, 2).map(|g| (g.channels, g.intra)), Some((4.0, 48.0)));
        let four_nics = graph(NCCL_2_21.nvls.as_ref().unwrap(), 360.0, 48.0, 8, 4, 2).unwrap();
        assert_eq!((four_nics.channels, four_nics.intra), (4.0, 48.0));
    }
}
