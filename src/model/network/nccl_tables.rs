//! The constants of NCCL's tuning model (`src/graph/tuning.cc`, the search's speed arrays in
//! `src/graph/search.cc`), one table per release modelled. Read from NVIDIA/nccl at the tags named
//! below; 2.8-2.10 transcribed in `shared/reference/nccl/nccl-2.8-2.10-tuning-model.md`.
//!
//! Rows of the 2x3 arrays are the algorithms tree, ring; columns the protocols LL, LL128, Simple.
//! The 2.8-2.10 tables are NCCL's values for an A100 (compute capability 8.0) host with AMD CPUs,
//! the 2.21 table its values for an H100 (compute capability 9.0) host with Intel CPUs (DGX H100:
//! two Xeon Platinum 8480C), the 2.25 table its values for a B200 (compute capability 10.0) host
//! with Intel CPUs (DGX B200: two Xeon Platinum 8570). [`table`] takes the rows NCCL picks for
//! another GPU generation or CPU vendor (`ncclTopoTuneModel`: `compCapIndex` for the per-GPU caps,
//! `llMaxBws[cpuVendor == AMD]` across nodes, `getNetOverhead`).

use crate::config::{GpuArchitecture, HostCpu, NcclHost, NcclVersion};
use std::sync::OnceLock;

/// How NCCL lengthens a ring Simple all-reduce across nodes ("plateau effect of ring").
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Plateau {
    /// 2.8-2.10: latency x `factor` from `n / 16 x 64 KiB`.
    FromRanks {
        /// Latency factor (1.9).
        factor: f64,
    },
    /// 2.21: latency x `factor` once each channel of each rank moves at least 64 B
    /// (`nBytes / (comm->nChannels x nRanks) >= 64`; 1.4 on compute capability 8.0 and later).
    FromChannelBytes {
        /// Latency factor.
        factor: f64,
    },
}

/// NVLink SHARP's constants (NCCL 2.17 on; NVLS and NVLS tree run the Simple protocol only).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct NvlsTable {
    /// hwLat[NVLINK][NVLS][Simple], us: all of an NVLS all-reduce's latency inside a node.
    pub nvlink_latency: f64,
    /// hwLat[NVLINK][NVLS_TREE][Simple], us.
    pub tree_nvlink_latency: f64,
    /// hwLat[NET][NVLS_TREE][Simple], us, per tree level across nodes (twice per level).
    pub tree_net_latency: f64,
    /// Bus bandwidth to algorithm bandwidth for NVLS and NVLS tree all-reduce (5/6; rings n / steps).
    pub bus_to_alg: f64,
    /// The same for NVLS reduce-scatter and all-gather (5/6 in 2.21; 2.25 converts only rings', so 1).
    pub gather_bus_to_alg: f64,
    /// Thread blocks an NVLS kernel launches (`comm->nvlsChannels`: `NCCL_NVLS_NCHANNELS` = 16 in
    /// 2.17-2.21; 2.25: `NVLS_NCHANNELS_SM100` = 32 on compute capability 10.0).
    pub kernel_channels: u32,
    /// The NVLS graph search's per-channel speeds without NICs (sm90SpeedArrayIntra), GB/s.
    pub intra_speeds: &'static [f64],
    /// The same with NICs (sm90SpeedArrayInter), GB/s.
    pub inter_speeds: &'static [f64],
}

/// The constants of one NCCL version's tuning model.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Table {
    /// baseLat, us.
    pub base_latency: [[f64; 3]; 2],
    /// hwLat[NVLINK], us.
    pub nvlink_latency: [[f64; 3]; 2],
    /// hwLat[NET], us.
    pub net_latency: [[f64; 3]; 2],
    /// llMaxBws by min(nodes, 3) - 1: the GPU's row on one node, the CPU vendor's across nodes, GB/s.
    pub ll_max_bw: [f64; 3],
    /// perChMaxTreeBws, by min(nodes, 3) - 1, GB/s.
    pub tree_max_bw_per_channel: [f64; 3],
    /// The ring LL128 cap per channel for all-reduce, reduce-scatter, all-gather and the rest, by
    /// min(nodes, 3) - 1, GB/s (2.8: ll128MaxBwPerCh by collective; 2.10: one value; 2.21:
    /// perChMaxRingLL128Bws by node count).
    pub ring_ll128_per_channel: [[f64; 3]; 4],
    /// The tree LL128 cap per channel, by min(nodes, 3) - 1, GB/s (2.21: perChMaxTreeLL128Bws).
    pub tree_ll128_per_channel: [f64; 3],
    /// Tree LL128 bandwidth factor across nodes.
    pub tree_ll128_multi_node: f64,
    /// treeCorrectionFactor[proto][log2(bytes / 64)], for 64 B to 256 MiB.
    pub tree_correction: [[f64; 23]; 3],
    /// The per-channel speeds the search steps through for a graph with NICs, fastest first, GB/s
    /// (2.8: speedArray; 2.10: speedArrayIntra; 2.21 on SM90: sm90SpeedArrayInter).
    pub search_speeds: &'static [f64],
    /// Global cap on a graph's bus bandwidth, GB/s (235 on compute capability 8.0 up to 2.10;
    /// none in 2.21).
    pub bus_cap: f64,
    /// Ring LL's share of the bus bandwidth: [all-reduce or several nodes, the rest on one node].
    pub ring_ll_share: [f64; 2],
    /// Ring LL128's share of the bus bandwidth with fewer than 2 ranks per node (0.7 up to 2.21;
    /// 2.25: 0.92, as with more).
    pub ring_ll128_one_per_node: f64,
    /// Whether a ring with one rank per node pays the tree's network latency per network step
    /// ("with ppn=1 latencies are fully exposed", 2.25 on; the ring's before).
    pub exposed_net_latency: bool,
    /// `MAXCHANNELS`: the most channels a communicator has (32 up to 2.21; 64 from 2.25).
    pub max_channels: u32,
    /// LL's NVLink latency factor across nodes (1.8 up to 2.10; gone in 2.21).
    pub ll_nvlink_multi_node: f64,
    /// Network steps a ring all-reduce over N nodes takes beyond 2(N-1) (2.21: 2N; 2.25: 2(N-1) again).
    pub ring_allreduce_extra_net_steps: f64,
    /// Network post overhead per ring step across nodes, us, x3 for Simple: a floor on the NVLink
    /// latency (2.21: 1 us on Intel hosts; none before).
    pub net_overhead: f64,
    /// The ring plateau rule.
    pub plateau: Plateau,
    /// NVLink SHARP, from 2.17.
    pub nvls: Option<NvlsTable>,
}

const TREE_CORRECTION_LL: [f64; 23] = [
    1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.5, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0,
];
const TREE_CORRECTION_LL128_2_10: [f64; 23] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.8, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0,
];
const TREE_CORRECTION_SIMPLE: [f64; 23] = [
    0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.7, 0.7, 0.8, 0.9, 0.9,
];

/// NCCL 2.8.3 to 2.9.9 (2.8 and 2.10: the 235 GB/s cap on compute capability 8.0, 1/4 or 1/3 for ring
/// LL, LL's NVLink latency x 1.8 across nodes, 2(N-1) network steps, no network overhead, the 1.9 plateau).
pub(super) const NCCL_2_8: Table = Table {
    base_latency: [[4.4, 4.4, 0.0], [3.6, 10.0, 8.4]],
    nvlink_latency: [[0.52, 1.25, 28.0], [0.47, 1.9, 3.4]],
    net_latency: [[5.0, 8.5, 28.0], [2.7, 4.0, 9.6]],
    ll_max_bw: [87.7, 22.5, 19.0],
    tree_max_bw_per_channel: [24.0, 22.5, 16.0],
    ring_ll128_per_channel: [[16.9; 3], [15.2; 3], [18.3; 3], [18.8; 3]],
    tree_ll128_per_channel: [16.9; 3],
    tree_ll128_multi_node: 0.915,
    tree_correction: [
        TREE_CORRECTION_LL,
        [
            1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 0.9,
            0.92, 0.92,
        ],
        TREE_CORRECTION_SIMPLE,
    ],
    search_speeds: &[
        42.0, 30.0, 24.0, 21.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0,
    ],
    bus_cap: 235.0,
    ring_ll_share: [0.25, 1.0 / 3.0],
    ring_ll128_one_per_node: 0.7,
    exposed_net_latency: false,
    max_channels: 32,
    ll_nvlink_multi_node: 1.8,
    ring_allreduce_extra_net_steps: 0.0,
    net_overhead: 0.0,
    plateau: Plateau::FromRanks { factor: 1.9 },
    nvls: None,
};

/// NCCL 2.10.3: NCCL 2.8's but for the tree caps, LL128's caps and tree factor, the speed array.
pub(super) const NCCL_2_10: Table = Table {
    tree_max_bw_per_channel: [24.0, 23.6, 17.8],
    ring_ll128_per_channel: [[20.0; 3]; 4],
    tree_ll128_per_channel: [20.0; 3],
    tree_ll128_multi_node: 120.0 / 128.0,
    tree_correction: [TREE_CORRECTION_LL, TREE_CORRECTION_LL128_2_10, TREE_CORRECTION_SIMPLE],
    search_speeds: &[44.0, 30.0, 22.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0],
    ..NCCL_2_8
};

/// sm90SpeedArrayInter (search.cc at v2.21.5-1), GB/s.
const SM90_INTER_SPEEDS: &[f64] = &[
    48.0, 45.0, 42.0, 40.0, 30.0, 24.0, 22.0, 20.0, 17.5, 15.0, 12.0, 6.0, 3.0, 2.4, 1.2, 0.24, 0.12,
];

/// NCCL 2.21.5 (tag v2.21.5-1, commit ab2b89c4c339bd7f816fbc114a4b05d386b66290, 2024-04-02) on
/// compute capability 9.0: src/graph/tuning.cc's baseLat, hwLat, llMaxBws (Hopper on one node,
/// Intel across nodes), perChMaxRingLL128Bws, perChMaxTreeLL128Bws, perChMaxTreeBws (Hopper rows),
/// treeCorrectionFactor (unchanged since 2.10), ring LL at half the bus bandwidth, the network
/// overhead (getNetOverhead: 1 us on Intel x86), 2N network steps for a ring all-reduce, the 1.4
/// plateau; src/graph/search.cc's sm90SpeedArrayIntra / sm90SpeedArrayInter. From 2.20.5 it
/// differs in the NVLS NVLink latency (23 us there), Hopper's llMaxBws (Ampere's there) and
/// ring LL (1/4, 1/3 there).
pub(super) const NCCL_2_21: Table = Table {
    base_latency: [[6.8, 14.0, 0.0], [6.6, 14.0, 8.4]],
    nvlink_latency: [[0.6, 1.25, 28.0], [0.6, 1.9, 3.4]],
    net_latency: [[5.0, 8.5, 28.0], [2.7, 4.0, 14.0]],
    ll_max_bw: [141.0, 39.0, 20.4],
    tree_max_bw_per_channel: [38.7, 41.4, 36.0],
    ring_ll128_per_channel: [[36.7; 3]; 4],
    tree_ll128_per_channel: [36.7, 36.7, 29.0],
    tree_ll128_multi_node: 120.0 / 128.0,
    tree_correction: [TREE_CORRECTION_LL, TREE_CORRECTION_LL128_2_10, TREE_CORRECTION_SIMPLE],
    search_speeds: SM90_INTER_SPEEDS,
    bus_cap: f64::INFINITY,
    ring_ll_share: [0.5, 0.5],
    ring_ll128_one_per_node: 0.7,
    exposed_net_latency: false,
    max_channels: 32,
    ll_nvlink_multi_node: 1.0,
    ring_allreduce_extra_net_steps: 2.0,
    net_overhead: 1.0,
    plateau: Plateau::FromChannelBytes { factor: 1.4 },
    nvls: Some(NVLS_2_21),
};

/// 2.21's NVLS constants: hwLat[NVLINK][NVLS], hwLat[NVLINK][NVLS_TREE], hwLat[NET][NVLS_TREE] (us),
/// NCCL_NVLS_NCHANNELS, sm90SpeedArrayIntra / sm90SpeedArrayInter.
const NVLS_2_21: NvlsTable = NvlsTable {
    nvlink_latency: 25.0,
    tree_nvlink_latency: 25.0,
    tree_net_latency: 14.0,
    bus_to_alg: 5.0 / 6.0,
    gather_bus_to_alg: 5.0 / 6.0,
    kernel_channels: 16,
    intra_speeds: &[60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 11.0, 6.0, 3.0],
    inter_speeds: SM90_INTER_SPEEDS,
};

/// sm100SpeedArrayInter (search.cc at v2.25.1-1): the same values as sm90SpeedArrayInter, GB/s.
const SM100_INTER_SPEEDS: &[f64] = SM90_INTER_SPEEDS;

/// NCCL 2.25.1 (tag v2.25.1-1, commit 80f6bda4378b99d99e82b4d76a633791cc45fef0, 2025-01-27: "Add
/// Blackwell/SM100 support"; the NCCL of NGC's framework containers 25.01, the first with
/// Blackwell) on compute capability 10.0, src/graph/tuning.cc:
/// - baseLat: tree Simple 8.4 us (0 before); hwLat[NVLINK] tree Simple 4 us and hwLat[NET] tree
///   Simple 14 us (28 and 28 before); the ring and NVLS rows as 2.21;
/// - the Blackwell rows (BLACKWELL_COMPCAP_IDX), each twice Hopper's: llMaxBws 2 x 141 on one node
///   (across nodes the Intel row, 39 and 20.4, as 2.21), perChMaxRingLL128Bws 2 x 36.7,
///   perChMaxTreeLL128Bws 2 x {36.7, 36.7, 29}, perChMaxTreeBws 2 x {38.7, 41.4, 36};
/// - formulas: ring LL128 at 0.92 of busBw whatever the ranks per node (0.7 with one before); a
///   ring with one rank per node takes the tree's network latency; a ring all-reduce has
///   2(N-1) network steps (2N in 2.21); NVLS reduce-scatter and all-gather keep their bus
///   bandwidth as algorithm bandwidth (only rings convert for those two); the plateau, the
///   network overhead (getNetOverhead: 1 us on Intel x86) and the tree correction as 2.21;
/// - src/include/device.h: MAXCHANNELS 64; src/transport/nvls.cc: NVLS_NCHANNELS_SM100 32;
/// - src/graph/search.cc: sm100SpeedArrayIntra / sm100SpeedArrayInter.
///
/// Not modelled: PAT (a reduce-scatter and all-gather algorithm for one GPU per node, new since
/// 2.23; clustersim's tuner keeps ring and NVLS for them), CollNet, and the ring's and tree's
/// `graph->latencyInter` (the NIC's own latency, 0 for InfiniBand), as for 2.21.
pub(super) const NCCL_2_25: Table = Table {
    base_latency: [[6.8, 14.0, 8.4], [6.6, 14.0, 8.4]],
    nvlink_latency: [[0.6, 1.25, 4.0], [0.6, 1.9, 3.4]],
    net_latency: [[5.0, 8.5, 14.0], [2.7, 4.0, 14.0]],
    ll_max_bw: [2.0 * 141.0, 39.0, 20.4],
    tree_max_bw_per_channel: [2.0 * 38.7, 2.0 * 41.4, 2.0 * 36.0],
    ring_ll128_per_channel: [[2.0 * 36.7; 3]; 4],
    tree_ll128_per_channel: [2.0 * 36.7, 2.0 * 36.7, 2.0 * 29.0],
    search_speeds: SM100_INTER_SPEEDS,
    ring_ll128_one_per_node: 0.92,
    exposed_net_latency: true,
    max_channels: 64,
    ring_allreduce_extra_net_steps: 0.0,
    // NVLS latencies (25, 25, 14 us) and 5/6 for all-reduce as 2.21
    nvls: Some(NvlsTable {
        gather_bus_to_alg: 1.0,
        kernel_channels: 32,
        intra_speeds: &[90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 19.0],
        inter_speeds: SM100_INTER_SPEEDS,
        ..NVLS_2_21
    }),
    ..NCCL_2_21
};

/// speedArrayInter (search.cc at v2.21.5-1 and v2.25.1-1): the search's per-channel speeds for a
/// graph with NICs on GPUs before Hopper, GB/s.
const INTER_SPEEDS: &[f64] = &[
    48.0, 30.0, 28.0, 24.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.4, 1.2, 0.24, 0.12,
];

/// The rows of 2.21's and 2.25's tables NCCL picks by compute capability (`compCapIndex`).
struct GenerationRows {
    /// llMaxBws on one node, GB/s.
    ll_one_node: f64,
    /// perChMaxRingLL128Bws (the same at every node count), GB/s.
    ring_ll128: f64,
    /// perChMaxTreeLL128Bws by node count, GB/s.
    tree_ll128: [f64; 3],
    /// perChMaxTreeBws by node count, GB/s.
    tree: [f64; 3],
    /// The search's speed array for graphs with NICs.
    search_speeds: &'static [f64],
}

/// tuning.cc's Ampere, Hopper and Blackwell rows (2.21 has no Blackwell row: its code takes
/// Hopper's for compute capability 9.0 and up, though it has no kernels for 10.0).
fn generation_rows(version: NcclVersion, architecture: GpuArchitecture) -> GenerationRows {
    let hopper = GenerationRows {
        ll_one_node: 141.0,
        ring_ll128: 36.7,
        tree_ll128: [36.7, 36.7, 29.0],
        tree: [38.7, 41.4, 36.0],
        search_speeds: SM90_INTER_SPEEDS,
    };
    match (architecture, version) {
        (GpuArchitecture::Ampere, _) => GenerationRows {
            ll_one_node: 87.7,
            ring_ll128: 20.0,
            tree_ll128: [20.0; 3],
            tree: [24.0, 23.6, 17.8],
            search_speeds: INTER_SPEEDS,
        },
        (GpuArchitecture::Blackwell, NcclVersion::V2_25) => GenerationRows {
            ll_one_node: 2.0 * hopper.ll_one_node,
            ring_ll128: 2.0 * hopper.ring_ll128,
            tree_ll128: hopper.tree_ll128.map(|b| 2.0 * b),
            tree: hopper.tree.map(|b| 2.0 * b),
            search_speeds: SM100_INTER_SPEEDS,
        },
        _ => hopper,
    }
}

/// 2.25's NVLS on Hopper: NVLS_NCHANNELS_SM90 (16) thread blocks and sm90SpeedArrayIntra.
const NVLS_2_25_HOPPER: NvlsTable = NvlsTable {
    gather_bus_to_alg: 1.0,
    ..NVLS_2_21
};

/// The table NCCL `version` computes with on `host`: the release's own table with the rows for the
/// host's GPU generation and CPU vendor. NCCL 2.8 and 2.10 have two rows (Volta or Intel, Ampere
/// or AMD) and run on GPUs up to Ampere; across nodes every release reads the LL cap by CPU vendor
/// (Intel {39.0, 20.4} GB/s on 2 and more nodes, AMD {22.5, 19.0}); from 2.21 the network post
/// overhead is 1 us on Intel and 2 us on AMD hosts; NVLS needs Hopper or later.
pub(super) fn table(version: NcclVersion, host: NcclHost) -> &'static Table {
    static TABLES: [OnceLock<Table>; 24] = [const { OnceLock::new() }; 24];
    // NCCL tells AMD hosts from the rest (`cpuVendor == AMD`; its network overhead is 1 us for any
    // CPU but AMD's x86): an Arm host computes as an Intel one
    let amd = host.cpu == HostCpu::Amd;
    let index = (version as usize * 3 + host.architecture as usize) * 2 + amd as usize;
    TABLES[index].get_or_init(|| {
        let across = if amd { [22.5, 19.0] } else { [39.0, 20.4] };
        match version {
            NcclVersion::V2_8 | NcclVersion::V2_10 => {
                let base = if version == NcclVersion::V2_8 {
                    NCCL_2_8
                } else {
                    NCCL_2_10
                };
                Table {
                    ll_max_bw: [base.ll_max_bw[0], across[0], across[1]],
                    ..base
                }
            }
            NcclVersion::V2_21 | NcclVersion::V2_25 => {
                let base = if version == NcclVersion::V2_21 {
                    NCCL_2_21
                } else {
                    NCCL_2_25
                };
                let rows = generation_rows(version, host.architecture);
                let nvls = match (host.architecture, version) {
                    (GpuArchitecture::Ampere, _) => None,
                    (GpuArchitecture::Hopper, NcclVersion::V2_25) => Some(NVLS_2_25_HOPPER),
                    _ => base.nvls.clone(),
                };
                Table {
                    ll_max_bw: [rows.ll_one_node, across[0], across[1]],
                    tree_max_bw_per_channel: rows.tree,
                    ring_ll128_per_channel: [[rows.ring_ll128; 3]; 4],
                    tree_ll128_per_channel: rows.tree_ll128,
                    search_speeds: rows.search_speeds,
                    net_overhead: if amd { 2.0 } else { 1.0 },
                    nvls,
                    ..base
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each release's built-in table is what [`table`] gives on the machine it was read for, so
    /// the presets (DGX A100 with 2.8, DGX H100 with 2.21, DGX B200 with 2.25) run as before.
    #[test]
    fn each_release_on_its_own_machine_is_its_table() {
        for (version, own) in [
            (NcclVersion::V2_8, &NCCL_2_8),
            (NcclVersion::V2_10, &NCCL_2_10),
            (NcclVersion::V2_21, &NCCL_2_21),
            (NcclVersion::V2_25, &NCCL_2_25),
        ] {
            assert_eq!(table(version, NcclHost::native(version)), own, "{version:?}");
        }
    }

    /// Rows NCCL 2.21 reads elsewhere: an A100 takes the Ampere caps (LL on one node 87.7 GB/s,
    /// ring LL128 20 GB/s a channel, tree {24, 23.6, 17.8}, the pre-Hopper speed array) and no
    /// NVLS; an AMD host the AMD LL caps across nodes (22.5 on 2 nodes, 19.0 beyond) and a 2 us
    /// network overhead; an Intel host under 2.8 the Intel LL caps (39.0, 20.4).
    #[test]
    fn other_machines_take_their_rows() {
        let amd_a100 = NcclHost {
            architecture: GpuArchitecture::Ampere,
            cpu: HostCpu::Amd,
        };
        let t = table(NcclVersion::V2_21, amd_a100);
        assert_eq!(t.ll_max_bw, [87.7, 22.5, 19.0]);
        assert_eq!(t.ring_ll128_per_channel, [[20.0; 3]; 4]);
        assert_eq!(t.tree_max_bw_per_channel, [24.0, 23.6, 17.8]);
        assert_eq!(t.search_speeds[..4], [48.0, 30.0, 28.0, 24.0]);
        assert_eq!(t.net_overhead, 2.0);
        assert!(t.nvls.is_none());
        // the release's own constants stay: 2.21's latencies, plateau and LL share
        assert_eq!(t.base_latency, NCCL_2_21.base_latency);
        assert_eq!(t.ring_ll_share, [0.5, 0.5]);
        let intel_a100 = NcclHost {
            cpu: HostCpu::Intel,
            ..amd_a100
        };
        assert_eq!(table(NcclVersion::V2_8, intel_a100).ll_max_bw, [87.7, 39.0, 20.4]);
        let arm_a100 = NcclHost {
            cpu: HostCpu::Arm,
            ..amd_a100
        };
        assert_eq!(
            table(NcclVersion::V2_21, arm_a100),
            table(NcclVersion::V2_21, intel_a100)
        );
        assert_eq!(table(NcclVersion::V2_8, intel_a100).bus_cap, 235.0);
        // 2.25 on Hopper: Hopper's caps, half Blackwell's, and 16 NVLS thread blocks
        let h100 = NcclHost {
            architecture: GpuArchitecture::Hopper,
            cpu: HostCpu::Intel,
        };
        let t = table(NcclVersion::V2_25, h100);
        assert_eq!(t.ll_max_bw, [141.0, 39.0, 20.4]);
        assert_eq!(t.ring_ll128_per_channel[0][0], 36.7);
        assert_eq!(
            t.nvls.as_ref().map(|v| (v.kernel_channels, v.intra_speeds[0])),
            Some((16, 60.0))
        );
        assert_eq!(t.nvls.as_ref().map(|v| v.gather_bus_to_alg), Some(1.0));
    }
}
