//! The kernels of a Megatron-style GPT layer under tensor parallelism, and the model's formulas.
//!
//! Notation as in Megatron-LM: microbatch b, sequence s, hidden h, heads a, tensor degree t,
//! vocabulary V, layers l. Activations and weights are 16-bit (2 bytes).
//! Forward FLOPs per layer: 24 b s h^2 + 4 b s^2 h (QKV 6bsh^2, scores 2bs^2h, context 2bs^2h,
//! projection 2bsh^2, MLP 16bsh^2); the backward pass does twice that (data and weight gradients).

use crate::config::{ModelSpec, Recompute};
use crate::ops::{CollectiveOp, Kernel};

const ACT: u64 = 2; // bytes per 16-bit activation element

/// One piece of a layer pass: kernels that run back to back, or a tensor-parallel collective.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// Kernels of one named block.
    Compute(&'static str, Vec<Kernel>),
    /// A collective of this many bytes (nccl-tests convention) across the tensor-parallel group.
    Tensor(CollectiveOp, u64),
    /// A blocking collective across the data-parallel group (ZeRO-3 parameter all-gathers).
    Data(CollectiveOp, u64),
}

/// Sizes of one tensor-parallel shard of the model for one microbatch.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape {
    /// Microbatch b.
    pub b: u64,
    /// Sequence s.
    pub s: u64,
    /// Hidden h.
    pub h: u64,
    /// Heads a.
    pub a: u64,
    /// Tensor degree t.
    pub t: u64,
    /// Vocabulary V.
    pub vocab: u64,
    /// Sequence parallelism: LayerNorm/dropout/residual work on s/t of the sequence, and
    /// all-gather + reduce-scatter in place of each all-reduce.
    pub sp: bool,
}

impl LayerShape {
    /// The shape for a model, microbatch and tensor degree.
    pub fn new(model: &ModelSpec, micro: u64, tensor: u32, sequence_parallel: bool) -> Self {
        LayerShape {
            b: micro,
            s: model.seq_len,
            h: model.hidden,
            a: model.heads,
            t: tensor as u64,
            vocab: model.vocab,
            sp: sequence_parallel && tensor > 1,
        }
    }
    fn gemm(m: u64, n: u64, k: u64) -> Kernel {
        Kernel::Gemm { batch: 1, m, n, k }
    }
    fn stream(bytes: u64) -> Kernel {
        Kernel::Stream { bytes }
    }
    /// bytes of one b x s x h activation
    fn bsh(&self) -> u64 {
        self.b * self.s * self.h * ACT
    }
    /// bytes of the b x s x h activation one rank holds outside the tensor-parallel blocks:
    /// all of it, or 1/t of the sequence with sequence parallelism
    fn local_bsh(&self) -> u64 {
        if self.sp {
            self.bsh() / self.t
        } else {
            self.bsh()
        }
    }
    /// elements of this rank's attention scores: b x (a/t) x s x s
    fn scores(&self) -> u64 {
        self.b * (self.a / self.t) * self.s * self.s
    }
    fn head_dim(&self) -> u64 {
        self.h / self.a
    }
    /// Bytes of the tensor-parallel all-reduce of one activation.
    pub fn allreduce_bytes(&self) -> u64 {
        self.bsh()
    }

    /// Attention core forward: scores, scale-mask-softmax, dropout, context.
    fn attention_core(&self) -> Vec<Kernel> {
        let (bh, s, d) = (self.b * self.a / self.t, self.s, self.head_dim());
        vec![
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: s,
                k: d,
            }, // Q K^T
            Self::stream(self.scores() * ACT * 2), // fused scale, mask, softmax: read + write
            Self::stream(self.scores() * (ACT * 2 + 1)), // dropout: read, write, 1-byte mask
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: d,
                k: s,
            }, // probabilities x V
        ]
    }

    /// The forward pass of one layer, as Megatron runs it under tensor parallelism.
    pub fn forward(&self) -> Vec<Piece> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let mut attention = vec![
            Self::stream(self.local_bsh() * 7 / 2), // residual bias-dropout-add of the previous block: 3 reads/writes + mask
            Self::stream(self.local_bsh() * 2),     // layer norm: read + write
            Self::gemm(bs, 3 * h / t, h),           // QKV projection
        ];
        attention.extend(self.attention_core());
        attention.push(Self::gemm(bs, h, h / t)); // output projection (row-parallel)
        let mlp = vec![
            Self::stream(self.local_bsh() * 7 / 2), // bias-dropout-add after attention
            Self::stream(self.local_bsh() * 2),     // layer norm
            Self::gemm(bs, 4 * h / t, h),           // h -> 4h (column-parallel)
            Self::stream(self.bsh() * 4 / t * 2),   // fused bias + GeLU: read + write 4h/t
            Self::gemm(bs, h, 4 * h / t),           // 4h -> h (row-parallel)
        ];
        self.with_allreduces(vec![("attention", attention), ("mlp", mlp)])
    }

    /// The backward pass of one layer (reverse order), with the recomputation `recompute` asks for.
    ///
    /// Besides the GEMMs, each block's backward streams the b x s x h activations it shares with
    /// the residual path (all of them on every tensor rank, or 1/t with sequence parallelism):
    /// dropout backward (read gradient and 1-byte mask, write: 5 B per element), the bias gradient
    /// of the row-parallel output (a reduction reading the gradient: 2 B), layer norm backward as
    /// apex runs it, one pass for the gamma/beta partial sums (read gradient and input: 4 B) and
    /// one for the input gradient (read both again, write: 6 B), and autograd's sum of the two
    /// gradients that reach the block input, through the block and along the residual (read 2 + 2,
    /// write 2: 6 B).
    pub fn backward(&self, recompute: Recompute) -> Vec<Piece> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let (bh, s, d) = (self.b * self.a / self.t, self.s, self.head_dim());
        let mlp = vec![
            Self::stream(self.local_bsh() * 5 / 2), // dropout backward: read grad, mask; write
            Self::stream(self.local_bsh()),         // bias gradient of the 4h->h output: reduce the grad over b s
            Self::gemm(bs, 4 * h / t, h),           // 4h->h data gradient
            Self::gemm(4 * h / t, h, bs),           // 4h->h weight gradient
            Self::stream(self.bsh() * 4 / t * 3),   // GeLU backward: read grad and input, write
            Self::gemm(bs, h, 4 * h / t),           // h->4h data gradient
            Self::gemm(h, 4 * h / t, bs),           // h->4h weight gradient
        ];
        let mut attention = vec![
            Self::stream(self.local_bsh() * 5), // layer norm backward: two passes, 10 B per element
            Self::stream(self.local_bsh() * 3), // residual: add the two gradients of the block input
            Self::stream(self.local_bsh() * 5 / 2), // dropout backward after attention
            Self::stream(self.local_bsh()),     // bias gradient of the projection output
            Self::gemm(bs, h / t, h),           // projection data gradient
            Self::gemm(h / t, h, bs),           // projection weight gradient
        ];
        if recompute == Recompute::Selective {
            attention.extend(self.attention_core()); // recompute scores, softmax, dropout, context
        }
        attention.extend([
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: s,
                k: d,
            }, // grad probabilities = dO V^T
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: d,
                k: s,
            }, // grad V = P^T dO
            Self::stream(self.scores() * (ACT * 2 + 1)), // dropout backward
            Self::stream(self.scores() * ACT * 3),       // softmax backward: read P, dP; write dS
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: d,
                k: s,
            }, // grad Q = dS K
            Kernel::Gemm {
                batch: bh,
                m: s,
                n: d,
                k: s,
            }, // grad K = dS^T Q
            Self::gemm(bs, h, 3 * h / t),                // QKV data gradient
            Self::gemm(h, 3 * h / t, bs),                // QKV weight gradient
            Self::stream(self.local_bsh() * 5),          // layer norm backward (two passes)
            Self::stream(self.local_bsh() * 3),          // residual: add the two gradients of the layer input
        ]);
        self.with_allreduces(vec![("mlp", mlp), ("attention", attention)])
    }

    /// Adds the tensor-parallel communication of each block: an all-reduce after it, or with
    /// sequence parallelism an all-gather before it and a reduce-scatter after it (likewise in the
    /// backward pass, where the conjugate operations swap). None when t = 1, where the blocks merge
    /// into one compute piece.
    fn with_allreduces(&self, blocks: Vec<(&'static str, Vec<Kernel>)>) -> Vec<Piece> {
        if self.t == 1 {
            return vec![Piece::Compute(
                "layer",
                blocks.into_iter().flat_map(|(_, k)| k).collect(),
            )];
        }
        let bytes = self.allreduce_bytes();
        blocks
            .into_iter()
            .flat_map(|(name, k)| {
                if self.sp {
                    vec![
                        Piece::Tensor(CollectiveOp::AllGather, bytes),
                        Piece::Compute(name, k),
                        Piece::Tensor(CollectiveOp::ReduceScatter, bytes),
                    ]
                } else {
                    vec![Piece::Compute(name, k), Piece::Tensor(CollectiveOp::AllReduce, bytes)]
                }
            })
            .collect()
    }

    /// The collective that joins the embedding output (or the logits' input gradient) across the
    /// tensor group: all-reduce, or reduce-scatter into sequence shards.
    fn join(&self) -> Piece {
        let op = if self.sp {
            CollectiveOp::ReduceScatter
        } else {
            CollectiveOp::AllReduce
        };
        Piece::Tensor(op, self.allreduce_bytes())
    }

    /// Input embedding (vocabulary-parallel lookup, then all-reduce) forward.
    pub fn embedding_forward(&self) -> Vec<Piece> {
        let mut out = vec![Piece::Compute("embedding", vec![Self::stream(self.bsh() * 2)])];
        if self.t > 1 {
            out.push(self.join());
        }
        out
    }

    /// Input embedding backward: scatter-add of the gradient into the table.
    pub fn embedding_backward(&self) -> Vec<Piece> {
        vec![Piece::Compute("embedding", vec![Self::stream(self.bsh() * 3)])]
    }

    /// Output layer (logits against the tied embedding) and vocabulary-parallel cross-entropy.
    pub fn logits_forward(&self) -> Vec<Piece> {
        let (bs, h, vt) = (self.b * self.s, self.h, self.vocab / self.t);
        let gather = self
            .sp
            .then(|| Piece::Tensor(CollectiveOp::AllGather, self.allreduce_bytes()));
        gather
            .into_iter()
            .chain([Piece::Compute(
                "logits",
                vec![
                    Self::stream(self.bsh() * 2),    // final layer norm
                    Self::gemm(bs, vt, h),           // logits
                    Self::stream(bs * vt * ACT * 3), // cross-entropy: max, exp-sum, loss passes
                ],
            )])
            .collect()
    }

    /// Output layer backward; its input gradient is all-reduced across the tensor group.
    pub fn logits_backward(&self) -> Vec<Piece> {
        let (bs, h, vt) = (self.b * self.s, self.h, self.vocab / self.t);
        let mut out = vec![Piece::Compute(
            "logits",
            vec![
                Self::stream(bs * vt * ACT * 2), // softmax - one-hot gradient
                Self::gemm(bs, h, vt),           // data gradient
                Self::gemm(h, vt, bs),           // weight gradient
                Self::stream(self.bsh() * 3),    // final layer norm backward
            ],
        )];
        if self.t > 1 {
            out.push(self.join());
        }
        out
    }
}

/// Adding one microbatch's weight gradients for `params` parameters into the gradient buffer
/// (unfused gradient accumulation): read the new 16-bit gradient, read and write the buffer
/// element of `grad_bytes` bytes.
pub fn grad_accumulation_kernel(params: u64, grad_bytes: u64) -> Kernel {
    Kernel::Stream {
        bytes: params * (ACT + 2 * grad_bytes),
    }
}

/// Parameters of one transformer layer held by one tensor rank: (12 h^2 + 13 h) / t.
pub fn layer_params_per_rank(model: &ModelSpec, tensor: u32) -> u64 {
    let h = model.hidden;
    (12 * h * h + 13 * h) / tensor as u64
}

/// Embedding parameters held by one tensor rank on the first (and, tied, the last) stage.
pub fn embedding_params_per_rank(model: &ModelSpec, tensor: u32) -> u64 {
    model.vocab * model.hidden / tensor as u64
}

/// The model's (l, h, V, s) as floats, for the closed-form formulas.
fn dims(model: &ModelSpec) -> (f64, f64, f64, f64) {
    (
        model.layers as f64,
        model.hidden as f64,
        model.vocab as f64,
        model.seq_len as f64,
    )
}

/// Total parameters, Megatron eq. 2: P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12 l h)).
pub fn total_params(model: &ModelSpec) -> f64 {
    let (l, h, v, s) = dims(model);
    12.0 * l * h * h * (1.0 + 13.0 / (12.0 * h) + (v + s) / (12.0 * l * h))
}

/// Megatron's reported FLOPs per iteration (eq. 3, counting one recompute forward):
/// F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
pub fn megatron_flops_per_iteration(model: &ModelSpec, global_batch: u64) -> f64 {
    let ((l, h, v, s), b) = (dims(model), global_batch as f64);
    96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h))
}

/// Model FLOPs per iteration without recomputation (Korthikanti et al. 2022, eq. 7):
/// 72 B l s h^2 (1 + s/(6h) + V/(12 h l)).
pub fn model_flops_per_iteration(model: &ModelSpec, global_batch: u64) -> f64 {
    let ((l, h, v, s), b) = (dims(model), global_batch as f64);
    72.0 * b * l * s * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * h * l))
}

/// Megatron-LM's (2021) fp16 optimizer step with Adam over `params` parameters, in three phases
/// separated by the two model-parallel scalar all-reduces it issues (found-inf, then the gradient
/// norm), as the streaming kernels it runs (bytes per parameter, read + written):
/// 1. copy the model gradients to fp32 main gradients (read `grad_bytes`, write 4; nothing when the
///    gradients already sit in an fp32 buffer, which the main gradients alias), then unscale and
///    check for inf/nan (read 4, write 4);
/// 2. the gradient norm for clipping (read 4);
/// 3. fused Adam (read grad, param, momentum, variance: 16; write param, momentum, variance: 12),
///    copy the fp32 main params to the fp16 model params (read 4, write 2), and, with a contiguous
///    buffer, zero it for the next iteration (write `grad_bytes`; without one the gradients are
///    set to None, no kernel).
///
/// Without a buffer (SC'21's runs): 6 + 8, 4, 28 + 6 = 52 bytes per parameter.
pub fn optimizer_phases(params: u64, grad_bytes: u64, grad_buffer: bool) -> [Vec<Kernel>; 3] {
    let stream = |bytes: &[u64]| -> Vec<Kernel> {
        bytes
            .iter()
            .filter(|&&b| b > 0)
            .map(|b| Kernel::Stream { bytes: b * params })
            .collect()
    };
    let to_main = if grad_buffer && grad_bytes == 4 {
        0
    } else {
        grad_bytes + 4
    };
    let zero = if grad_buffer { grad_bytes } else { 0 };
    [stream(&[to_main, 8]), stream(&[4]), stream(&[28, ACT + 4, zero])]
}

/// The kernels Megatron-LM's (2021) local DDP runs around the data-parallel all-reduce of `params`
/// gradients of `grad_bytes` each: (before, after). Without a buffer: flatten into one tensor (read
/// and write) and divide by the data-parallel size (read and write) before, copy back into the
/// gradients (read and write) after; with a buffer only the divide. They run whatever the
/// data-parallel size, even 1.
pub fn data_parallel_kernels(params: u64, grad_bytes: u64, grad_buffer: bool) -> (Vec<Kernel>, Vec<Kernel>) {
    let pass = Kernel::Stream {
        bytes: 2 * grad_bytes * params,
    };
    if grad_buffer {
        (vec![pass], Vec::new())
    } else {
        (vec![pass, pass], vec![pass])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(t: u64) -> LayerShape {
        LayerShape {
            b: 2,
            s: 2048,
            h: 3840,
            a: 32,
            t,
            vocab: 51200,
            sp: false,
        }
    }

    fn flops(pieces: &[Piece]) -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, k) => k.iter().map(Kernel::flops).sum(),
                Piece::Tensor(..) | Piece::Data(..) => 0.0,
            })
            .sum()
    }

    #[test]
    fn layer_flops_match_megatron_formula() {
        // forward per layer, all tensor ranks together: 24 b s h^2 + 4 b s^2 h
        for t in [1, 2, 8] {
            let sh = shape(t);
            let (b, s, h) = (2.0, 2048.0, 3840.0);
            let expected = 24.0 * b * s * h * h + 4.0 * b * s * s * h;
            let fwd = flops(&sh.forward()) * t as f64;
            assert!((fwd / expected - 1.0).abs() < 1e-12, "t={t}: {fwd} vs {expected}");
            // backward = 2 x forward without recompute; selective adds the attention core 4 b s^2 h
            let bwd = flops(&sh.backward(Recompute::None)) * t as f64;
            assert!((bwd / (2.0 * expected) - 1.0).abs() < 1e-12);
            let sel = flops(&sh.backward(Recompute::Selective)) * t as f64;
            assert!((sel - bwd - 4.0 * b * s * s * h).abs() / sel < 1e-12);
        }
    }

    fn stream_bytes(pieces: &[Piece]) -> u64 {
        pieces
            .iter()
            .flat_map(|p| match p {
                Piece::Compute(_, k) => k.as_slice(),
                _ => &[],
            })
            .map(Kernel::streamed_bytes)
            .sum()
    }

    /// Streamed bytes per rank are R + S/t: R is the traffic every tensor rank repeats on the
    /// whole b x s x h activation, so R = 2 x bytes(t = 2) - bytes(t = 1). Per element of b s h,
    /// forward: per block bias-dropout-add (read 2 + 2, write 2, mask 1) and layer norm (read 2,
    /// write 2) = 11 B, two blocks = 22 B; backward: per block dropout backward (read 2, mask 1,
    /// write 2), output-bias gradient (read 2), layer norm backward in two passes (read 4, then read
    /// 4 and write 2) and the residual gradient sum (read 4, write 2) = 23 B, two blocks = 46 B.
    #[test]
    fn replicated_elementwise_traffic_per_layer() {
        let elems = 2 * 2048 * 3840;
        let replicated =
            |f: &dyn Fn(&LayerShape) -> Vec<Piece>| 2 * stream_bytes(&f(&shape(2))) - stream_bytes(&f(&shape(1)));
        assert_eq!(replicated(&|s| s.forward()), 22 * elems);
        assert_eq!(replicated(&|s| s.backward(Recompute::None)), 46 * elems);
        // with sequence parallelism each rank handles 1/t of it
        let sp = LayerShape { sp: true, ..shape(4) };
        let no_sp = shape(4);
        let diff = stream_bytes(&no_sp.backward(Recompute::None)) - stream_bytes(&sp.backward(Recompute::None));
        assert_eq!(diff, 46 * elems * 3 / 4);
    }

    #[test]
    fn tensor_parallel_layer_has_two_allreduces_each_way() {
        let count = |p: &[Piece], op| {
            p.iter()
                .filter(|x| matches!(x, Piece::Tensor(o, _) if *o == op))
                .count()
        };
        assert_eq!(count(&shape(4).forward(), CollectiveOp::AllReduce), 2);
        assert_eq!(count(&shape(4).backward(Recompute::None), CollectiveOp::AllReduce), 2);
        assert_eq!(count(&shape(1).forward(), CollectiveOp::AllReduce), 0);
        // sequence parallelism: each all-reduce becomes an all-gather and a reduce-scatter of the
        // same b s h buffer (an all-reduce is a reduce-scatter plus an all-gather on the wire)
        let sp = LayerShape { sp: true, ..shape(4) };
        assert_eq!(count(&sp.forward(), CollectiveOp::AllReduce), 0);
        assert_eq!(count(&sp.forward(), CollectiveOp::AllGather), 2);
        assert_eq!(count(&sp.forward(), CollectiveOp::ReduceScatter), 2);
        assert_eq!(count(&sp.backward(Recompute::None), CollectiveOp::ReduceScatter), 2);
        // all-reduce of one activation: b s h elements of 2 bytes
        assert_eq!(shape(4).allreduce_bytes(), 2 * 2048 * 3840 * 2);
    }

    #[test]
    fn published_formulas() {
        let gpt175 = ModelSpec {
            layers: 96,
            hidden: 12288,
            heads: 96,
            seq_len: 2048,
            vocab: 51200,
        };
        // eq. 2 for GPT-3: 12*96*12288^2*(1 + 13/(12*12288) + (51200+2048)/(12*96*12288)) = 174.6e9
        assert!(
            (total_params(&gpt175) / 1e9 - 174.6).abs() < 0.1,
            "{}",
            total_params(&gpt175)
        );
        // eq. 3 vs model FLOPs: with V = 0 and s << h, 96/72 = 4/3 exactly apart from the s/6h terms
        let f = megatron_flops_per_iteration(&gpt175, 1536);
        let expected = 96.0
            * 1536.0
            * 2048.0
            * 96.0
            * 12288f64.powi(2)
            * (1.0 + 2048.0 / (6.0 * 12288.0) + 51200.0 / (16.0 * 96.0 * 12288.0));
        assert_eq!(f, expected);
    }
}
