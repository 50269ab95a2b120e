//! The NCCL that runs the collectives (`network.nccl`), and NVLink SHARP (`node.nvlink.sharp`).
//!
//! NCCL's cost model has a table of constants per release (`src/model/network/nccl_tables.rs`)
//! and inputs that NCCL discovers on the machine at run time (its topology graph's channels and
//! per-channel speeds, and the launch cost it leaves out), which the hardware file states with
//! their derivation. NVLink SHARP (NVLS: the NVSwitch reduces and multicasts) is a property of the
//! node's NVSwitch; NCCL uses it from 2.17 on, so only the versions whose table has NVLS constants
//! ("2.21", "2.25") run it, and only where `node.nvlink.sharp` is true.
//!
//! NCCL also picks rows of its tables by the GPU's architecture (its compute capability: the
//! one-node LL cap, the per-channel LL128 and tree caps, the search's speeds, NVLS) and by the host
//! CPU's vendor (the LL cap across nodes; from 2.21 the network post overhead): `gpu.architecture`
//! (else read from `gpu.model`) and `node.cpu` (else the CPU of that generation's DGX).

use super::{Document, GpuSpec, HardwareSpec};
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
    /// The GPU architecture this release's built-in table was written for (the machine its
    /// constants were read for: DGX A100, DGX H100, DGX B200), which is also the newest it has
    /// kernels for (Hopper came with 2.15 in 2022, Blackwell with 2.25 in 2025).
    pub fn native_architecture(self) -> GpuArchitecture {
        match self {
            NcclVersion::V2_8 | NcclVersion::V2_10 => GpuArchitecture::Ampere,
            NcclVersion::V2_21 => GpuArchitecture::Hopper,
            NcclVersion::V2_25 => GpuArchitecture::Blackwell,
        }
    }

    /// As written in a hardware file.
    pub fn name(self) -> &'static str {
        match self {
            NcclVersion::V2_8 => "2.8",
            NcclVersion::V2_10 => "2.10",
            NcclVersion::V2_21 => "2.21",
            NcclVersion::V2_25 => "2.25",
        }
    }

    /// Whether this NCCL forwards a ring's data over NVLink to the GPU behind the NIC it leaves
    /// through (PXN, NCCL 2.12 on); before, the ring's last GPU on the node sends to the NIC itself.
    pub fn has_pxn(self) -> bool {
        matches!(self, NcclVersion::V2_21 | NcclVersion::V2_25)
    }
}

/// A GPU generation, as NCCL tells them apart (by compute capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuArchitecture {
    /// Compute capability 8.x: A100, A800, A30.
    Ampere,
    /// 9.0: H100, H200, H800, GH200.
    Hopper,
    /// 10.0: B200, GB200.
    Blackwell,
}

impl GpuArchitecture {
    /// From a marketing name such as `A100-SXM4-80GB`, `NVIDIA H200`, `HGX-H100` or `GB200`: a
    /// leading A, H or B (after `NVIDIA`, `HGX` or `DGX` and a space or dash, and a Grace `G`)
    /// followed by a digit. None for any other name.
    pub fn from_model_name(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        let name = ["NVIDIA", "HGX", "DGX"]
            .iter()
            .find_map(|p| upper.strip_prefix(p).and_then(|r| r.strip_prefix([' ', '-', '_'])))
            .unwrap_or(&upper);
        let name = name
            .strip_prefix('G')
            .filter(|r| r.starts_with(['H', 'B']))
            .unwrap_or(name);
        let mut chars = name.chars();
        let (letter, digit) = (chars.next()?, chars.next()?);
        if !digit.is_ascii_digit() {
            return None;
        }
        match letter {
            'A' => Some(GpuArchitecture::Ampere),
            'H' => Some(GpuArchitecture::Hopper),
            'B' => Some(GpuArchitecture::Blackwell),
            _ => None,
        }
    }

    /// As written in a hardware file.
    pub fn name(self) -> &'static str {
        match self {
            GpuArchitecture::Ampere => "ampere",
            GpuArchitecture::Hopper => "hopper",
            GpuArchitecture::Blackwell => "blackwell",
        }
    }
}

/// The vendor of a node's host CPUs, which NCCL's model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostCpu {
    /// Intel Xeon (DGX H100, DGX B200; NCCL's row for any CPU not AMD's).
    Intel,
    /// AMD EPYC (DGX A100).
    Amd,
    /// Arm (NVIDIA Grace in GH200 and GB200 systems): NCCL's rows for a CPU not AMD's, as Intel's.
    Arm,
}

/// What NCCL reads from the machine to pick its table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NcclHost {
    /// The oldest GPU architecture of the machine (NCCL keys on a communicator's lowest compute
    /// capability).
    pub architecture: GpuArchitecture,
    /// The host CPUs' vendor.
    pub cpu: HostCpu,
}

impl NcclHost {
    /// The machine a release's built-in table was written for.
    pub fn native(version: NcclVersion) -> Self {
        NcclHost::of_generation(version.native_architecture(), None)
    }

    /// A machine of `architecture` with `cpu`, else the CPU of that generation's DGX (AMD EPYC in
    /// the DGX A100, Intel Xeon in the DGX H100 and B200).
    fn of_generation(architecture: GpuArchitecture, cpu: Option<HostCpu>) -> Self {
        let dgx = match architecture {
            GpuArchitecture::Ampere => HostCpu::Amd,
            GpuArchitecture::Hopper | GpuArchitecture::Blackwell => HostCpu::Intel,
        };
        NcclHost {
            architecture,
            cpu: cpu.unwrap_or(dgx),
        }
    }
}

impl GpuSpec {
    /// `architecture` as written, else read from `model`.
    pub fn architecture(&self) -> Option<GpuArchitecture> {
        self.architecture
            .or_else(|| GpuArchitecture::from_model_name(&self.model))
    }
}

impl HardwareSpec {
    /// What NCCL reads from this machine: the oldest architecture of its GPU models (a model
    /// of unknown architecture counts as the one `version`'s table was written for) and
    /// `node.cpu`.
    pub fn nccl_host(&self, version: NcclVersion) -> NcclHost {
        let oldest = self
            .gpu_models()
            .iter()
            .map(|g| g.architecture().unwrap_or(version.native_architecture()))
            .min()
            .unwrap_or(version.native_architecture());
        NcclHost::of_generation(oldest, self.node.cpu)
    }

    /// `node.nic_through_cpu` where this machine's NCCL predates PXN (none without an NCCL model).
    pub fn nic_through_cpu_path(&self) -> Option<Bandwidth> {
        (self.network.nccl.as_ref()).and_then(|n| self.node.nic_through_cpu.filter(|_| !n.version.has_pxn()))
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
        let newest = n.version.native_architecture();
        let groups = hw.node_groups.iter().enumerate();
        let models = std::iter::once(("gpu".to_string(), &hw.gpu))
            .chain(groups.map(|(i, g)| (format!("node_groups[{i}].gpu"), g.gpu.spec())));
        for (path, gpu) in models {
            if let Some(arch) = gpu.architecture().filter(|&a| a > newest) {
                let (needs, use_) = match arch {
                    GpuArchitecture::Blackwell => ("2.25", "\"2.25\""),
                    _ => ("2.15", "\"2.21\" or \"2.25\""),
                };
                let how = if gpu.architecture.is_some() {
                    "architecture"
                } else {
                    "model"
                };
                // blame what a --set changed: the GPU's generation, unless the version was set too
                let gpu_field = format!("{path}.{how}");
                let blamed = if doc.is_overridden(&gpu_field) && !doc.is_overridden("network.nccl.version") {
                    gpu_field.as_str()
                } else {
                    "network.nccl.version"
                };
                return Err(doc.field_error(
                    blamed,
                    format!(
                        "NCCL {} has no kernels for {} GPUs ({path}.{how}: {}): they need NCCL {needs} or \
                         later; of the built-in tables use {use_}",
                        n.version.name(),
                        arch.name(),
                        if gpu.architecture.is_some() {
                            arch.name()
                        } else {
                            &gpu.model
                        },
                    ),
                ));
            }
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
