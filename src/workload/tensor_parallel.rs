//! Where a layer's tensor-parallel collectives go: around each block an all-reduce, or with
//! sequence parallelism an all-gather and a reduce-scatter, optionally beside the GEMMs next to
//! them (Megatron-Core's `--tp-comm-overlap`).
//!
//! A block usually gathers its whole input before its first kernel and reduces its whole output
//! after its last. Multi-head latent attention does both inside the block: its down projections
//! are replicated on every tensor rank and run on the rank's own tokens, so the all-gather comes
//! after them (of the latents, not of the layer input), and in the backward pass the latents'
//! gradients are reduced before the down projections' backward.

use super::transformer::{Block, LayerShape, Piece};
use crate::ops::{CollectiveOp, Kernel};

impl LayerShape {
    /// Adds the tensor-parallel communication of each block: an all-reduce after it, or with
    /// sequence parallelism an all-gather before it and a reduce-scatter after it (likewise in the
    /// backward pass, where the conjugate operations swap), at the places the block gives. None
    /// when t = 1, where the blocks merge into one compute piece.
    pub(crate) fn with_collectives(&self, blocks: Vec<Block>) -> Vec<Piece> {
        if self.t == 1 {
            return vec![Piece::Compute(
                "layer",
                blocks.into_iter().flat_map(|b| b.kernels).collect(),
            )];
        }
        let mut out = Vec::new();
        for block in blocks {
            if self.sp && self.tp_overlap {
                out.extend(Self::overlapped(block));
                continue;
            }
            if let (true, Some(w)) = (self.tp_async, block.async_at) {
                out.extend(self.reduced_beside_weight_gradient(block, w));
                continue;
            }
            let (name, k) = (block.name, &block.kernels);
            let compute = |range: std::ops::Range<usize>, out: &mut Vec<Piece>| {
                if !range.is_empty() {
                    out.push(Piece::Compute(name, k[range].to_vec()));
                }
            };
            let (g, r) = (block.gather_at, block.reduce_at);
            if self.sp {
                compute(0..g, &mut out);
                out.push(Piece::Tensor(CollectiveOp::AllGather, block.gather_bytes));
                // an empty block still gets its compute piece (the 2021 host counts are per block)
                out.push(Piece::Compute(name, k[g..r].to_vec()));
                out.push(Piece::Tensor(CollectiveOp::ReduceScatter, block.reduce_bytes));
            } else {
                out.push(Piece::Compute(name, k[..r].to_vec()));
                out.push(Piece::Tensor(CollectiveOp::AllReduce, block.reduce_bytes));
            }
            compute(r..k.len(), &mut out);
        }
        out
    }

    /// A backward block whose input-gradient reduction (all-reduce, or reduce-scatter with sequence
    /// parallelism) is issued after the data gradient and runs beside weight-gradient kernel `w`
    /// (Megatron-LM's `LinearWithGradAccumulationAndAsyncCommunication`); the kernels after it wait
    /// for both. The block's own name stays on the piece before (the host counts are per block).
    fn reduced_beside_weight_gradient(&self, block: Block, w: usize) -> Vec<Piece> {
        let (name, k, g) = (block.name, &block.kernels, block.gather_at);
        let op = if self.sp {
            CollectiveOp::ReduceScatter
        } else {
            CollectiveOp::AllReduce
        };
        let mut out = Vec::new();
        if self.sp {
            if g > 0 {
                out.push(Piece::Compute(name, k[..g].to_vec()));
            }
            out.push(Piece::Tensor(CollectiveOp::AllGather, block.gather_bytes));
        }
        let start = if self.sp { g } else { 0 };
        out.push(Piece::Compute(name, k[start..w].to_vec()));
        out.push(Piece::AsyncReduce(op, block.reduce_bytes, vec![k[w]]));
        if w + 1 < k.len() {
            out.push(Piece::Compute("after the async reduction", k[w + 1..].to_vec()));
        }
        out
    }

    /// A block's pieces with its all-gather beside its first GEMM after the gather point and its
    /// reduce-scatter beside its last before the reduction point (Megatron-Core's AG+GEMM and
    /// GEMM+RS overlap; in the backward pass the same pair of collectives and the data-gradient and
    /// weight-gradient GEMMs): the kernels before the first GEMM run first, those between and after
    /// in between and after.
    /// Its pieces are named apart from the whole blocks (one host operation per kernel: the host
    /// counts of [`crate::workload::dispatch`] are the 2021 code's for whole blocks).
    fn overlapped(block: Block) -> Vec<Piece> {
        let name = match block.name {
            "attention" => "attention (tp overlap)",
            "mlp" => "mlp (tp overlap)",
            other => other,
        };
        let (kernels, g, r) = (&block.kernels, block.gather_at, block.reduce_at);
        let (ag, rs) = (block.gather_bytes, block.reduce_bytes);
        let is_gemm = |i: &usize| matches!(kernels[*i], Kernel::Gemm { .. } | Kernel::Gemm8 { .. });
        let (Some(first), Some(last)) = ((g..r).find(is_gemm), (g..r).rev().find(is_gemm)) else {
            let mut out = Vec::new();
            if g > 0 {
                out.push(Piece::Compute(name, kernels[..g].to_vec()));
            }
            out.push(Piece::Tensor(CollectiveOp::AllGather, ag));
            out.push(Piece::Compute(name, kernels[g..r].to_vec()));
            out.push(Piece::Tensor(CollectiveOp::ReduceScatter, rs));
            if r < kernels.len() {
                out.push(Piece::Compute(name, kernels[r..].to_vec()));
            }
            return out;
        };
        let mut out = Vec::new();
        let compute = |range: std::ops::Range<usize>, out: &mut Vec<Piece>| {
            if !range.is_empty() {
                out.push(Piece::Compute(name, kernels[range].to_vec()));
            }
        };
        compute(0..first, &mut out);
        out.push(Piece::Overlapped(
            CollectiveOp::AllGather,
            ag,
            name,
            vec![kernels[first]],
        ));
        if last > first {
            compute(first + 1..last, &mut out);
            out.push(Piece::Overlapped(
                CollectiveOp::ReduceScatter,
                rs,
                name,
                vec![kernels[last]],
            ));
        } else {
            out.push(Piece::Tensor(CollectiveOp::ReduceScatter, rs));
        }
        compute(last + 1..kernels.len(), &mut out);
        out
    }
}
