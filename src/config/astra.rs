//! `network.astra`: ASTRA-sim's analytical, congestion-unaware network and its collective
//! settings, so that Chakra traces can be compared with ASTRA-sim on the machine it was given
//! (`network.model: astra`; see `model::network::astra` for what is computed).

use super::{Document, HardwareSpec};
use crate::error::Result;
use crate::units::{Bandwidth, SimDuration};
use serde::Deserialize;

/// One dimension of ASTRA-sim's multi-dimensional topology (its network YAML's lists).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AstraDim {
    /// `ring`, `switch` or `fully-connected`.
    pub kind: AstraDimKind,
    /// NPUs along this dimension (`npus_count`).
    pub npus: u32,
    /// Link bandwidth (ASTRA-sim's GB/s are GiB/s: write `50 GiB/s`).
    pub bandwidth: Bandwidth,
    /// Latency per hop.
    pub latency: SimDuration,
}

/// A dimension's kind: how many hops a neighbour message takes.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AstraDimKind {
    /// Neighbours one hop apart.
    Ring,
    /// Every message crosses the switch: two hops.
    Switch,
    /// A direct link: one hop.
    FullyConnected,
}

impl AstraDimKind {
    /// Hops of a message between two NPUs of this dimension.
    pub fn hops(self) -> u32 {
        match self {
            AstraDimKind::Switch => 2,
            AstraDimKind::Ring | AstraDimKind::FullyConnected => 1,
        }
    }
}

/// ASTRA-sim's network and collective settings (its network YAML and system JSON).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AstraSpec {
    /// Dimensions, fastest-varying first: NPU id = d0 + n0 (d1 + n1 (d2 ...)).
    pub dims: Vec<AstraDim>,
    /// `preferred-dataset-splits`: chunks a collective is cut into.
    #[serde(default = "one")]
    pub splits: u32,
    /// `active-chunks-per-dimension`: chunks in flight at once.
    #[serde(default = "one")]
    pub active_chunks: u32,
    /// `endpoint-delay` per ring step.
    #[serde(default)]
    pub endpoint_delay: SimDuration,
    /// `local-mem-bw` (GB/s of 10^9 B): the memory the reductions of all-reduce and
    /// reduce-scatter stream through (none: free).
    #[serde(default)]
    pub local_memory_bandwidth: Option<Bandwidth>,
}

fn one() -> u32 {
    1
}

/// Checks `network.astra` against `network.model`.
pub fn validate(hw: &HardwareSpec, doc: &Document) -> Result<()> {
    let astra_model = hw.network.model == super::NetworkModelKind::Astra;
    let Some(a) = &hw.network.astra else {
        if astra_model {
            return Err(doc.field_error(
                "network.model",
                "`astra` needs a `network.astra` section (dims, splits, active_chunks, endpoint_delay)",
            ));
        }
        return Ok(());
    };
    if !astra_model {
        return Err(doc.field_error("network.astra", "is read only by `network.model: astra`"));
    }
    if a.dims.is_empty() {
        return Err(doc.field_error("network.astra.dims", "needs at least one dimension"));
    }
    for (i, d) in a.dims.iter().enumerate() {
        if d.npus == 0 {
            return Err(doc.field_error(&format!("network.astra.dims[{i}].npus"), "must be at least 1"));
        }
        if d.bandwidth.bytes_per_s() <= 0.0 {
            return Err(doc.field_error(&format!("network.astra.dims[{i}].bandwidth"), "must be more than zero"));
        }
    }
    if a.splits == 0 {
        return Err(doc.field_error("network.astra.splits", "must be at least 1"));
    }
    if a.active_chunks == 0 {
        return Err(doc.field_error("network.astra.active_chunks", "must be at least 1"));
    }
    let npus: u64 = a.dims.iter().map(|d| d.npus as u64).product();
    if npus < hw.total_gpus() {
        return Err(doc.field_error(
            "network.astra.dims",
            format!("address {npus} NPUs, fewer than the machine's {} GPUs", hw.total_gpus()),
        ));
    }
    Ok(())
}
