//! Multi-token prediction (DeepSeek-V3 section 2.2; Megatron-Core's `multi_token_prediction.py`):
//! the work of one module besides its transformer layer, as Megatron-Core runs it on the last
//! pipeline stage under tensor and sequence parallelism.
//!
//! Forward: the tokens one further ahead are embedded (a vocabulary-parallel lookup in the input
//! embedding's copy on the last stage, joined over the tensor group like the input embedding), the
//! embedding and the previous depth's hidden states pass an RMSNorm each and are concatenated
//! (2h wide), and `eh_proj`, a column-parallel 2h x h linear layer (its input all-gathered from
//! the sequence shards under sequence parallelism, its output gathered over the tensor group and
//! cut back into sequence shards), projects them to h. Then the module's transformer layer and,
//! after the decoder, one more pass of the shared output layer and the cross-entropy.
//! Backward: the same in reverse; the projection's input gradient is reduced over the tensor group.

use super::transformer::{LayerShape, Piece};
use crate::ops::CollectiveOp;

impl LayerShape {
    /// One module's forward before its transformer layer: the embedding of the shifted tokens,
    /// the two norms and the projection.
    pub fn mtp_glue_forward(&self) -> Vec<Piece> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let mut out = self.embedding_forward();
        out.push(Piece::Compute(
            "mtp",
            vec![
                Self::stream(self.local_bsh() * 2 * 2), // two RMSNorms: read + write each
                Self::stream(self.local_bsh() * 2 * 2), // concatenation: read both, write 2h
            ],
        ));
        if self.sp {
            out.push(Piece::Tensor(CollectiveOp::AllGather, 2 * self.allreduce_bytes()));
        }
        out.push(Piece::Compute("mtp", vec![self.linear(bs, h / t, 2 * h)]));
        if t > 1 {
            out.push(Piece::Tensor(CollectiveOp::AllGather, self.allreduce_bytes()));
        }
        out
    }

    /// One module's backward after its transformer layer's: the projection's data and weight
    /// gradients, its input gradient reduced over the tensor group, the norms' backward and the
    /// embedding's scatter-add.
    pub fn mtp_glue_backward(&self) -> Vec<Piece> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let mut out = vec![Piece::Compute(
            "mtp",
            vec![self.linear(bs, 2 * h, h / t), self.linear(2 * h, h / t, bs)],
        )];
        if t > 1 {
            let op = if self.sp {
                CollectiveOp::ReduceScatter
            } else {
                CollectiveOp::AllReduce
            };
            out.push(Piece::Tensor(op, 2 * self.allreduce_bytes()));
        }
        out.push(Piece::Compute(
            "mtp",
            vec![Self::stream(self.local_bsh() * 5 * 2)], // two RMSNorms backward: two passes each
        ));
        out.extend(self.embedding_backward());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Kernel;

    /// DeepSeek-V3's module on 2 tensor ranks with sequence parallelism: b 1, s 4096, h 7168.
    fn shape(t: u32, sp: bool) -> LayerShape {
        let m: crate::config::ModelSpec = serde_yaml::from_str(
            "{ layers: 1, hidden: 7168, heads: 128, seq_len: 4096, vocab: 129280, mtp_layers: 1 }",
        )
        .unwrap();
        LayerShape::new(&m, 1, t, sp)
    }

    fn gemm_flops(pieces: &[Piece]) -> u64 {
        pieces
            .iter()
            .flat_map(|p| match p {
                Piece::Compute(_, k) => k.clone(),
                _ => Vec::new(),
            })
            .map(|k| match k {
                Kernel::Gemm { batch, m, n, k } | Kernel::Gemm8 { batch, m, n, k } => 2 * batch * m * n * k,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn the_projection_takes_2_s_2h_h_over_t_forward_and_twice_that_backward() {
        // 2 x 4096 tokens x (2 x 7168) x 7168 / 2 ranks = 4.21e11 FLOPs forward per rank; the data and
        // weight gradients twice that
        let sh = shape(2, true);
        let forward = 2 * 4096 * (2 * 7168) * 7168 / 2;
        assert_eq!(gemm_flops(&sh.mtp_glue_forward()), forward);
        assert_eq!(gemm_flops(&sh.mtp_glue_backward()), 2 * forward);
        // under sequence parallelism: the embedding's reduce-scatter, the projection input's
        // all-gather (2h wide) and its output's all-gather (h); backward its input gradient's
        // reduce-scatter (2h); one rank alone: none
        let colls = |p: &[Piece]| p.iter().filter(|p| matches!(p, Piece::Tensor(..))).count();
        assert_eq!(colls(&sh.mtp_glue_forward()), 3);
        assert_eq!(colls(&sh.mtp_glue_backward()), 1);
        assert_eq!(colls(&shape(1, false).mtp_glue_forward()), 0);
    }
}
