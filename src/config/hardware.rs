//! The hardware description: GPUs, nodes and the links between them.

use super::nccl::{GpuArchitecture, HostCpu};
use super::whatif::{Degradation, Jitter, Slowdown};
use super::Document;
use crate::error::Result;
use crate::units::{Bandwidth, Bytes, FlopRate, SimDuration};
use serde::Deserialize;

/// A whole cluster: `nodes` identical nodes on one fabric.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareSpec {
    /// Preset or file name, used in reports.
    pub name: String,
    /// Number of nodes available.
    pub nodes: u32,
    /// The accelerator in every slot.
    pub gpu: GpuSpec,
    /// What is inside one node.
    pub node: NodeSpec,
    /// How communication is modelled.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The parallel filesystem, for checkpoints (optional).
    #[serde(default)]
    pub storage: Option<StorageSpec>,
    /// Failure rates and recovery, for training-run estimates (optional).
    #[serde(default)]
    pub failures: Option<FailureSpec>,
    /// Runs of nodes whose GPUs differ from `gpu` (see [`super::groups`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_groups: Vec<super::groups::NodeGroup>,
}

/// A parallel filesystem and the path to it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// Aggregate read bandwidth of the filesystem.
    pub read_bandwidth: Bandwidth,
    /// Aggregate write bandwidth of the filesystem for large checkpoint writes.
    pub write_bandwidth: Bandwidth,
    /// Latency of one I/O (send, receive, server and client processing).
    pub io_latency: SimDuration,
    /// Size of one I/O request.
    pub io_size: Bytes,
    /// I/Os each node keeps outstanding.
    pub outstanding_ios: u32,
    /// The filesystem's limit on I/O operations per second.
    pub iops: f64,
    /// Storage NICs per node.
    pub nics: u32,
    /// One storage NIC.
    pub nic: LinkSpec,
}

/// How often things fail and what recovery costs.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    /// Mean time between failures of one node (its CPUs, NICs, memory, software).
    pub node_mtbf: SimDuration,
    /// Mean time between failures of one GPU.
    pub gpu_mtbf: SimDuration,
    /// Time to restart the job after a failure, before the checkpoint load.
    pub restart: SimDuration,
}

/// How compute time is derived from an op's FLOPs and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ComputeModelKind {
    /// Roofline with a shape-dependent GEMM efficiency, HBM time and kernel overheads.
    #[default]
    Roofline,
    /// Every op takes FLOPs / peak: no memory time, no overhead (for schedule studies).
    Ideal,
}

/// One GEMM tile shape a kernel library may pick (rows x columns of the output per thread block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct GemmTile(pub u32, pub u32);

/// One GPU model.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Marketing name, for reports.
    pub model: String,
    /// Generation, for NCCL's tables (`ampere`, `hopper`, `blackwell`); unset: read from `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<GpuArchitecture>,
    /// Which compute model applies.
    #[serde(default)]
    pub compute: ComputeModelKind,
    /// Dense 16-bit tensor-core peak.
    pub peak_flops: FlopRate,
    /// Dense FP8 tensor-core peak (Hopper and later); none: the GPU has no FP8 tensor cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8_flops: Option<FlopRate>,
    /// HBM capacity.
    pub memory: Bytes,
    /// HBM bandwidth.
    pub memory_bandwidth: Bandwidth,
    /// Fraction of `memory_bandwidth` that streaming (memory-bound) kernels reach.
    #[serde(default = "one")]
    pub memory_efficiency: f64,
    /// Streaming multiprocessors: GEMM tiles run in waves of this many.
    #[serde(default = "one_u32")]
    pub sms: u32,
    /// Fraction of the tensor peak that one SM reaches on a large, compute-bound tile.
    #[serde(default = "one")]
    pub gemm_efficiency: f64,
    /// Fraction of `fp8_flops` that one SM reaches on a large FP8 tile; `gemm_efficiency` unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8_efficiency: Option<f64>,
    /// Fraction of the tensor peak FlashAttention-2's fused kernels reach, forward and backward
    /// together, on the FLOPs they do (a causal mask's skipped half not counted); `gemm_efficiency`
    /// unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_efficiency: Option<f64>,
    /// The same for cuDNN's fused attention (Transformer Engine's choice on Hopper);
    /// `attention_efficiency` unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cudnn_attention_efficiency: Option<f64>,
    /// The same for FlashAttention 1.x (`workload.attention: flash1`); none: not known for this
    /// GPU, and a workload asking for FlashAttention 1 is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash1_attention_efficiency: Option<f64>,
    /// Bandwidth from L2 to all SMs; small tiles whose arithmetic intensity is below
    /// peak / this bandwidth are limited by it.
    #[serde(default)]
    pub l2_bandwidth: Option<Bandwidth>,
    /// Tile shapes the GEMM library can pick; the fastest for each shape is used.
    #[serde(default = "default_tiles")]
    pub gemm_tiles: Vec<GemmTile>,
    /// Fixed cost of each wave of GEMM tiles: the main loop's prologue (filling the operand
    /// pipeline) and epilogue (writing the output tile), which do no tensor-core work.
    #[serde(default)]
    pub gemm_wave_overhead: SimDuration,
    /// The same for FP8 tiles; `gemm_wave_overhead` unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8_wave_overhead: Option<SimDuration>,
    /// Fixed cost of each kernel (launch and tail).
    #[serde(default)]
    pub kernel_overhead: SimDuration,
    /// Relative noise on kernel durations, drawn from the seeded RNG (a number: uniform in
    /// ±jitter; or a named distribution, see [`super::whatif`]).
    #[serde(default, skip_serializing_if = "Jitter::is_none")]
    pub jitter: Jitter,
    /// Slow GPUs: kernel durations multiplied per GPU (see [`super::whatif`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowdown: Vec<Slowdown>,
    /// Memory not available to the model: CUDA context, NCCL buffers, library workspaces.
    #[serde(default)]
    pub memory_reserved: Bytes,
    /// Allocator fragmentation, as a fraction of what the model allocates.
    #[serde(default)]
    pub memory_fragmentation: f64,
}

/// A point-to-point link class (NVLink port, NIC).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Nominal bandwidth per direction.
    pub bandwidth: Bandwidth,
    /// Latency of one hop (one step of a collective algorithm).
    pub latency: SimDuration,
    /// Fraction of the nominal bandwidth that NCCL-like transfers reach.
    #[serde(default = "one")]
    pub efficiency: f64,
    /// NVLink SHARP: the NVSwitch behind this link reduces and multicasts (third-generation
    /// NVSwitch and later, H100/H200/B200 nodes). Only on `node.nvlink`; see [`super::nccl`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sharp: bool,
}

impl LinkSpec {
    /// Bandwidth that large transfers actually get.
    pub fn effective_bandwidth(&self) -> Bandwidth {
        Bandwidth(self.bandwidth.0 * self.efficiency)
    }
}

/// One node: GPUs joined by NVLink/NVSwitch, and NICs to the fabric.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// GPUs per node.
    pub gpus: u32,
    /// Per-GPU NVLink bandwidth into the NVSwitch, per direction.
    pub nvlink: LinkSpec,
    /// Application NICs per node (one per GPU on DGX A100: a "rail" per GPU index).
    pub nics: u32,
    /// One NIC and its path into the fabric.
    pub nic: LinkSpec,
    /// GPUs behind one PCIe switch, which also holds `nics / gpus` of the NICs per GPU (DGX A100: 2
    /// GPUs and 2 NICs). NCCL chooses among a switch's NICs (`network.nccl.version`). Default 1.
    #[serde(default = "one_u32", skip_serializing_if = "super::workload::is_one")]
    pub gpus_per_pcie_switch: u32,
    /// Host time to dispatch one framework operation from Python (PyTorch's dispatcher, autograd
    /// recording, the kernel launch); operations the C++ autograd engine dispatches in the backward
    /// pass cost half. 0 (the default) leaves the host out.
    #[serde(default)]
    pub host_dispatch: SimDuration,
    /// What one NIC sends when its data comes through the CPU, not by GPUDirect RDMA: NCCL before
    /// PXN (2.12) sends so from a ring's last GPU not beside the NIC. Unset: no such path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_through_cpu: Option<Bandwidth>,
    /// The host CPUs' vendor (`intel`, `amd`), for NCCL's tables; unset: that of the GPUs' DGX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<HostCpu>,
}

/// Which network model turns communication into time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkModelKind {
    /// Alpha-beta per collective algorithm, no contention.
    #[default]
    Analytic,
    /// Flows on the links of the topology with max-min fair sharing.
    Flow,
    /// Every transfer is instant (for schedule studies).
    Ideal,
    /// ASTRA-sim's congestion-unaware analytical backend (`network.astra`), for comparisons.
    Astra,
}

impl NetworkModelKind {
    /// The YAML spelling.
    pub fn name(self) -> &'static str {
        match self {
            NetworkModelKind::Analytic => "analytic",
            NetworkModelKind::Flow => "flow",
            NetworkModelKind::Ideal => "ideal",
            NetworkModelKind::Astra => "astra",
        }
    }
}

/// Collective algorithm choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmChoice {
    /// The faster predicted of ring and tree (NCCL's algorithms) for each size and group, as NCCL's tuner picks.
    #[default]
    Auto,
    /// Rings over all ranks (one channel per NIC the group owns).
    Ring,
    /// Rings inside nodes, rings across nodes per rail, pipelined (not an NCCL algorithm: what-if studies).
    Hierarchical,
    /// Rings inside nodes, double binary trees across nodes per rail.
    Tree,
}

/// How NICs attach to leaf switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// NICs fill leaves in node order.
    #[default]
    FatTree,
    /// Scalable units of nodes; NIC r of every node of a unit goes to the unit's leaf r.
    RailOptimized,
}

/// The InfiniBand fabric between the NICs.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Leaf attachment.
    #[serde(default)]
    pub kind: TopologyKind,
    /// Switch levels (2: leaf-spine, 3: leaf-spine-core, 4: one more level for 100k-GPU fabrics).
    #[serde(default = "three")]
    pub levels: u32,
    /// Ports per switch.
    pub radix: u32,
    /// Leaf down:up bandwidth ratio (1 = full bisection, 2 = 2:1 oversubscribed).
    #[serde(default = "one")]
    pub oversubscription: f64,
    /// A switch-to-switch link (per port).
    pub link: LinkSpec,
}

fn three() -> u32 {
    3
}

impl TopologySpec {
    /// Leaf ports facing NICs: radix x o / (o + 1).
    pub fn leaf_down_ports(&self) -> u32 {
        ((self.radix as f64 * self.oversubscription / (self.oversubscription + 1.0)).floor() as u32).max(1)
    }
    /// The most leaves the levels can join: radix (2 levels), radix^2 / 2 (3), radix^3 / 4 (4).
    pub fn max_leaves(&self) -> u64 {
        // a folded Clos of L levels of radix-k switches: each level above the leaves halves the
        // ports that go further up, so it joins k^(L-1) / 2^(L-2) leaves (k; k^2/2; k^3/4)
        let k = self.radix as u64;
        (2..self.levels).fold(k, |leaves, _| leaves.saturating_mul(k) / 2)
    }
}

/// Network modelling options.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The model; `analytic` unless stated.
    #[serde(default)]
    pub model: NetworkModelKind,
    /// Collective algorithm; `auto` unless stated.
    #[serde(default)]
    pub algorithm: AlgorithmChoice,
    /// The fabric (needed by the flow model; without it the fabric above the NICs is non-blocking).
    #[serde(default)]
    pub topology: Option<TopologySpec>,
    /// The NCCL that runs the collectives: its version's cost model and what it discovered on this
    /// machine. Without it collectives are costed from the links alone (alpha-beta per step).
    #[serde(default)]
    pub nccl: Option<super::nccl::NcclSpec>,
    /// Degraded or failed NICs and leaf switches (see [`super::whatif`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<Degradation>,
    /// ASTRA-sim's network, read by `model: astra` (see [`super::astra`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub astra: Option<super::astra::AstraSpec>,
}

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn default_tiles() -> Vec<GemmTile> {
    vec![GemmTile(128, 128)]
}

impl HardwareSpec {
    /// Leaves the topology needs for this many nodes.
    pub fn leaves_needed(&self, t: &TopologySpec) -> u64 {
        let down = t.leaf_down_ports() as u64;
        let (nodes, nics) = (self.nodes as u64, self.node.nics as u64);
        match t.kind {
            TopologyKind::FatTree => (nodes * nics).div_ceil(down),
            TopologyKind::RailOptimized => nodes.div_ceil(down) * nics,
        }
    }

    fn validate_topology(&self, t: &TopologySpec, doc: &Document) -> Result<()> {
        if !(2..=4).contains(&t.levels) {
            return Err(doc.field_error(
                "network.topology.levels",
                "must be 2 (leaf-spine), 3 (leaf-spine-core) or 4 (a fourth switch level, for 100k-GPU fabrics)",
            ));
        }
        if t.radix < 2 {
            return Err(doc.field_error("network.topology.radix", "a switch needs at least 2 ports"));
        }
        if !(t.oversubscription >= 1.0 && t.oversubscription.is_finite()) {
            return Err(doc.field_error(
                "network.topology.oversubscription",
                "must be at least 1 (1 = full bisection)",
            ));
        }
        if !(t.link.efficiency > 0.0 && t.link.efficiency <= 1.0) {
            return Err(doc.field_error("network.topology.link.efficiency", "must be a fraction in (0, 1]"));
        }
        // a leaf's uplinks carry its NIC-facing bandwidth over the ratio: at least the 1 MB/s of every rate
        let uplink = t.leaf_down_ports() as f64 * t.link.effective_bandwidth().bytes_per_s() / t.oversubscription;
        if uplink < 1e6 {
            return Err(doc.field_error(
                "network.topology.oversubscription",
                format!("leaves a leaf {uplink:.3e} B/s of uplink bandwidth, below the 1 MB/s every rate needs"),
            ));
        }
        let (needed, max) = (self.leaves_needed(t), t.max_leaves());
        if needed > max {
            return Err(doc.field_error(
                "network.topology.radix",
                format!(
                    "too small for the node count: {} nodes x {} NICs need {needed} leaf switches of {} NIC ports, but a {}-level fat tree of radix {} joins at most {max}",
                    self.nodes,
                    self.node.nics,
                    t.leaf_down_ports(),
                    t.levels,
                    t.radix
                ),
            ));
        }
        Ok(())
    }

    /// Deserializes and checks ranges; errors name the YAML path and value.
    pub fn from_document(doc: &Document) -> Result<HardwareSpec> {
        let mut spec: HardwareSpec = doc.deserialize()?;
        super::groups::resolve(&mut spec.node_groups, spec.nodes, doc)?;
        spec.validate(doc)?;
        Ok(spec)
    }

    /// The machine's GPU models: `gpu`, then each node group's (index = group of a node, see
    /// [`super::groups::group_of_nodes`]).
    pub fn gpu_models(&self) -> Vec<&GpuSpec> {
        std::iter::once(&self.gpu)
            .chain(self.node_groups.iter().map(|g| g.gpu.spec()))
            .collect()
    }

    /// GPUs in the whole cluster.
    pub fn total_gpus(&self) -> u64 {
        self.nodes as u64 * self.node.gpus as u64
    }

    fn validate(&self, doc: &Document) -> Result<()> {
        let positive = |path: &str, v: u32| {
            if v == 0 {
                Err(doc.field_error(path, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("nodes", self.nodes)?;
        positive("node.gpus", self.node.gpus)?;
        positive("node.nics", self.node.nics)?;
        positive("gpu.sms", self.gpu.sms)?;
        super::ranges::check_hardware(self, doc)?;
        let fraction = |path: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(doc.field_error(path, "must be a fraction in (0, 1]"))
            }
        };
        fraction("gpu.memory_efficiency", self.gpu.memory_efficiency)?;
        fraction("gpu.gemm_efficiency", self.gpu.gemm_efficiency)?;
        for (path, value) in [
            ("gpu.fp8_efficiency", self.gpu.fp8_efficiency),
            ("gpu.attention_efficiency", self.gpu.attention_efficiency),
            ("gpu.cudnn_attention_efficiency", self.gpu.cudnn_attention_efficiency),
            ("gpu.flash1_attention_efficiency", self.gpu.flash1_attention_efficiency),
        ] {
            if let Some(e) = value {
                fraction(path, e)?;
            }
        }
        fraction("node.nvlink.efficiency", self.node.nvlink.efficiency)?;
        fraction("node.nic.efficiency", self.node.nic.efficiency)?;
        if !(0.0..1.0).contains(&self.gpu.memory_fragmentation) {
            return Err(doc.field_error("gpu.memory_fragmentation", "must be a fraction in [0, 1)"));
        }
        if self.gpu.memory_reserved >= self.gpu.memory {
            return Err(doc.field_error("gpu.memory_reserved", "must be less than gpu.memory"));
        }
        super::whatif::validate(self, doc)?;
        super::astra::validate(self, doc)?;
        if let Some(t) = &self.network.topology {
            self.validate_topology(t, doc)?;
        }
        super::nccl::validate(self, doc)?;
        super::ranges::check_storage(self, doc)?;
        if let Some(f) = &self.failures {
            for (path, v) in [("failures.node_mtbf", f.node_mtbf), ("failures.gpu_mtbf", f.gpu_mtbf)] {
                if v.0 == 0 {
                    return Err(doc.field_error(path, "a mean time between failures must be more than zero"));
                }
            }
        }
        if self.gpu.gemm_tiles.is_empty() {
            return Err(doc.field_error("gpu.gemm_tiles", "needs at least one tile shape, e.g. [[128, 128]]"));
        }
        for (i, t) in self.gpu.gemm_tiles.iter().enumerate() {
            if t.0 == 0 || t.1 == 0 {
                return Err(doc.field_error(&format!("gpu.gemm_tiles[{i}]"), "tile sides must be at least 1"));
            }
        }
        Ok(())
    }
}
