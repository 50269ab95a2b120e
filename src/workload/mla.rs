//! The kernels of a multi-head latent attention block (DeepSeek-V2/V3, `model.mla`) under tensor
//! parallelism, as Megatron-Core's `MLASelfAttention` runs it with Transformer Engine (its GPT
//! layer spec: `linear_q_down_proj` and `linear_kv_down_proj` are `TELinear` with
//! `parallel_mode="duplicated"`, the up projections `TEColumnParallelLinear`, the output projection
//! `TERowParallelLinear`).
//!
//! Notation: tokens T = b s, heads a, tensor degree t, hidden h, query latent q (`q_lora_rank`;
//! 0: none), key/value latent c (`kv_lora_rank`), per-head widths n (`qk_nope_head_dim`), r
//! (`qk_rope_head_dim`) and v (`v_head_dim`), d_qk = n + r.
//!
//! - The down projections h -> q and h -> c + r are replicated on every tensor rank (their weights
//!   are duplicated, not split) and run on the rank's own tokens: T / t of them with sequence
//!   parallelism, all T without. RMSNorms on the two latents follow.
//! - With sequence parallelism the latents (q + c + r wide; h + c + r without query compression,
//!   whose query projection reads the layer input) are all-gathered over the tensor group, in place
//!   of the dense block's all-gather of the h-wide input.
//! - The up projections are column-parallel, split by heads: q -> (a/t) d_qk for the queries (h ->
//!   (a/t) d_qk without compression) and c -> (a/t)(n + v) for the keys' non-rotary part and the
//!   values; the rotary key (r wide) is shared by all heads.
//! - Attention per head with queries and keys of d_qk and values of v; the row-parallel output
//!   projection (a/t) v -> h, then the reduce-scatter (or all-reduce) of the h-wide output as in a
//!   dense layer.
//! - Backward runs the same in reverse; the latents' gradients are reduced over the tensor group
//!   (reduce-scatter, or all-reduce without sequence parallelism) before the replicated down
//!   projections' backward.
//!
//! The replicated down projections' weight gradients differ by tensor rank under sequence
//! parallelism (each rank saw its own tokens), and Megatron-Core all-reduces them over the tensor
//! group with the norms' gradients (the `sequence_parallel` parameter attribute); that small
//! all-reduce is not modelled (nor is the norms' one for any layer).

use super::transformer::{Block, LayerShape};
use crate::config::{MlaSpec, Recompute};

const ACT: u64 = 2; // bytes per 16-bit activation element

impl LayerShape {
    /// Tokens the replicated down projections see on one rank: T / t with sequence parallelism.
    fn mla_local_tokens(&self) -> u64 {
        let tokens = self.b * self.s;
        if self.sp {
            tokens / self.t
        } else {
            tokens
        }
    }

    /// Width of what the query up projection reads: q, or h without query compression.
    fn mla_query_input(mla: &MlaSpec, h: u64) -> u64 {
        if mla.q_lora_rank > 0 {
            mla.q_lora_rank
        } else {
            h
        }
    }

    /// Bytes of the latents the tensor group gathers (and of their gradients it reduces):
    /// T (q + c + r) 16-bit elements, or T (h + c + r) without query compression.
    pub fn mla_latent_bytes(&self, mla: &MlaSpec) -> u64 {
        let width = Self::mla_query_input(mla, self.h) + mla.kv_lora_rank + mla.qk_rope_head_dim;
        self.b * self.s * width * ACT
    }

    /// The MLA block's forward: residual and norm, down projections and latent norms on the
    /// rank's tokens, then (after the all-gather) the up projections, the core and the output
    /// projection.
    pub(crate) fn mla_forward(&self, mla: &MlaSpec) -> Block {
        let (tokens, local, h, t) = (self.b * self.s, self.mla_local_tokens(), self.h, self.t);
        let heads = self.a / t;
        let (c, r) = (mla.kv_lora_rank, mla.qk_rope_head_dim);
        let mut kernels = vec![
            Self::stream(self.local_bsh() * 7 / 2), // residual bias-dropout-add of the previous block
            Self::stream(self.local_bsh() * 2),     // RMSNorm: read + write
        ];
        if mla.q_lora_rank > 0 {
            kernels.push(self.linear(local, mla.q_lora_rank, h)); // query down projection (replicated)
        }
        kernels.extend([
            self.linear(local, c + r, h), // key/value down projection with the rotary key (replicated)
            Self::stream(local * (mla.q_lora_rank + c) * ACT * 2), // the latents' RMSNorms: read + write
        ]);
        let gather_at = kernels.len();
        let q_in = Self::mla_query_input(mla, h);
        kernels.extend([
            self.linear(tokens, heads * mla.qk_head_dim(), q_in), // query up projection (column-parallel)
            self.linear(tokens, heads * (mla.qk_nope_head_dim + mla.v_head_dim), c), // key/value up projection
        ]);
        kernels.extend(self.attention_core());
        kernels.push(self.linear(tokens, h, heads * mla.v_head_dim)); // output projection (row-parallel)
        Block {
            name: "mla attention",
            reduce_at: kernels.len(),
            kernels,
            gather_at,
            gather_bytes: self.mla_latent_bytes(mla),
            reduce_bytes: self.allreduce_bytes(),
            async_at: None,
        }
    }

    /// The MLA block's backward (reverse order): output projection, core (with the recomputation
    /// `recompute` asks for), up projections, the latents' gradients reduced over the tensor
    /// group, the latent norms and the replicated down projections on the rank's tokens, the norm
    /// and the residual.
    pub(crate) fn mla_backward(&self, mla: &MlaSpec, recompute: Recompute) -> Block {
        let (tokens, local, h, t) = (self.b * self.s, self.mla_local_tokens(), self.h, self.t);
        let heads = self.a / t;
        let (c, r) = (mla.kv_lora_rank, mla.qk_rope_head_dim);
        let (q_in, q_out, kv_out) = (
            Self::mla_query_input(mla, h),
            heads * mla.qk_head_dim(),
            heads * (mla.qk_nope_head_dim + mla.v_head_dim),
        );
        let mut kernels = self.output_projection_backward();
        kernels.extend(self.attention_core_backward(recompute));
        kernels.extend([
            self.linear(tokens, c, kv_out),   // key/value up projection: data gradient
            self.linear(c, kv_out, tokens),   // and weight gradient
            self.linear(tokens, q_in, q_out), // query up projection: data gradient
            self.linear(q_in, q_out, tokens), // and weight gradient
        ]);
        let reduce_at = kernels.len();
        // the latents' RMSNorm backward: two passes as the layer norm's (10 B per element)
        kernels.push(Self::stream(local * (mla.q_lora_rank + c) * ACT * 5));
        if mla.q_lora_rank > 0 {
            kernels.extend([
                self.linear(local, h, mla.q_lora_rank), // query down projection: data gradient
                self.linear(h, mla.q_lora_rank, local), // and weight gradient
            ]);
        }
        kernels.extend([
            self.linear(local, h, c + r),       // key/value down projection: data gradient
            self.linear(h, c + r, local),       // and weight gradient
            Self::stream(self.local_bsh() * 5), // RMSNorm backward (two passes)
            Self::stream(self.local_bsh() * 3), // residual: add the two gradients of the layer input
        ]);
        Block {
            name: "mla attention",
            kernels,
            gather_at: 0,
            gather_bytes: self.allreduce_bytes(),
            reduce_at,
            reduce_bytes: self.mla_latent_bytes(mla),
            // the latents' reduction runs before the down projections' backward, not beside it
            async_at: None,
        }
    }
}

/// Bytes one MLA layer stores for one microbatch on one rank beyond what Korthikanti's count gives
/// a layer of the same h and a (which stores Q, K, V and the output projection's input, 2 s b h
/// each, split over t: 8 s b h / t): the queries and keys (2 a d_qk each), the values and the
/// output projection's input (2 a v each), split over t, and the latents twice (the norms' inputs
/// and the up projections' inputs, 2 (q + c) each), replicated on every tensor rank or split with
/// sequence parallelism. Full recompute keeps only the layer input: nothing more.
pub fn activation_extra_bytes(shape: &LayerShape, mla: &MlaSpec, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let (tokens, t, a) = ((shape.b * shape.s) as f64, shape.t as f64, shape.a as f64);
    let (dk, dv) = (mla.qk_head_dim() as f64, mla.v_head_dim as f64);
    let heads = 4.0 * a * (dk + dv) / t;
    let latents = 4.0 * (mla.q_lora_rank + mla.kv_lora_rank) as f64 / if shape.sp { t } else { 1.0 };
    tokens * (heads + latents - 8.0 * shape.h as f64 / t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSpec;
    use crate::ops::{CollectiveOp, Kernel};
    use crate::workload::transformer::Piece;

    /// DeepSeek-V3's attention (h 7168, 128 heads, q 1536, c 512, n 128, r 64, v 128) for `b` x `s`
    /// tokens on `t` tensor ranks.
    fn deepseek(s: u64, t: u32, sp: bool) -> LayerShape {
        let m: ModelSpec = serde_yaml::from_str(
            "{ layers: 1, hidden: 7168, heads: 128, seq_len: 4096, vocab: 0, bias: false, norm: rmsnorm,
               mla: { q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128 } }",
        )
        .unwrap();
        LayerShape {
            s,
            ..LayerShape::new(&m, 1, t, sp)
        }
    }

    fn flops(pieces: &[Piece]) -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, k) | Piece::Overlapped(_, _, _, k) => k.iter().map(Kernel::flops).sum(),
                _ => 0.0,
            })
            .sum()
    }

    fn block_flops(b: &Block) -> f64 {
        b.kernels.iter().map(Kernel::flops).sum()
    }

    #[test]
    fn one_tokens_mla_flops_by_hand() {
        // one token (b = s = 1), standard kernels, t = 1; 2 FLOPs per weight of each projection:
        // query down 7168 x 1536 = 11 010 048; query up 1536 x 128 x 192 = 37 748 736; key/value
        // down 7168 x (512 + 64) = 4 128 768; key/value up 512 x 128 x (128 + 128) = 16 777 216;
        // output 128 x 128 x 7168 = 117 440 512: 187 105 280 weights, 374 210 560 FLOPs. Its one
        // score per head over d_qk = 192 and its context over v = 128: 2 x 128 x (192 + 128) =
        // 81 920. In all 374 292 480
        let sh = deepseek(1, 1, false);
        let fwd = block_flops(&sh.attention_forward_block());
        assert_eq!(fwd, 374_292_480.0);
        // backward: data and weight gradients of every projection (2 x 374 210 560), and the core's
        // four products: dP and dV over v, dQ and dK over d_qk: 2 x 128 x (2 x 128 + 2 x 192)
        let bwd = block_flops(&sh.attention_backward_block(Recompute::None));
        assert_eq!(bwd, 2.0 * 374_210_560.0 + 2.0 * 128.0 * (2.0 * 128.0 + 2.0 * 192.0));
    }

    #[test]
    fn fused_core_over_a_sequence_halves_the_causal_products() {
        // s = 4096: scores 2 s^2 d_qk and context 2 s^2 v per head, 128 heads: 2 x 4096^2 x 128 x
        // 320 = 1.374e12; a fused kernel skips the masked half
        let sh = LayerShape {
            fused_attention: Some(crate::ops::FusedAttention::Cudnn),
            ..deepseek(4096, 1, false)
        };
        let core: f64 = sh.attention_core().iter().map(Kernel::flops).sum();
        assert_eq!(core, 4096.0 * 4096.0 * 128.0 * 320.0);
        // backward: 2 s^2 (3 d_qk + 2 v) per head, halved
        let bwd: f64 = sh
            .attention_core_backward(Recompute::None)
            .iter()
            .map(Kernel::flops)
            .sum();
        assert_eq!(bwd, 4096.0 * 4096.0 * 128.0 * (3.0 * 192.0 + 2.0 * 128.0));
    }

    #[test]
    fn tensor_parallelism_splits_the_heads_and_replicates_the_down_projections() {
        // down projections 2 x 7168 x (1536 + 576) FLOPs per token, the rest split by heads
        let (s, t) = (1024u64, 8);
        let down = 2.0 * 7168.0 * (1536.0 + 576.0) * s as f64;
        let one = block_flops(&deepseek(s, 1, false).attention_forward_block());
        // with sequence parallelism each rank projects down its own s / t tokens: the work is split
        let sp = block_flops(&deepseek(s, t, true).attention_forward_block());
        assert_eq!(sp * t as f64, one);
        // without it every rank projects down all s tokens: t - 1 copies of that work on top
        let plain = block_flops(&deepseek(s, t, false).attention_forward_block());
        assert_eq!(plain * t as f64, one + (t - 1) as f64 * down);
        // backward likewise (data and weight gradients: twice the down projections)
        let bwd = |sh: LayerShape| block_flops(&sh.attention_backward_block(Recompute::None));
        let one_b = bwd(deepseek(s, 1, false));
        assert_eq!(bwd(deepseek(s, t, true)) * t as f64, one_b);
        assert_eq!(
            bwd(deepseek(s, t, false)) * t as f64,
            one_b + 2.0 * (t - 1) as f64 * down
        );
    }

    /// The collectives of `pieces` in order, and whether each sits beside a GEMM.
    fn collectives(pieces: &[Piece]) -> Vec<(CollectiveOp, u64, bool)> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Tensor(op, b) => Some((*op, *b, false)),
                Piece::Overlapped(op, b, _, _) => Some((*op, *b, true)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sequence_parallelism_gathers_the_latents_not_the_layer_input() {
        // s = 1024 on 8 ranks: the latents q + c + r = 1536 + 512 + 64 = 2112 wide, 1024 x 2112 x
        // 2 B, gathered before the up projections and their gradients reduce-scattered before the
        // down projections' backward; the output (1024 x 7168 x 2 B) reduce-scattered as in a
        // dense layer, and its gradient all-gathered first in backward
        let sh = deepseek(1024, 8, true);
        let (latents, bsh) = (1024 * 2112 * 2, 1024 * 7168 * 2);
        assert_eq!(sh.mla_latent_bytes(&sh.mla.unwrap()), latents);
        let (ag, rs, ar) = (
            CollectiveOp::AllGather,
            CollectiveOp::ReduceScatter,
            CollectiveOp::AllReduce,
        );
        let fwd = sh.with_collectives(vec![sh.attention_forward_block()]);
        assert_eq!(collectives(&fwd), vec![(ag, latents, false), (rs, bsh, false)]);
        // the down projections and latent norms run before the all-gather, on 1024 / 8 tokens
        let Piece::Compute(_, before) = &fwd[0] else {
            panic!("{fwd:?}")
        };
        assert_eq!(
            before[2],
            Kernel::Gemm {
                batch: 1,
                m: 128,
                n: 1536,
                k: 7168
            }
        );
        let bwd = sh.with_collectives(vec![sh.attention_backward_block(Recompute::None)]);
        assert_eq!(collectives(&bwd), vec![(ag, bsh, false), (rs, latents, false)]);
        assert!(
            matches!(bwd.last(), Some(Piece::Compute(..))),
            "the down projections' backward after"
        );
        // without sequence parallelism: the output all-reduced forward, the latents' gradient backward
        let plain = deepseek(1024, 8, false);
        let plain_fwd = plain.with_collectives(vec![plain.attention_forward_block()]);
        assert_eq!(collectives(&plain_fwd), vec![(ar, bsh, false)]);
        let bwd = plain.with_collectives(vec![plain.attention_backward_block(Recompute::None)]);
        assert_eq!(collectives(&bwd), vec![(ar, latents, false)]);
        // overlapped: the all-gather beside the query up projection (the first GEMM after it), the
        // reduce-scatter beside the output projection; the work unchanged
        let over = LayerShape { tp_overlap: true, ..sh };
        let fwd_over = over.with_collectives(vec![over.attention_forward_block()]);
        assert_eq!(collectives(&fwd_over), vec![(ag, latents, true), (rs, bsh, true)]);
        let first = fwd_over.iter().find_map(|p| match p {
            Piece::Overlapped(_, _, _, k) => Some(k[0]),
            _ => None,
        });
        assert_eq!(
            first,
            Some(Kernel::Gemm {
                batch: 1,
                m: 1024,
                n: 16 * 192,
                k: 1536
            })
        );
        assert_eq!(flops(&fwd_over), flops(&fwd));
    }

    #[test]
    fn without_query_compression_the_queries_come_from_the_layer_input() {
        // DeepSeek-V2-Lite's attention: h 2048, 16 heads, no query latent: the query projection
        // 2048 -> 16 x 192 runs after the gather (column-parallel), which then gathers the layer
        // input with the key/value latent: h + c + r = 2048 + 512 + 64
        let m: ModelSpec = serde_yaml::from_str(
            "{ layers: 1, hidden: 2048, heads: 16, seq_len: 512, vocab: 0, bias: false, norm: rmsnorm,
               mla: { kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128 } }",
        )
        .unwrap();
        let sh = LayerShape::new(&m, 1, 2, true);
        assert_eq!(sh.mla_latent_bytes(&m.mla.unwrap()), 512 * (2048 + 512 + 64) * 2);
        let b = sh.attention_forward_block();
        let gemms: Vec<&Kernel> = b.kernels.iter().filter(|k| matches!(k, Kernel::Gemm { .. })).collect();
        // key/value down on 256 local tokens, query and key/value up on all 512, 8 heads per rank
        assert_eq!(
            *gemms[0],
            Kernel::Gemm {
                batch: 1,
                m: 256,
                n: 576,
                k: 2048
            }
        );
        assert_eq!(
            *gemms[1],
            Kernel::Gemm {
                batch: 1,
                m: 512,
                n: 8 * 192,
                k: 2048
            }
        );
        assert_eq!(
            *gemms[2],
            Kernel::Gemm {
                batch: 1,
                m: 512,
                n: 8 * 256,
                k: 512
            }
        );
    }

    #[test]
    fn stored_activations_follow_the_head_and_latent_widths() {
        // per token, beyond Korthikanti's 8 h / t of Q, K, V and output-projection input: queries
        // and keys 2 x 128 x 192 x 2 B, values and the projection input 2 x 128 x 128 x 2 B = 4 x 128
        // x 320 = 163 840 B, over t; the two latents stored twice, 4 x (1536 + 512) = 8192 B,
        // whole on each rank without sequence parallelism; less 8 x 7168 = 57 344 B over t
        let (s, t) = (4096.0, 8.0);
        let plain = activation_extra_bytes(
            &deepseek(4096, 8, false),
            &deepseek(1, 1, false).mla.unwrap(),
            Recompute::None,
        );
        assert_eq!(plain, s * ((163_840.0 - 57_344.0) / t + 8192.0));
        let sp = activation_extra_bytes(
            &deepseek(4096, 8, true),
            &deepseek(1, 1, false).mla.unwrap(),
            Recompute::Selective,
        );
        assert_eq!(sp, s * (163_840.0 - 57_344.0 + 8192.0) / t);
        assert_eq!(
            activation_extra_bytes(
                &deepseek(4096, 8, true),
                &deepseek(1, 1, false).mla.unwrap(),
                Recompute::Full
            ),
            0.0
        );
    }

    #[test]
    fn the_context_ring_passes_every_heads_keys_and_values() {
        // 2 context ranks, s 4096 cut to 2048 per rank, t 8: keys 16 heads x 192 and values 16 x
        // 128 per token, 2048 x 16 x 320 x 2 B; queries 16 x 192, outputs 16 x 128
        let sh = deepseek(2048, 8, true);
        let ring = crate::workload::context::Ring::new(&sh, 2).unwrap();
        assert_eq!(ring.kv_bytes, 2048 * 16 * 320 * 2);
        assert_eq!(ring.q_bytes, 2048 * 16 * 192 * 2);
        assert_eq!(ring.out_bytes, 2048 * 16 * 128 * 2);
    }
}
