//! The NCCL that runs the collectives (`network.nccl`), and NVLink SHARP (`node.nvlink.sharp`).
//!
//! NCCL's cost model has a table of constants per release (`src/model/network/nccl_tables.rs`)
//! and inputs that NCCL discovers on the machine at run time (its topology graph's channels and
//! per-channel speeds, and the launch cost it leaves out), which the hardware file states with
//! their derivation. NVLink SHARP (NVLS: the NVSwitch reduces and multicasts) is a property of the
//! node's NVSwitch; NCCL uses it from 2.17 on, so only the versions whose table has NVLS constants
//! ("2.21", "2.25") run it, and only where `node.nvlink.sharp` is true.

use super::{Document, HardwareSpec};
use crate::error::Result;
use crate::units::{Bandwidth, SimDuration};
use serde::Deserialize;

/// An NCCL release whose tuning model is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum NcclVersion {
    /// 2.8.3 to 2.9.9 (Megatron-LM's NGC containers of early 2021).
    #[serde(rename = "2.8")]
    V2_8,
    /// 2.10.3 (mid 2021).
    #[serde(rename = "2.10")]
    V2_10,
    /// 2.21.5 (April 2024; NGC's framework containers of 24.05, the H100 era of NeMo 24.07 and
    /// Megatron-Core r0.8), with NVLink SHARP.
    #[serde(rename = "2.21")]
    V2_21,
    /// 2.25.1 (January 2025; NGC's framework containers of 25.01, the first for Blackwell: the
    /// DGX B200 launch era), with compute capability 10.0's constants and NVLink SHARP.
    #[serde(rename = "2.25")]
    V2_25,
}

impl NcclVersion {
    /// Whether this NCCL forwards a ring's data over NVLink to the GPU behind the NIC it leaves
    /// through (PXN, NCCL 2.12 on); before, the ring's last GPU on the node sends to the NIC itself.
    pub fn has_pxn(self) -> bool {
        matches!(self, NcclVersion::V2_21 | NcclVersion::V2_25)
    }
}

/// NCCL on this machine: the version's cost model, and what NCCL discovers at run time that no
/// source pins down (fitted to nccl-tests curves; the fit is stated in the hardware file).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NcclSpec {
    /// Which tuning model ("2.8", "2.10", "2.21" or "2.25", quoted).
    pub version: NcclVersion,
    /// Channels of NCCL's topology graph inside one node (graph->nChannels).
    pub channels: u32,
    /// Per-channel speed of that graph, graph->speedIntra.
    pub speed_intra: Bandwidth,
    /// Per-channel speed of a graph across nodes (one channel per NIC), graph->speedInter.
    pub speed_inter: Bandwidth,
    /// Fixed cost of one collective or send/receive: host enqueue and kernel launch.
    pub launch: SimDuration,
    /// Whether NCCL's kernels hold SMs that the kernels running beside them cannot use (one per
    /// channel; `src/model/network/occupancy.rs`); false runs overlapped communication for free.
    #[serde(default = "contention_by_default", skip_serializing_if = "is_default_contention")]
    pub sm_contention: bool,
}

fn contention_by_default() -> bool {
    true
}

fn is_default_contention(on: &bool) -> bool {
    *on
}

/// Checks `network.nccl` and that only the NVLink names NVLink SHARP.
pub fn validate(hw: &HardwareSpec, doc: &Document) -> Result<()> {
    if let Some(n) = &hw.network.nccl {
        if n.channels == 0 {
            return Err(doc.field_error("network.nccl.channels", "must be at least 1"));
        }
    }
    let elsewhere = [
        ("node.nic.sharp", hw.node.nic.sharp),
        (
            "network.topology.link.sharp",
            hw.network.topology.as_ref().is_some_and(|t| t.link.sharp),
        ),
        ("storage.nic.sharp", hw.storage.as_ref().is_some_and(|s| s.nic.sharp)),
    ];
    for (path, sharp) in elsewhere {
        if sharp {
            return Err(doc.field_error(
                path,
                "NVLink SHARP is a property of the node's NVSwitch: set node.nvlink.sharp instead",
            ));
        }
    }
    Ok(())
}
