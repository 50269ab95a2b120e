//! How many SMs a communication kernel holds while it runs: the kernels that run beside it get the
//! rest of the GPU.
//!
//! NCCL launches one thread block per channel, and each block keeps its SM from the launch (while
//! it waits for the other members too) to the last step. The channels of a collective are NCCL's
//! own choice (`enqueue.cc`, `getChannnelThreadInfo` in 2.21, the same rule from 2.8 to 2.25):
//! - NVLS and NVLS-tree: `comm->nvlsChannels`, `NCCL_NVLS_NCHANNELS` = 16 (2.25 on compute
//!   capability 10.0: 32);
//! - ring and tree: `comm->nChannels`, the ring graph's channels doubled (`connect.cc`) to at most
//!   `MAXCHANNELS` = 32 (2.25: 64), less one at a time while the buffer is smaller than `nc x nt x threshold`
//!   (threads per block `nt`: 512 for LL and Simple, 640 for LL128; bytes per thread: 64 for
//!   Simple, 8 for LL128, 8 for LL and on a ring 8 x ranks; `comm.h`, `tuning.cc`). All-to-alls,
//!   which NCCL runs as grouped sends and receives on its point-to-point channels, are priced the
//!   same way (an assumption: the point-to-point channels are as many as the collective ones).
//!
//! A send or receive runs on NCCL's point-to-point channels (`enqueue.cc`, `calcP2pChunkSize`, and
//! `paths.cc`, `ncclTopoComputeP2pChannels`, in 2.21): a peer over NVLink gets up to `p2pnChannels`
//! (the communicator's channels, 2 x 12 on a DGX H100 node, rounded up to a power of two: 32), of
//! which a 2-rank communicator starts from half (16), in chunks of at least 64 KiB (the 512 KiB
//! NVLink step / 8) and at most 16 MiB (x 32): `min(16, ceil(bytes / 64 KiB))` blocks, 32 above
//! 256 MiB; a peer on another node gets `NCCL_NCHANNELS_PER_NET_PEER`'s default of 2 blocks. An
//! assumption: the pair's communicator lies within the node when the pair does (a communicator that
//! spans nodes gives its NVLink peers 2 channels too).
//!
//! Megatron-Core's tensor-parallel overlap (`--tp-comm-overlap`) does not use NCCL but Transformer
//! Engine's userbuffers, with the defaults of `initialize_ub` (TE 1.8, `module/base.py`) when no
//! configuration is given: all-gathers by ring exchange over the copy engines (`num_sm` 1),
//! reduce-scatters by the pipeline and bulk methods on 16 SMs each.

use super::algorithms::{self, LinkCosts};
use super::nccl::{NcclAlgorithm, NcclGroup, NcclModel, Protocol};
use crate::config::{AlgorithmChoice, HardwareSpec};
use crate::model::cluster::Placement;
use crate::ops::CollectiveOp;

/// Transformer Engine's default `num_sm` for userbuffers' pipeline and bulk overlaps.
pub const USERBUFFERS_SMS: u32 = 16;

/// Thread blocks (one SM each) NCCL launches for a collective it runs with `algo` and `proto` over
/// `group`, with `bytes` in nccl-tests' convention (NCCL's `nBytes`).
pub fn nccl_blocks(model: &NcclModel, algo: NcclAlgorithm, proto: Protocol, group: NcclGroup, bytes: f64) -> u32 {
    if matches!(algo, NcclAlgorithm::Nvls | NcclAlgorithm::NvlsTree) {
        return model.nvls_kernel_channels();
    }
    let ring_graph = model.graph(NcclAlgorithm::Ring, group.nodes, group.nics).0 as u32;
    let mut nc = (2 * ring_graph.max(1)).min(model.max_channels());
    let threads = if proto == Protocol::LL128 { 640.0 } else { 512.0 };
    let per_thread = match proto {
        Protocol::Simple => 64.0,
        Protocol::LL128 => 8.0,
        Protocol::LL if algo == NcclAlgorithm::Ring => 8.0 * group.n as f64,
        Protocol::LL => 8.0,
    };
    while nc >= 2 && bytes < nc as f64 * threads * per_thread {
        nc -= 1;
    }
    nc
}

/// SMs Transformer Engine's userbuffers hold on each member for a tensor-parallel collective
/// overlapped with a GEMM: 1 for an all-gather (ring exchange on the copy engines), 16 otherwise.
pub fn userbuffers_sms(op: CollectiveOp) -> u32 {
    match op {
        CollectiveOp::AllGather => 1,
        _ => USERBUFFERS_SMS,
    }
}

/// Thread blocks NCCL's kernel runs for a send or receive of `bytes` between two GPUs of one node
/// (`same_node`) or of two nodes (module docs).
pub fn p2p_blocks(same_node: bool, bytes: u64) -> u32 {
    const MIN_CHUNK: u64 = 64 << 10;
    const MAX_CHUNK: u64 = 16 << 20;
    if !same_node {
        return 2;
    }
    if bytes > 16 * MAX_CHUNK {
        32
    } else {
        bytes.div_ceil(MIN_CHUNK).clamp(1, 16) as u32
    }
}

/// What each collective's NCCL kernel holds on a machine whose hardware file names an NCCL.
#[derive(Clone, Debug)]
pub struct CommOccupancy {
    placement: Placement,
    costs: LinkCosts,
    choice: AlgorithmChoice,
}

impl CommOccupancy {
    /// The occupancy model of `hw`: none without `network.nccl` (no channels to count) or with
    /// `network.nccl.sm_contention: false`.
    pub fn new(hw: &HardwareSpec) -> Option<Self> {
        let nccl = hw.network.nccl.as_ref()?;
        if !nccl.sm_contention {
            return None;
        }
        Some(CommOccupancy {
            placement: Placement::new(hw),
            costs: LinkCosts::new(hw),
            choice: hw.network.algorithm,
        })
    }

    /// SMs NCCL's kernel holds on each end of a send of `bytes` from `src` to `dst`.
    pub fn transfer_sms(&self, src: u32, dst: u32, bytes: u64) -> u32 {
        p2p_blocks(self.placement.node(src) == self.placement.node(dst), bytes)
    }

    /// SMs each member's NCCL kernel holds for collective `op` over `ranks` of `bytes`.
    pub fn collective_sms(&self, op: CollectiveOp, ranks: &[u32], bytes: u64) -> u32 {
        if ranks.len() < 2 {
            return 0;
        }
        let shape = self.placement.shape(ranks);
        algorithms::plan(op, self.choice, &shape, bytes as f64, &self.costs).blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NCCL 2.21 on a DGX H100 with NVLink SHARP (12 graph channels inside a node).
    fn model() -> NcclModel {
        crate::model::network::nccl::tests::h100(true)
    }

    const NODE: NcclGroup = NcclGroup {
        n: 8,
        nodes: 1,
        nics: 8,
        per_node: 8,
    };

    /// One node, a 12-channel ring graph: nChannels = 2 x 12 = 24 blocks. Simple keeps all 24 from
    /// 24 x 512 threads x 64 B = 768 KiB up; at 256 KiB it keeps the largest nc with
    /// nc x 32 KiB <= 256 KiB: 8. LL on a ring of 8 needs 512 x 8 x 8 = 32 KiB per channel too:
    /// 1 MiB keeps 24 (24 x 32 KiB = 768 KiB), 64 KiB keeps 2. LL128 needs 640 x 8 = 5 KiB per
    /// channel: 64 KiB keeps 12 (61 440 B). NVLS: always 16.
    #[test]
    fn blocks_follow_nccl_channel_rule() {
        let m = model();
        let b = |algo, proto, bytes: f64| nccl_blocks(&m, algo, proto, NODE, bytes);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::Simple, 1e9), 24);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::Simple, 768.0 * 1024.0), 24);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::Simple, 256.0 * 1024.0), 8);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::LL, 1024.0 * 1024.0), 24);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::LL, 64.0 * 1024.0), 2);
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::LL128, 64.0 * 1024.0), 12);
        assert_eq!(b(NcclAlgorithm::Nvls, Protocol::Simple, 8.0), 16);
        // a tiny buffer keeps one channel
        assert_eq!(b(NcclAlgorithm::Ring, Protocol::Simple, 8.0), 1);
    }

    /// Across nodes the ring graph has a channel per NIC the group holds on a node: 4 NICs give
    /// 2 x 4 = 8 blocks; 20 NICs would give 40, capped at MAXCHANNELS = 32.
    #[test]
    fn blocks_across_nodes_come_from_the_nics() {
        let m = model();
        let group = |nics| NcclGroup {
            n: 32,
            nodes: 8,
            nics,
            per_node: 4,
        };
        assert_eq!(nccl_blocks(&m, NcclAlgorithm::Ring, Protocol::Simple, group(4), 1e9), 8);
        assert_eq!(
            nccl_blocks(&m, NcclAlgorithm::Tree, Protocol::Simple, group(20), 1e9),
            32
        );
    }

    /// NCCL 2.25 on a B200 (compute capability 10.0): NVLS launches NVLS_NCHANNELS_SM100 = 32
    /// blocks, and a communicator has at most MAXCHANNELS = 64 channels: 20 NICs give 2 x 20 = 40
    /// ring blocks (32 under 2.21, above). One B200 node's 16-channel ring graph gives 32.
    #[test]
    fn nccl_2_25_on_blackwell_launches_more_blocks() {
        let m = crate::model::network::nccl::tests::b200();
        assert_eq!(nccl_blocks(&m, NcclAlgorithm::Nvls, Protocol::Simple, NODE, 8.0), 32);
        assert_eq!(nccl_blocks(&m, NcclAlgorithm::Ring, Protocol::Simple, NODE, 1e9), 32);
        let wide = NcclGroup {
            n: 32,
            nodes: 8,
            nics: 20,
            per_node: 4,
        };
        assert_eq!(nccl_blocks(&m, NcclAlgorithm::Tree, Protocol::Simple, wide, 1e9), 40);
    }

    /// Inside a node: 16 MiB goes in 16 chunks of 1 MiB (16 blocks); 256 KiB in 4 chunks of the
    /// 64 KiB minimum; 512 MiB in 32 chunks of the 16 MiB maximum. Across nodes: 2 at any size.
    #[test]
    fn sends_run_on_nccl_point_to_point_channels() {
        assert_eq!(p2p_blocks(true, 16 << 20), 16);
        assert_eq!(p2p_blocks(true, 256 << 10), 4);
        assert_eq!(p2p_blocks(true, 1), 1);
        assert_eq!(p2p_blocks(true, 512 << 20), 32);
        assert_eq!(p2p_blocks(false, 16 << 20), 2);
        assert_eq!(p2p_blocks(false, 1), 2);
    }

    #[test]
    fn userbuffers_gather_on_copy_engines_and_reduce_on_sixteen_sms() {
        assert_eq!(userbuffers_sms(CollectiveOp::AllGather), 1);
        assert_eq!(userbuffers_sms(CollectiveOp::ReduceScatter), 16);
    }
}
