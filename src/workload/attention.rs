//! The attention block of a layer under tensor parallelism: the projections (Q, K, V for
//! multi-head and grouped-query attention; the latent down and up projections of multi-head latent
//! attention, [`crate::workload::mla`]), the attention core, and the output projection.
//!
//! The core works per head on queries and keys of width d_qk and values of width d_v (both h / a
//! without MLA): per head and sequence the scores Q K^T take 2 s^2 d_qk FLOPs and the context P V
//! 2 s^2 d_v.

use super::transformer::{Block, LayerShape};
use crate::config::Recompute;
use crate::ops::Kernel;

const ACT: u64 = 2; // bytes per 16-bit activation element

impl LayerShape {
    /// Width of one head's queries and keys, d_qk: the head dimension (h / a unless the model
    /// sets it), or d_h + d_h^R with MLA.
    pub(crate) fn qk_head_dim(&self) -> u64 {
        self.mla.map_or(self.head_dim, |m| m.qk_head_dim())
    }
    /// Width of one head's values, d_v: the head dimension, or `v_head_dim` with MLA.
    pub(crate) fn v_head_dim(&self) -> u64 {
        self.mla.map_or(self.head_dim, |m| m.v_head_dim)
    }
    /// Width of every head's queries together: a d_qk (h unless the head dimension is set).
    pub(crate) fn q_width(&self) -> u64 {
        self.a * self.qk_head_dim()
    }
    /// Width of the keys and of the values together: 2 kv (2 h without grouped-query attention),
    /// or a (d_qk + d_v) with MLA (every head has its own keys and values).
    pub(crate) fn kv_width(&self) -> u64 {
        self.mla
            .map_or(2 * self.kv, |_| self.a * (self.qk_head_dim() + self.v_head_dim()))
    }
    /// Width of every head's attention output: a d_v (h unless the head dimension is set).
    pub(crate) fn out_width(&self) -> u64 {
        self.a * self.v_head_dim()
    }
    /// Width of the projection from the layer's input to queries, keys and values.
    fn qkv_width(&self) -> u64 {
        self.q_width() + 2 * self.kv
    }
    /// Qwen3's RMSNorms over each head's queries and keys, forward (read and write both) or
    /// backward (two passes, as a layer norm's: 5 bytes moved per byte of input); none without
    /// `qk_norm`.
    fn qk_norm(&self, backward: bool) -> Option<Kernel> {
        let bytes = self.b * self.s * (self.q_width() + self.kv) / self.t * ACT;
        self.qk_norm
            .then(|| Self::stream(if backward { bytes * 5 } else { bytes * 2 }))
    }

    /// elements of this rank's attention scores: b x (a/t) x s x s
    pub(crate) fn scores(&self) -> u64 {
        self.b * (self.a / self.t) * self.s * self.s
    }

    /// Whether Megatron-LM's fused scale-mask-softmax kernel takes the scores: its warp-per-row
    /// kernel needs 16 < s <= 2048, s a multiple of 4, and the score matrices of a rank
    /// (b x a/t) a multiple of 4 (`FusedScaleMaskSoftmax.forward`, megatron/model/fused_softmax.py,
    /// v2.5, 2021). Otherwise it runs PyTorch's kernels (below).
    pub(crate) fn fused_softmax(&self) -> bool {
        let s = self.s;
        s > 16 && s <= 2048 && s % 4 == 0 && (self.b * (self.a / self.t)) % 4 == 0
    }

    /// The attention block's name: the host dispatches more operations for it when the 2021
    /// separate kernels fall back from the fused softmax ([`crate::workload::dispatch`]).
    fn attention_block_name(&self) -> &'static str {
        if self.fused_attention.is_none() && !self.fused_softmax() {
            "attention (unfused softmax)"
        } else {
            "attention"
        }
    }

    /// Scale, causal mask and softmax forward: the fused kernel reads and writes the scores once
    /// (2 + 2 bytes per element). Without it, Megatron-LM 2021's fallback with its defaults
    /// (query-key layer scaling, so the softmax in fp32) runs five kernels: the cast to fp32 (read
    /// 2, write 4), the scale (4 + 4), the mask filled in place (4 + 4; the s x s mask stays in
    /// L2), softmax (4 + 4) and the cast back (4 + 2): 36 bytes per element.
    fn softmax_forward(&self) -> Vec<Kernel> {
        self.softmax_kernels(ACT * 2, &[6, 8, 8, 8, 6])
    }

    /// Its backward: the fused kernel reads the probabilities and their gradient and writes the
    /// scores' gradient (6 bytes per element); the fallback's autograd runs the five backwards:
    /// the cast (read 2, write 4), softmax in fp32 (read 4 + 4, write 4), the mask (4 + 4), the
    /// scale (4 + 4) and the cast (4 + 2): 40 bytes per element.
    fn softmax_backward(&self) -> Vec<Kernel> {
        self.softmax_kernels(ACT * 3, &[6, 12, 8, 8, 6])
    }

    /// The fused kernel streaming `fused` bytes per score, or the fallback's kernels streaming
    /// `fallback` bytes per score each.
    fn softmax_kernels(&self, fused: u64, fallback: &[u64]) -> Vec<Kernel> {
        let e = self.scores();
        if self.fused_softmax() {
            vec![Self::stream(e * fused)]
        } else {
            fallback.iter().map(|b| Self::stream(e * b)).collect()
        }
    }

    /// Attention core forward: scores, scale-mask-softmax, dropout, context; or one fused
    /// kernel: the two products (2 bh s^2 (d_qk + d_v) FLOPs, of which the causal mask lets it skip
    /// half: fused kernels do not compute the masked blocks, bh s^2 (d_qk + d_v)), reading Q, K, V
    /// and writing O.
    pub(crate) fn attention_core(&self) -> Vec<Kernel> {
        let (bh, s, dk, dv) = (self.b * self.a / self.t, self.s, self.qk_head_dim(), self.v_head_dim());
        if let Some(library) = self.fused_attention {
            return vec![Kernel::Attention {
                flops: bh * s * s * (dk + dv),
                bytes: bh * s * (2 * dk + 2 * dv) * ACT,
                library,
            }];
        }
        let mut core = vec![Kernel::Gemm {
            batch: bh,
            m: s,
            n: s,
            k: dk,
        }]; // Q K^T
        core.extend(self.softmax_forward()); // scale, mask, softmax
        core.extend([
            Self::stream(self.scores() * (ACT * 2 + 1)), // dropout: read, write, 1-byte mask
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: dv,
                k: s,
            }, // probabilities x V
        ]);
        core
    }

    /// Attention core backward (with the forward recomputed first under selective recompute); or
    /// a fused backward kernel, which recomputes the scores itself: 5 products (scores and dQ, dK
    /// over d_qk; dP and dV over d_v: 2 bh s^2 (3 d_qk + 2 d_v) FLOPs, half of them skipped under
    /// the causal mask), reading Q, K, V, O, dO and writing dQ, dK, dV. Selective recompute
    /// checkpoints the core attention whatever runs it (Megatron-Core's `checkpoint_core_attention`,
    /// Transformer Engine's `checkpoint_core_attention`), so with a fused kernel its forward runs
    /// again before its backward.
    pub(crate) fn attention_core_backward(&self, recompute: Recompute) -> Vec<Kernel> {
        let (bh, s, dk, dv) = (self.b * self.a / self.t, self.s, self.qk_head_dim(), self.v_head_dim());
        let mut out = if recompute == Recompute::Selective {
            self.attention_core() // recompute scores, softmax, dropout, context (or the fused forward)
        } else {
            Vec::new()
        };
        if let Some(library) = self.fused_attention {
            out.push(Kernel::Attention {
                flops: bh * s * s * (3 * dk + 2 * dv),
                bytes: bh * s * (4 * dk + 4 * dv) * ACT,
                library,
            });
            return out;
        }
        let product = |n, k| Kernel::Gemm { batch: bh, m: s, n, k };
        out.extend([
            product(s, dv),                              // grad probabilities = dO V^T
            product(dv, s),                              // grad V = P^T dO
            Self::stream(self.scores() * (ACT * 2 + 1)), // dropout backward
        ]);
        out.extend(self.softmax_backward());
        out.extend([
            product(dk, s), // grad Q = dS K
            product(dk, s), // grad K = dS^T Q
        ]);
        out
    }

    /// The attention block's forward, from the previous block's residual to the output
    /// projection, with its tensor-parallel collectives' places.
    pub(crate) fn attention_forward_block(&self) -> Block {
        if let Some(mla) = self.mla {
            return self.mla_forward(&mla);
        }
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let mut attention = vec![
            Self::stream(self.local_bsh() * 7 / 2), // residual bias-dropout-add of the previous block: 3 reads/writes + mask
            Self::stream(self.local_bsh() * 2),     // layer norm: read + write
            self.linear(bs, self.qkv_width() / t, h), // QKV projection (K and V narrower with grouped queries)
        ];
        attention.extend(self.qk_norm(false));
        attention.extend(self.attention_core());
        attention.push(self.linear(bs, h, self.out_width() / t)); // output projection (row-parallel)
        Block::whole(self.attention_block_name(), attention, self.allreduce_bytes())
    }

    /// The attention block's backward (with the recomputation `recompute` asks for), from the
    /// MLP block's layer norm to the layer input's gradient, with its tensor-parallel collectives'
    /// places.
    pub(crate) fn attention_backward_block(&self, recompute: Recompute) -> Block {
        if let Some(mla) = self.mla {
            return self.mla_backward(&mla, recompute);
        }
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let mut attention = self.output_projection_backward();
        attention.extend(self.attention_core_backward(recompute));
        attention.extend(self.qk_norm(true));
        attention.extend([
            self.linear(bs, h, self.qkv_width() / t), // QKV data gradient
            self.linear(h, self.qkv_width() / t, bs), // QKV weight gradient
            Self::stream(self.local_bsh() * 5),       // layer norm backward (two passes)
            Self::stream(self.local_bsh() * 3),       // residual: add the two gradients of the layer input
        ]);
        let qkv_weight_gradient = attention.len() - 3;
        Block::whole(self.attention_block_name(), attention, self.allreduce_bytes()).reduced_beside(qkv_weight_gradient)
    }

    /// The start of the attention block's backward: the MLP block's layer norm and the residual,
    /// the dropout and bias gradient after the output projection, and its data and weight
    /// gradients (row-parallel, from the heads' outputs of width `out_width` / t).
    pub(crate) fn output_projection_backward(&self) -> Vec<Kernel> {
        let (bs, h, o) = (self.b * self.s, self.h, self.out_width() / self.t);
        vec![
            Self::stream(self.local_bsh() * 5), // layer norm backward: two passes, 10 B per element
            Self::stream(self.local_bsh() * 3), // residual: add the two gradients of the block input
            Self::stream(self.local_bsh() * 5 / 2), // dropout backward after attention
            Self::stream(self.local_bsh()),     // bias gradient of the projection output
            self.linear(bs, o, h),              // projection data gradient
            self.linear(o, h, bs),              // projection weight gradient
        ]
    }
}
