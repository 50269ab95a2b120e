//! The records of a trace file (version 1), shared by the reader and the writer.

use crate::config::WorkloadSpec;
use crate::ops::{CollectiveOp, FusedAttention, Kernel};
use crate::workload::graph::{Phase, Stream};
use serde::{Deserialize, Serialize};

/// The version this build reads and writes.
pub const VERSION: u32 = 1;

/// First line of a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `clustersim-trace`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Name for reports.
    pub name: String,
    /// Ranks (GPUs) the tasks run on: 0 .. ranks.
    pub ranks: u32,
    /// The workload that generated it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
}

/// One kernel: exactly one of the fields (a map, so that JSON and YAML read alike).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KernelRecord {
    /// [batch, m, n, k].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm: Option<[u64; 4]>,
    /// [batch, m, n, k] with FP8 operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm8: Option<[u64; 4]>,
    /// [flops, bytes] of a FlashAttention-2 kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<[u64; 2]>,
    /// [flops, bytes] of a cuDNN fused attention kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_cudnn: Option<[u64; 2]>,
    /// [flops, bytes] of a FlashAttention 1.x kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_flash1: Option<[u64; 2]>,
    /// Bytes streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// [flops, bytes].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<[u64; 2]>,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<u64>,
}

impl KernelRecord {
    pub(super) fn kernel(&self) -> Option<Kernel> {
        let given = [
            self.gemm.is_some(),
            self.gemm8.is_some(),
            self.attention.is_some(),
            self.attention_cudnn.is_some(),
            self.attention_flash1.is_some(),
            self.stream.is_some(),
            self.generic.is_some(),
            self.measured.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() != 1 {
            return None;
        }
        if let Some([batch, m, n, k]) = self.gemm {
            return Some(Kernel::Gemm { batch, m, n, k });
        }
        if let Some([batch, m, n, k]) = self.gemm8 {
            return Some(Kernel::Gemm8 { batch, m, n, k });
        }
        if let Some([flops, bytes]) = self.attention {
            let library = FusedAttention::Flash2;
            return Some(Kernel::Attention { flops, bytes, library });
        }
        if let Some([flops, bytes]) = self.attention_cudnn {
            let library = FusedAttention::Cudnn;
            return Some(Kernel::Attention { flops, bytes, library });
        }
        if let Some([flops, bytes]) = self.attention_flash1 {
            let library = FusedAttention::Flash1;
            return Some(Kernel::Attention { flops, bytes, library });
        }
        if let Some([flops, bytes]) = self.generic {
            return Some(Kernel::Generic { flops, bytes });
        }
        self.stream
            .map(|bytes| Kernel::Stream { bytes })
            .or(self.measured.map(|ns| Kernel::Measured { ns }))
    }

    pub(super) fn of(k: &Kernel) -> Self {
        match *k {
            Kernel::Gemm { batch, m, n, k } => KernelRecord {
                gemm: Some([batch, m, n, k]),
                ..Default::default()
            },
            Kernel::Gemm8 { batch, m, n, k } => KernelRecord {
                gemm8: Some([batch, m, n, k]),
                ..Default::default()
            },
            Kernel::Attention {
                flops,
                bytes,
                library: FusedAttention::Flash2,
            } => KernelRecord {
                attention: Some([flops, bytes]),
                ..Default::default()
            },
            Kernel::Attention {
                flops,
                bytes,
                library: FusedAttention::Cudnn,
            } => KernelRecord {
                attention_cudnn: Some([flops, bytes]),
                ..Default::default()
            },
            Kernel::Attention {
                flops,
                bytes,
                library: FusedAttention::Flash1,
            } => KernelRecord {
                attention_flash1: Some([flops, bytes]),
                ..Default::default()
            },
            Kernel::Stream { bytes } => KernelRecord {
                stream: Some(bytes),
                ..Default::default()
            },
            Kernel::Generic { flops, bytes } => KernelRecord {
                generic: Some([flops, bytes]),
                ..Default::default()
            },
            Kernel::Measured { ns } => KernelRecord {
                measured: Some(ns),
                ..Default::default()
            },
        }
    }
}

/// A compute op.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    /// Id used by tasks.
    pub id: u32,
    /// Name for timelines.
    pub name: String,
    /// Kernels, in order.
    pub kernels: Vec<KernelRecord>,
    /// Framework operations the host dispatches for them (default: one per kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ops: Option<u32>,
}

/// A rank group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    /// Id used by collectives.
    pub id: u32,
    /// Member ranks.
    pub ranks: Vec<u32>,
}

/// A task's collective.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CollectiveRecord {
    /// Instance id shared by the member tasks.
    pub id: u64,
    /// Operation (nccl-tests spelling).
    pub op: CollectiveName,
    /// Group id.
    pub group: u32,
    /// Bytes, nccl-tests convention.
    pub bytes: u64,
    /// The group spans pipeline stages: waiting there counts as pipeline bubble.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cross_stage: bool,
    /// Transformer Engine's userbuffers run it (they hold fewer SMs than NCCL's channels). When
    /// absent: the collectives on the `tensor` stream, none of the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userbuffers: Option<bool>,
    /// It runs over a data-parallel group inside a pass (ZeRO-3's weight gathers), for the
    /// timeline's labels.
    #[serde(default, skip_serializing_if = "is_default")]
    pub data_parallel: bool,
}

/// Collective operation names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CollectiveName {
    /// all-reduce
    AllReduce,
    /// reduce-scatter
    ReduceScatter,
    /// all-gather
    AllGather,
    /// broadcast
    Broadcast,
    /// all-to-all
    AllToAll,
}

impl From<CollectiveName> for CollectiveOp {
    fn from(c: CollectiveName) -> Self {
        match c {
            CollectiveName::AllReduce => CollectiveOp::AllReduce,
            CollectiveName::ReduceScatter => CollectiveOp::ReduceScatter,
            CollectiveName::AllGather => CollectiveOp::AllGather,
            CollectiveName::Broadcast => CollectiveOp::Broadcast,
            CollectiveName::AllToAll => CollectiveOp::AllToAll,
        }
    }
}

impl From<CollectiveOp> for CollectiveName {
    fn from(c: CollectiveOp) -> Self {
        match c {
            CollectiveOp::AllReduce => CollectiveName::AllReduce,
            CollectiveOp::ReduceScatter => CollectiveName::ReduceScatter,
            CollectiveOp::AllGather => CollectiveName::AllGather,
            CollectiveOp::Broadcast => CollectiveName::Broadcast,
            CollectiveOp::AllToAll => CollectiveName::AllToAll,
        }
    }
}

/// A send.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRecord {
    /// Receiving rank.
    pub peer: u32,
    /// Bytes.
    pub bytes: u64,
    /// Tag matching the receive.
    pub tag: u64,
}

/// A receive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvRecord {
    /// Sending rank.
    pub peer: u32,
    /// Tag matching the send.
    pub tag: u64,
}

/// A storage I/O.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageRecord {
    /// Bytes.
    pub bytes: u64,
    /// Write (true) or read.
    pub write: bool,
}

/// Stream names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StreamName {
    /// Compute stream.
    #[default]
    Compute,
    /// Data-parallel communication stream.
    DataParallel,
    /// Send stream.
    Send,
    /// Storage I/O stream.
    Io,
    /// Tensor-parallel collectives overlapped with compute.
    Tensor,
    /// Context-parallel ring transfers.
    Context,
}

impl StreamName {
    /// The graph's stream of this name.
    pub fn stream(self) -> Stream {
        match self {
            StreamName::Compute => Stream::Compute,
            StreamName::DataParallel => Stream::DataParallel,
            StreamName::Send => Stream::PipelineSend,
            StreamName::Io => Stream::Io,
            StreamName::Tensor => Stream::TensorComm,
            StreamName::Context => Stream::ContextComm,
        }
    }
    /// The name of the graph's stream of id `stream`.
    pub fn of(stream: u8) -> StreamName {
        match stream {
            0 => StreamName::Compute,
            1 => StreamName::DataParallel,
            2 => StreamName::Send,
            3 => StreamName::Io,
            4 => StreamName::Tensor,
            _ => StreamName::Context,
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A task.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Unique id.
    pub id: u64,
    /// Rank it runs on.
    pub rank: u32,
    /// Stream.
    #[serde(default, skip_serializing_if = "is_default")]
    pub stream: StreamName,
    /// Compute: op id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<u32>,
    /// Collective membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collective: Option<CollectiveRecord>,
    /// Send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendRecord>,
    /// Receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<RecvRecord>,
    /// Fixed wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ns: Option<u64>,
    /// A filesystem read or write by this rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageRecord>,
    /// Tasks that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u64>,
    /// Phase label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Microbatch label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microbatch: Option<u32>,
    /// Layer label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u16>,
    /// Model chunk label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u8>,
}

/// One line of a JSON Lines trace after the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// An op.
    Op(OpRecord),
    /// A group.
    Group(GroupRecord),
    /// A task.
    Task(TaskRecord),
}

/// A YAML trace: the header fields and the records as lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct YamlTrace {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) name: String,
    pub(super) ranks: u32,
    #[serde(default)]
    pub(super) workload: Option<WorkloadSpec>,
    #[serde(default)]
    pub(super) ops: Vec<OpRecord>,
    #[serde(default)]
    pub(super) groups: Vec<GroupRecord>,
    #[serde(default)]
    pub(super) tasks: Vec<TaskRecord>,
}

pub(super) fn phase_name(p: Phase) -> &'static str {
    p.name()
}

pub(super) fn phase_of(name: &str) -> Phase {
    match name {
        "forward" => Phase::Forward,
        "backward" => Phase::Backward,
        "recompute" => Phase::Recompute,
        "grad-reduce" => Phase::GradReduce,
        "optimizer" => Phase::Optimizer,
        "io" => Phase::Io,
        _ => Phase::Other,
    }
}
