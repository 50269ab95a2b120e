//! Heterogeneous machines: runs of nodes whose GPUs differ from the hardware's `gpu`.
//!
//! ```yaml
//! node_groups:                 # in node order from node 0; nodes after them have `gpu`
//!   - { count: 4, gpu: dgx-h100 }          # the GPU section of a hardware preset or file
//!   - { count: 4, gpu: { model: ..., peak_flops: ..., ... } }   # or a GPU written out
//! ```
//!
//! Each pipeline stage must sit inside one group (its kernels are priced on that group's GPU); a
//! collective whose ranks span GPUs of different models runs without NCCL's LL128 protocol, which
//! NCCL enables only when every rank's GPU supports it alike. NVLink, NICs and the fabric stay the
//! hardware's.

use super::hardware::GpuSpec;
use crate::config::Document;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// A run of consecutive nodes with their own GPU.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// Nodes in the group.
    pub count: u32,
    /// Their GPU.
    pub gpu: GpuChoice,
}

/// A GPU named by a hardware preset or file, or written out.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "expected the name of a hardware preset or file, or a whole `gpu` section (as in a hardware file)"
)]
pub enum GpuChoice {
    /// The `gpu` section of this hardware preset or file.
    Named(String),
    /// A GPU written out.
    Spec(Box<GpuSpec>),
}

impl GpuChoice {
    /// The GPU (after [`resolve`]).
    pub fn spec(&self) -> &GpuSpec {
        match self {
            GpuChoice::Spec(g) => g,
            GpuChoice::Named(name) => unreachable!("node group GPU `{name}` is resolved on load"),
        }
    }
}

/// Replaces named GPUs by their specs and checks the groups against the machine.
pub fn resolve(groups: &mut [NodeGroup], nodes: u32, doc: &Document) -> Result<()> {
    let mut total = 0u64;
    for (i, g) in groups.iter_mut().enumerate() {
        if g.count == 0 {
            return Err(doc.field_error(&format!("node_groups[{i}].count"), "must be at least 1"));
        }
        total += g.count as u64;
        if let GpuChoice::Named(name) = &g.gpu {
            let source = crate::config::Source::Named(name.clone());
            let cannot = |e: crate::error::Error| {
                let e = e.to_string();
                doc.field_error(
                    &format!("node_groups[{i}].gpu"),
                    format!("cannot load it: {}", e.trim_start_matches("error: ")),
                )
            };
            let other = Document::load(&source, crate::config::DocumentKind::Hardware).map_err(cannot)?;
            let spec = super::HardwareSpec::from_document(&other).map_err(cannot)?;
            g.gpu = GpuChoice::Spec(Box::new(spec.gpu));
        }
    }
    if total > nodes as u64 {
        return Err(doc.field_error(
            "node_groups",
            format!("the groups hold {total} nodes, the machine has {nodes}"),
        ));
    }
    Ok(())
}

/// The GPU group of each node of `nodes`: 0 for the hardware's `gpu`, i + 1 for `groups[i]`.
pub fn group_of_nodes(groups: &[NodeGroup], nodes: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes as usize);
    for (i, g) in groups.iter().enumerate() {
        out.extend(std::iter::repeat_n(i as u8 + 1, g.count as usize));
    }
    out.resize(nodes as usize, 0);
    out.truncate(nodes as usize);
    out
}
