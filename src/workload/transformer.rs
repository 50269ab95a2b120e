//! The kernels of a Megatron-style GPT layer under tensor parallelism, and the model's formulas.
//!
//! Notation as in Megatron-LM: microbatch b, sequence s, hidden h, heads a, tensor degree t,
//! vocabulary V, layers l. Activations and weights are 16-bit (2 bytes).
//! Forward FLOPs per layer: 24 b s h^2 + 4 b s^2 h (QKV 6bsh^2, scores 2bs^2h, context 2bs^2h,
//! projection 2bsh^2, MLP 16bsh^2); the backward pass does twice that (data and weight gradients).

pub use super::params::{
    embedding_params_per_rank, layer_params_per_rank, megatron_flops_per_iteration, model_flops_per_iteration,
    total_params,
};
pub use super::step::{
    data_parallel_kernels, grad_accumulation_kernel, optimizer_phases, CROSS_ENTROPY_BACKWARD_BYTES,
    CROSS_ENTROPY_FORWARD_BYTES,
};
use crate::config::{MlaSpec, ModelSpec, Recompute};
use crate::ops::{CollectiveOp, FusedAttention, Kernel};

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
    /// The data-parallel all-gather of this many bytes of updated weights, on the data-parallel
    /// stream from the start of the iteration; the pieces after it wait for it.
    AwaitGather(u64),
    /// A tensor-parallel collective of this many bytes that runs beside these kernels (a GEMM),
    /// on its own stream: both start after the piece before, and the piece after waits for both.
    /// Transformer Engine's userbuffers run it (Megatron-Core's `--tp-comm-overlap`).
    Overlapped(CollectiveOp, u64, &'static str, Vec<Kernel>),
    /// The same with NCCL running the collective: a backward input-gradient reduction beside the
    /// weight-gradient GEMM (Megatron-LM's asynchronous tensor-parallel all-reduce).
    AsyncReduce(CollectiveOp, u64, Vec<Kernel>),
    /// A collective of this many bytes across the expert-parallel group (token dispatch and combine).
    Expert(CollectiveOp, u64),
    /// A blocking collective across the expert-data-parallel group (the routed experts' gradients
    /// and weights).
    ExpertData(CollectiveOp, u64),
    /// Kernels that differ by position in the expert-parallel group (entry j for position j): the
    /// routed experts, whose token counts a skewed router makes unequal.
    Experts(&'static str, Vec<Vec<Kernel>>),
    /// Send this many bytes to the next rank of the context-parallel ring and receive as many from
    /// the previous one, on the context stream once the piece before is done.
    RingSend(u64),
    /// The pieces after wait for the last [`Piece::RingSend`]'s receive.
    RingWait,
}

/// A block's kernels and where its tensor-parallel collectives go ([`crate::workload::tensor_parallel`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Name of its compute pieces.
    pub name: &'static str,
    /// Its kernels, in order.
    pub kernels: Vec<Kernel>,
    /// With sequence parallelism the all-gather runs before kernel `gather_at` (the kernels before
    /// it work on the rank's sequence shard).
    pub gather_at: usize,
    /// Bytes of that all-gather (nccl-tests convention: the gathered buffer).
    pub gather_bytes: u64,
    /// The reduce-scatter (all-reduce without sequence parallelism) runs before kernel `reduce_at`
    /// (after the last one when it equals their count).
    pub reduce_at: usize,
    /// Bytes of that reduction.
    pub reduce_bytes: u64,
    /// In the backward pass, the column-parallel weight-gradient GEMM that the reduction can run
    /// beside (Megatron-LM's asynchronous all-reduce): it is issued before this kernel instead.
    pub async_at: Option<usize>,
}

impl Block {
    /// A block that gathers `bytes` before all its kernels and reduces as many after them.
    pub fn whole(name: &'static str, kernels: Vec<Kernel>, bytes: u64) -> Self {
        Block {
            name,
            reduce_at: kernels.len(),
            kernels,
            gather_at: 0,
            gather_bytes: bytes,
            reduce_bytes: bytes,
            async_at: None,
        }
    }
    /// The same block whose reduction can run beside kernel `i`, its weight-gradient GEMM.
    pub fn reduced_beside(self, i: usize) -> Self {
        Block {
            async_at: Some(i),
            ..self
        }
    }
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
    /// Width of one head's queries, keys and values without multi-head latent attention (h / a
    /// unless the model says otherwise).
    pub head_dim: u64,
    /// RMSNorm over each head's queries and keys (Qwen3).
    pub qk_norm: bool,
    /// Tensor degree t.
    pub t: u64,
    /// Vocabulary V.
    pub vocab: u64,
    /// Sequence parallelism: LayerNorm/dropout/residual work on s/t of the sequence, and
    /// all-gather + reduce-scatter in place of each all-reduce.
    pub sp: bool,
    /// Width of the keys and of the values (h without grouped-query attention).
    pub kv: u64,
    /// MLP width (4 h for GPT).
    pub ffn: u64,
    /// SwiGLU MLP (three matrices) instead of GeLU (two).
    pub swiglu: bool,
    /// FP8 linear layers.
    pub fp8: bool,
    /// Sequence-parallel collectives overlapped with their neighbouring GEMMs.
    pub tp_overlap: bool,
    /// Backward input-gradient reductions beside the weight-gradient GEMMs (Megatron-LM's
    /// asynchronous tensor-parallel all-reduce).
    pub tp_async: bool,
    /// Fused attention kernels and whose (none: the 2021 separate kernels).
    pub fused_attention: Option<FusedAttention>,
    /// Multi-head latent attention's dimensions (none: multi-head or grouped-query attention).
    pub mla: Option<MlaSpec>,
}

impl LayerShape {
    /// The shape for a model, microbatch and tensor degree.
    pub fn new(model: &ModelSpec, micro: u64, tensor: u32, sequence_parallel: bool) -> Self {
        LayerShape {
            b: micro,
            s: model.seq_len,
            h: model.hidden,
            a: model.heads,
            head_dim: model.head_dim(),
            qk_norm: model.qk_norm,
            t: tensor as u64,
            vocab: model.vocab,
            sp: sequence_parallel && tensor > 1,
            kv: model.kv_dim(),
            ffn: model.ffn(),
            swiglu: model.mlp == crate::config::Mlp::Swiglu,
            fp8: false,
            fused_attention: None,
            tp_overlap: false,
            tp_async: false,
            mla: model.mla,
        }
    }
    fn gemm(m: u64, n: u64, k: u64) -> Kernel {
        Kernel::Gemm { batch: 1, m, n, k }
    }
    /// A streaming (memory-bound) kernel moving `bytes`.
    pub(crate) fn stream(bytes: u64) -> Kernel {
        Kernel::Stream { bytes }
    }
    /// bytes of one b x s x h activation
    fn bsh(&self) -> u64 {
        self.b * self.s * self.h * ACT
    }
    /// bytes of the b x s x h activation one rank holds outside the tensor-parallel blocks:
    /// all of it, or 1/t of the sequence with sequence parallelism
    pub(crate) fn local_bsh(&self) -> u64 {
        if self.sp {
            self.bsh() / self.t
        } else {
            self.bsh()
        }
    }
    /// A linear layer's GEMM: 16-bit, or FP8 ([`Kernel::Gemm8`], which includes the cast of its input).
    pub(crate) fn linear(&self, m: u64, n: u64, k: u64) -> Kernel {
        if self.fp8 {
            Kernel::Gemm8 { batch: 1, m, n, k }
        } else {
            Self::gemm(m, n, k)
        }
    }

    /// Output width of the MLP's first GEMM: ffn, or gate and up (2 ffn) for SwiGLU.
    pub(crate) fn up_width(&self) -> u64 {
        if self.swiglu {
            2 * self.ffn
        } else {
            self.ffn
        }
    }
    /// Bytes of the tensor-parallel all-reduce of one activation.
    pub fn allreduce_bytes(&self) -> u64 {
        self.bsh()
    }

    /// The forward pass of one layer, as Megatron runs it under tensor parallelism.
    pub fn forward(&self) -> Vec<Piece> {
        self.with_collectives(vec![
            self.attention_forward_block(),
            Block::whole("mlp", self.mlp_forward(), self.allreduce_bytes()),
        ])
    }

    fn mlp_forward(&self) -> Vec<Kernel> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let (ffn, up) = (self.ffn, self.up_width());
        vec![
            Self::stream(self.local_bsh() * 7 / 2), // bias-dropout-add after attention
            Self::stream(self.local_bsh() * 2),     // layer norm
            self.linear(bs, up / t, h),             // h -> ffn (column-parallel; gate and up for SwiGLU)
            // fused bias + GeLU: read + write ffn/t; SwiGLU: read gate and up, write ffn/t
            Self::stream(self.b * self.s * ffn / t * ACT * if self.swiglu { 3 } else { 2 }),
            self.linear(bs, h, ffn / t), // ffn -> h (row-parallel)
        ]
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
        let kernels = self.mlp_backward();
        // the h->ffn weight gradient is the last kernel
        let last = kernels.len() - 1;
        let mlp = Block::whole("mlp", kernels, self.allreduce_bytes()).reduced_beside(last);
        self.with_collectives(vec![mlp, self.attention_backward_block(recompute)])
    }

    fn mlp_backward(&self) -> Vec<Kernel> {
        let (bs, h, t) = (self.b * self.s, self.h, self.t);
        let (ffn, up) = (self.ffn, self.up_width());
        vec![
            Self::stream(self.local_bsh() * 5 / 2), // dropout backward: read grad, mask; write
            Self::stream(self.local_bsh()),         // bias gradient of the ffn->h output: reduce the grad over b s
            self.linear(bs, ffn / t, h),            // ffn->h data gradient
            self.linear(ffn / t, h, bs),            // ffn->h weight gradient
            // GeLU backward: read grad and input, write; SwiGLU: read grad, gate and up, write both
            Self::stream(self.b * self.s * ffn / t * ACT * if self.swiglu { 5 } else { 3 }),
            self.linear(bs, h, up / t), // h->ffn data gradient
            self.linear(h, up / t, bs), // h->ffn weight gradient
        ]
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
                    Self::stream(self.bsh() * 2), // final layer norm
                    Self::gemm(bs, vt, h),        // logits
                    Self::stream(bs * vt * CROSS_ENTROPY_FORWARD_BYTES),
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
                Self::stream(bs * vt * CROSS_ENTROPY_BACKWARD_BYTES),
                Self::gemm(bs, h, vt),        // data gradient
                Self::gemm(h, vt, bs),        // weight gradient
                Self::stream(self.bsh() * 3), // final layer norm backward
            ],
        )];
        if self.t > 1 {
            out.push(self.join());
        }
        out
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
            head_dim: 120,
            qk_norm: false,
            t,
            vocab: 51200,
            sp: false,
            kv: 3840,
            ffn: 4 * 3840,
            swiglu: false,
            fp8: false,
            fused_attention: None,
            tp_overlap: false,
            tp_async: false,
            mla: None,
        }
    }

    #[test]
    fn async_reduction_runs_beside_each_column_parallel_weight_gradient() {
        // t = 4: forward keeps its two blocking all-reduces; backward issues each block's
        // input-gradient all-reduce (b s h x 2 bytes) after the data gradient of its column-parallel
        // layer (h->ffn, QKV) and runs it beside that layer's weight gradient, a GEMM of h x n over
        // b s; with sequence parallelism the reduction is a reduce-scatter of the same bytes
        for sp in [false, true] {
            let plain = LayerShape { sp, ..shape(4) };
            let asynchronous = LayerShape {
                tp_async: true,
                ..plain
            };
            assert_eq!(plain.forward(), asynchronous.forward());
            let (before, after) = (plain.backward(Recompute::None), asynchronous.backward(Recompute::None));
            assert_eq!(flops(&before), flops(&after));
            let reduce = if sp {
                CollectiveOp::ReduceScatter
            } else {
                CollectiveOp::AllReduce
            };
            let (bs, h) = (2 * 2048, 3840);
            let beside: Vec<(CollectiveOp, u64, Kernel)> = after
                .iter()
                .filter_map(|p| match p {
                    Piece::AsyncReduce(op, bytes, k) => Some((*op, *bytes, k[0])),
                    _ => None,
                })
                .collect();
            let bytes = plain.allreduce_bytes();
            let weight_gradient = |n| Kernel::Gemm {
                batch: 1,
                m: h,
                n,
                k: bs,
            };
            assert_eq!(
                beside,
                vec![
                    (reduce, bytes, weight_gradient(4 * h / 4)),
                    (reduce, bytes, weight_gradient(3 * h / 4))
                ]
            );
            // no blocking reduction is left in backward; with sequence parallelism the all-gathers stay
            let blocking = |op| after.iter().filter(|p| **p == Piece::Tensor(op, bytes)).count();
            assert_eq!(blocking(reduce), 0);
            assert_eq!(blocking(CollectiveOp::AllGather), if sp { 2 } else { 0 });
        }
    }

    #[test]
    fn tp_overlap_puts_each_collective_beside_a_gemm_and_keeps_the_work() {
        // sequence parallelism over 4: each block's all-gather beside its first GEMM and its
        // reduce-scatter beside its last, forward and backward; the same kernels, the same bytes
        let sp = LayerShape { sp: true, ..shape(4) };
        let overlapped = LayerShape { tp_overlap: true, ..sp };
        for (plain, over) in [
            (sp.forward(), overlapped.forward()),
            (sp.backward(Recompute::None), overlapped.backward(Recompute::None)),
        ] {
            assert_eq!(flops(&plain), flops(&over));
            let beside: Vec<(CollectiveOp, u64, bool)> = over
                .iter()
                .filter_map(|p| match p {
                    Piece::Overlapped(op, bytes, _, k) => Some((*op, *bytes, matches!(k[..], [Kernel::Gemm { .. }]))),
                    _ => None,
                })
                .collect();
            let bytes = sp.allreduce_bytes();
            let expected = (CollectiveOp::AllGather, bytes, true);
            let rs = (CollectiveOp::ReduceScatter, bytes, true);
            assert_eq!(beside, vec![expected, rs, expected, rs]);
            assert!(!over.iter().any(|p| matches!(p, Piece::Tensor(..))));
        }
    }

    fn flops(pieces: &[Piece]) -> f64 {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, k) => k.iter().map(Kernel::flops).sum(),
                Piece::Overlapped(_, _, _, k) | Piece::AsyncReduce(_, _, k) => k.iter().map(Kernel::flops).sum(),
                Piece::Experts(_, k) => k[0].iter().map(Kernel::flops).sum(),
                Piece::Tensor(..) | Piece::Data(..) | Piece::AwaitGather(..) => 0.0,
                Piece::Expert(..) | Piece::ExpertData(..) => 0.0,
                Piece::RingSend(..) | Piece::RingWait => 0.0,
            })
            .sum()
    }

    #[test]
    fn fused_attention_skips_the_causal_half_and_recomputes_in_backward() {
        // the standard core's two batched GEMMs compute every score, masked or not: 2 products of
        // 2 bh s^2 d each, core = 4 b (a/t) s^2 (h/a) per rank. A fused kernel skips the blocks
        // above the causal diagonal: half of it, core / 2. Backward: the standard core's 4
        // products (2 core), or 6 with selective recompute's forward (3 core); the fused kernel's
        // 5 (scores recomputed, dP, dV, dQ, dK) at half: 1.25 core
        let (std, flash) = (
            shape(4),
            LayerShape {
                fused_attention: Some(FusedAttention::Flash2),
                ..shape(4)
            },
        );
        let (b, a, s, d) = (2.0, 32.0 / 4.0, 2048.0, 3840.0 / 32.0);
        let core = 4.0 * b * a * s * s * d;
        let forward = flops(&std.forward()) - flops(&flash.forward());
        assert!((forward - core / 2.0).abs() < 1.0, "{forward}");
        let difference = flops(&std.backward(Recompute::None)) - flops(&flash.backward(Recompute::None));
        assert!((difference - (2.0 - 1.25) * core).abs() < 1.0, "{difference}");
        // selective recompute checkpoints the fused kernel too: its forward (core / 2) runs again
        let again = flops(&flash.backward(Recompute::Selective)) - flops(&flash.backward(Recompute::None));
        assert!((again - core / 2.0).abs() < 1.0, "{again}");
        let selective = flops(&std.backward(Recompute::Selective));
        assert!((flops(&flash.backward(Recompute::None)) - (selective - 1.75 * core)).abs() < 1.0);
        // and no s x s traffic: the fused kernels move only Q, K, V, O (and gradients)
        let streamed = |p: &[Piece]| -> u64 {
            p.iter()
                .map(|x| match x {
                    Piece::Compute(_, k) => k.iter().map(Kernel::streamed_bytes).sum(),
                    _ => 0,
                })
                .sum()
        };
        assert!(streamed(&flash.forward()) < streamed(&std.forward()));
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

    #[test]
    fn the_softmax_falls_back_to_pytorch_where_megatrons_kernel_refuses() {
        // Megatron-LM 2021's fused scale-mask-softmax needs 16 < s <= 2048 and b x a/t a multiple
        // of 4. b 2: at t 16 each rank has 2 x 32/16 = 4 score matrices (fused: 4 B per score
        // forward, 6 backward); b 1 has 2 (refused: the fp32 fallback's 36 and 40 B); s 4096 is
        // refused whatever the count. Fused attention kernels have no separate softmax.
        let at = |b, s| LayerShape { b, s, ..shape(16) };
        assert!(at(2, 2048).fused_softmax() && !at(1, 2048).fused_softmax() && !at(2, 4096).fused_softmax());
        for (sh, forward, backward) in [(at(2, 2048), 4, 6), (at(1, 2048), 36, 40)] {
            let fused = LayerShape { b: 2, ..sh };
            let scores = sh.scores() as i64;
            // against the fused b 2 shape's count scaled to b (every streaming kernel is linear in b)
            let base_forward = stream_bytes(&fused.forward()) as i64 * sh.b as i64 / 2;
            let base_backward = stream_bytes(&fused.backward(Recompute::None)) as i64 * sh.b as i64 / 2;
            assert_eq!(
                stream_bytes(&sh.forward()) as i64 - base_forward,
                (forward - 4) * scores
            );
            assert_eq!(
                stream_bytes(&sh.backward(Recompute::None)) as i64 - base_backward,
                (backward - 6) * scores
            );
        }
        assert_eq!(
            at(1, 2048).attention_forward_block().name,
            "attention (unfused softmax)"
        );
        let flash = LayerShape {
            fused_attention: Some(FusedAttention::Flash2),
            ..at(1, 2048)
        };
        assert_eq!(flash.attention_forward_block().name, "attention");
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
}
