//! Ring attention under context parallelism, as Megatron-Core runs it (Transformer Engine's fused
//! attention with context parallelism over point-to-point communication, "p2p").
//!
//! With context size c each rank holds 2 chunks of s / 2c tokens (chunks k and 2c - 1 - k: the
//! load-balanced assignment for the causal mask), so every kernel outside the attention core works
//! on s / c tokens: the generator cuts the layer's sequence to s / c ([`crate::workload::transformer::LayerShape`]
//! with `s` = s / c). The attention core becomes c steps around the context-parallel ring: at step
//! i a rank computes its queries against the keys and values of the rank i places before it, while
//! it passes the keys and values it holds on to the next rank and receives those of the step after.
//!
//! FLOPs per step: with the zig-zag assignment each step is two (s/2c)^2 blocks of unmasked scores
//! (step 0: the rank's own two chunks under the causal mask, also two blocks' worth; a step whose
//! keys come from an earlier rank: both query chunks against the first key chunk; from a later
//! rank: the second query chunk against both key chunks), 2 x (s/2c)^2 = (s/c)^2 / 2 score entries
//! per head: exactly the fused causal kernel of s / c tokens, so each step is that kernel, and the
//! c steps together do 1/c of the whole causal attention on every rank alike.
//!
//! Communication per layer and microbatch, with K/V = b (s/c) x 2 (kv_heads/t) (h/a) 16-bit
//! elements (a rank's keys and values; b (s/c) (a/t)(d_qk + d_v) with multi-head latent attention): forward, c - 1 sends of K/V, each beside one step's
//! attention compute (the send that feeds step i + 1 starts once step i's keys have arrived and
//! step i - 1 is done, as the loop issues it); backward, c sends (Transformer Engine's loop): K/V at step 0, K/V
//! with the partial dK/dV gathered so far (2 K/V) at steps 1 to c - 2, the dK/dV alone at step c - 1,
//! 2 (c - 1) K/V in all, and the rank waits for its own dK/dV at the end.
//! Between steps the partial results are merged: forward, the output rescaled by the softmax
//! statistics (read the step's output and the running one, write it: 3 O bytes); backward, dQ
//! accumulated (3 Q bytes) and dK/dV added into the travelling buffer (3 K/V bytes).

use super::transformer::{LayerShape, Piece};
use crate::ops::Kernel;

/// Bytes per 16-bit element.
const ACT: u64 = 2;

/// The context-parallel ring of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Ranks in the ring, c.
    pub size: u64,
    /// Bytes of the keys and values one rank holds for one microbatch.
    pub kv_bytes: u64,
    /// Bytes of the queries one rank holds for one microbatch.
    pub q_bytes: u64,
    /// Bytes of the attention output one rank holds for one microbatch (the queries' without
    /// multi-head latent attention, whose values are narrower than its queries).
    pub out_bytes: u64,
}

impl Ring {
    /// The ring of `c` ranks for a layer shape already cut to the s / c local tokens; none when
    /// c = 1.
    pub fn new(shape: &LayerShape, c: u32) -> Option<Ring> {
        (c > 1).then(|| {
            let tokens = shape.b * shape.s;
            Ring {
                size: c as u64,
                kv_bytes: tokens * (shape.kv_width() / shape.t) * ACT,
                q_bytes: tokens * (shape.q_width() / shape.t) * ACT,
                out_bytes: tokens * (shape.out_width() / shape.t) * ACT,
            }
        })
    }

    /// A forward pass's pieces with its attention core run as the ring.
    pub fn forward(&self, pieces: Vec<Piece>) -> Vec<Piece> {
        self.around_core(pieces, |ring, core, out| {
            out.push(Piece::RingSend(ring.kv_bytes));
            out.push(Piece::Compute(STEP, vec![core]));
            for i in 1..ring.size {
                out.push(Piece::RingWait);
                if i < ring.size - 1 {
                    out.push(Piece::RingSend(ring.kv_bytes));
                }
                let correction = Kernel::Stream {
                    bytes: 3 * ring.out_bytes,
                };
                out.push(Piece::Compute(STEP, vec![core, correction]));
            }
        })
    }

    /// A backward pass's pieces with its attention core run as the ring: keys and values go
    /// around again, and the gradients of each rank's keys and values travel with them back to it.
    pub fn backward(&self, pieces: Vec<Piece>) -> Vec<Piece> {
        self.around_core(pieces, |ring, core, out| {
            out.push(Piece::RingSend(ring.kv_bytes));
            out.push(Piece::Compute(STEP, vec![core]));
            for i in 1..ring.size {
                out.push(Piece::RingWait);
                // K/V and the dK/dV so far; at the last step the dK/dV alone
                let both = if i < ring.size - 1 { 2 } else { 1 };
                out.push(Piece::RingSend(both * ring.kv_bytes));
                let accumulate = Kernel::Stream {
                    bytes: 3 * (ring.q_bytes + ring.kv_bytes),
                };
                out.push(Piece::Compute(STEP, vec![core, accumulate]));
            }
            // this rank's own dK/dV, back from its last holder
            out.push(Piece::RingWait);
        })
    }

    /// Replaces each fused attention kernel of `pieces` by what `steps` makes of it, splitting its
    /// compute piece around it.
    fn around_core(&self, pieces: Vec<Piece>, steps: impl Fn(&Ring, Kernel, &mut Vec<Piece>)) -> Vec<Piece> {
        let mut out = Vec::with_capacity(pieces.len() + 4 * self.size as usize);
        for piece in pieces {
            let Piece::Compute(name, kernels) = piece else {
                out.push(piece);
                continue;
            };
            let Some(at) = kernels.iter().position(|k| matches!(k, Kernel::Attention { .. })) else {
                out.push(Piece::Compute(name, kernels));
                continue;
            };
            if at > 0 {
                out.push(Piece::Compute(name, kernels[..at].to_vec()));
            }
            steps(self, kernels[at], &mut out);
            if at + 1 < kernels.len() {
                out.push(Piece::Compute(after(name), kernels[at + 1..].to_vec()));
            }
        }
        out
    }
}

/// Name of the compute pieces of the ring's steps.
const STEP: &str = "ring attention";

/// The name of what follows the attention core in a block named `block` (the block's own name
/// carries its host operations, counted once).
fn after(block: &'static str) -> &'static str {
    match block {
        "attention" => "attention (after ring)",
        "layer" => "layer (after ring)",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Recompute;
    use crate::ops::FusedAttention;

    /// Llama 3 8B's attention on 2 tensor ranks: b 1, s 32768 cut to s / c, h 4096, 32 heads of
    /// 128, 8 key/value heads (kv width 1024).
    fn shape(c: u64) -> LayerShape {
        LayerShape {
            b: 1,
            s: 32768 / c,
            h: 4096,
            a: 32,
            head_dim: 128,
            qk_norm: false,
            t: 2,
            vocab: 128256,
            sp: true,
            kv: 1024,
            ffn: 14336,
            swiglu: true,
            fp8: false,
            tp_overlap: false,
            tp_async: false,
            fused_attention: Some(FusedAttention::Flash2),
            mla: None,
        }
    }

    fn sends(pieces: &[Piece]) -> Vec<u64> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::RingSend(b) => Some(*b),
                _ => None,
            })
            .collect()
    }

    fn attention_flops(pieces: &[Piece]) -> f64 {
        pieces
            .iter()
            .flat_map(|p| match p {
                Piece::Compute(_, k) => k.as_slice(),
                _ => &[],
            })
            .filter(|k| matches!(k, Kernel::Attention { .. }))
            .map(Kernel::flops)
            .sum()
    }

    /// K/V per rank per microbatch with c = 4: b (s/c) = 8192 tokens x 2 (K and V) x kv/t = 512
    /// columns x 2 bytes = 16 MiB. Forward: c - 1 = 3 sends of it; backward: K/V, 2 x K/V twice
    /// (K/V with the dK/dV gathered so far), dK/dV: 2 (c - 1) K/V = 96 MiB.
    #[test]
    fn kv_bytes_sent_per_layer_forward_and_backward() {
        let sh = shape(4);
        let ring = Ring::new(&sh, 4).unwrap();
        let kv = 8192 * 2 * 512 * 2;
        assert_eq!(ring.kv_bytes, kv);
        assert_eq!(kv, 16 << 20);
        assert_eq!(sends(&ring.forward(sh.forward())), vec![kv; 3]);
        let back = sends(&ring.backward(sh.backward(Recompute::None)));
        assert_eq!(back, vec![kv, 2 * kv, 2 * kv, kv]);
        assert_eq!(back.iter().sum::<u64>(), 2 * 3 * kv);
        // one wait per received message: forward c - 1, backward c
        let waits = |p: &[Piece]| p.iter().filter(|x| matches!(x, Piece::RingWait)).count();
        assert_eq!(waits(&ring.forward(sh.forward())), 3);
        assert_eq!(waits(&ring.backward(sh.backward(Recompute::None))), 4);
        // grouped-query attention: with all 32 heads as key/value heads the K/V is 4x larger
        let mha = LayerShape { kv: 4096, ..sh };
        assert_eq!(Ring::new(&mha, 4).unwrap().kv_bytes, 4 * kv);
    }

    /// The causal attention FLOPs of one rank are 1/c of the whole layer's: the fused forward kernel
    /// does 2 b (a/t) s^2 d (the causal half of 4 b (a/t) s^2 d); each of the c steps does it at s / c,
    /// 2 b (a/t) s^2 d / c^2, so c steps do 1/c of it; backward 5/2 times that, likewise.
    #[test]
    fn attention_flops_per_rank_fall_by_the_context_size() {
        let whole = shape(1);
        let (b, a, s, d) = (1.0, 16.0, 32768.0, 128.0);
        assert_eq!(attention_flops(&whole.forward()), 2.0 * b * a * s * s * d);
        for c in [2, 4, 8] {
            let sh = shape(c);
            let ring = Ring::new(&sh, c as u32).unwrap();
            let forward = attention_flops(&ring.forward(sh.forward()));
            assert!((forward / attention_flops(&whole.forward()) - 1.0 / c as f64).abs() < 1e-12);
            let backward = attention_flops(&ring.backward(sh.backward(Recompute::None)));
            let whole_backward = attention_flops(&whole.backward(Recompute::None));
            assert!((backward / whole_backward - 1.0 / c as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn no_ring_without_context_parallelism() {
        assert_eq!(Ring::new(&shape(1), 1), None);
    }
}
