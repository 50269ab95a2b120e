//! The vocabulary that workloads and models share: what a kernel is and which collectives exist.
//!
//! Workloads say what runs (sized kernels, collectives over groups); models say how long it takes.
//! Both speak these types, so this file sits below both and imports nothing of either.

/// One GPU kernel, sized; priced by the compute model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `batch` independent (m x k) . (k x n) products in 16-bit precision.
    Gemm {
        /// Independent products (batched GEMM).
        batch: u64,
        /// Rows of the output.
        m: u64,
        /// Columns of the output.
        n: u64,
        /// Reduction dimension.
        k: u64,
    },
    /// A GEMM with FP8 operands (16-bit output) at the GPU's FP8 tensor rate, preceded by the cast
    /// of its m x k input to FP8 (a streaming kernel of 3 bytes per element: read 2, write 1; the
    /// scaling factor's amax bookkeeping is negligible), as Transformer Engine runs a linear layer.
    Gemm8 {
        /// Independent products (batched GEMM).
        batch: u64,
        /// Rows of the output.
        m: u64,
        /// Columns of the output.
        n: u64,
        /// Reduction dimension.
        k: u64,
    },
    /// A fused attention kernel: its matrix FLOPs at the GPU's efficiency for that library's
    /// kernels, or its bytes through HBM, whichever takes longer.
    Attention {
        /// Floating-point operations of its matrix products (those the causal mask skips not counted).
        flops: u64,
        /// Bytes it reads and writes in HBM (Q, K, V, O and their gradients; no s x s matrix).
        bytes: u64,
        /// Whose fused kernel runs it.
        library: FusedAttention,
    },
    /// A memory-bound kernel that streams this many bytes through HBM.
    Stream {
        /// Bytes read plus bytes written.
        bytes: u64,
    },
    /// A kernel of known work but unknown shape: roofline of FLOPs at the GEMM rate and bytes.
    Generic {
        /// Floating-point operations.
        flops: u64,
        /// Bytes moved through HBM.
        bytes: u64,
    },
    /// A kernel whose duration was measured (traces): taken as is.
    Measured {
        /// Duration in nanoseconds.
        ns: u64,
    },
}

/// The library of a fused attention kernel: their speeds differ by about 2x on Hopper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FusedAttention {
    /// FlashAttention-2 (Dao 2023), at `gpu.attention_efficiency`.
    #[default]
    Flash2,
    /// cuDNN's fused flash attention, which Transformer Engine prefers on Hopper, at
    /// `gpu.cudnn_attention_efficiency` (or `attention_efficiency` where the GPU has none).
    Cudnn,
    /// FlashAttention 1.x (Dao et al. 2022), at `gpu.flash1_attention_efficiency` (a workload
    /// asking for it on a GPU without that figure is refused when the run is set up).
    Flash1,
}

/// What limits a kernel, for the time breakdown by kind of kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// Matrix multiplies (16-bit or FP8, batched or not), on the tensor cores.
    Gemm,
    /// Fused attention kernels (FlashAttention, cuDNN).
    Attention,
    /// Memory-bound kernels: element-wise, norms, softmax, casts, optimizer passes.
    MemoryBound,
    /// Kernels of known work but unknown shape, and measured kernels of traces.
    Other,
}

impl KernelKind {
    /// How many kinds there are.
    pub const COUNT: usize = 4;
    /// Its place in a per-kind array.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Kernel {
    /// What kind of kernel this is.
    pub fn kind(&self) -> KernelKind {
        match *self {
            Kernel::Gemm { .. } | Kernel::Gemm8 { .. } => KernelKind::Gemm,
            Kernel::Attention { .. } => KernelKind::Attention,
            Kernel::Stream { .. } => KernelKind::MemoryBound,
            Kernel::Generic { .. } | Kernel::Measured { .. } => KernelKind::Other,
        }
    }

    /// Bytes a streaming kernel moves through HBM (other kernels count none).
    pub fn streamed_bytes(&self) -> u64 {
        match *self {
            Kernel::Stream { bytes } => bytes,
            _ => 0,
        }
    }

    /// Floating-point operations (2 per multiply-add; streaming kernels count none).
    pub fn flops(&self) -> f64 {
        match *self {
            Kernel::Gemm { batch, m, n, k } | Kernel::Gemm8 { batch, m, n, k } => {
                2.0 * batch as f64 * m as f64 * n as f64 * k as f64
            }
            Kernel::Generic { flops, .. } | Kernel::Attention { flops, .. } => flops as f64,
            Kernel::Stream { .. } | Kernel::Measured { .. } => 0.0,
        }
    }
}

/// Collective operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollectiveOp {
    /// Sum across the group, result everywhere.
    AllReduce,
    /// Sum, each rank keeps 1/n.
    ReduceScatter,
    /// Gather 1/n from each rank, result everywhere.
    AllGather,
    /// One rank's buffer to all.
    Broadcast,
    /// Each rank sends a distinct 1/n to every other.
    AllToAll,
}

impl CollectiveOp {
    /// Name in nccl-tests spelling.
    pub fn name(self) -> &'static str {
        match self {
            CollectiveOp::AllReduce => "all-reduce",
            CollectiveOp::ReduceScatter => "reduce-scatter",
            CollectiveOp::AllGather => "all-gather",
            CollectiveOp::Broadcast => "broadcast",
            CollectiveOp::AllToAll => "all-to-all",
        }
    }
}
