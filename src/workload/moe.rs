//! A mixture-of-experts layer under tensor and expert parallelism, as Megatron-Core runs it with
//! its all-to-all token dispatcher: the attention block as in a dense layer, then in place of the
//! MLP the router, the dispatch all-to-all, the local experts as grouped GEMMs, the combine
//! all-to-all and the weighted sum of each token's expert outputs.
//!
//! Notation: microbatch b, sequence s, hidden h, experts E, top-k k, expert width f, shared experts
//! S, expert-parallel size e, local experts L = E / e, tensor degree t, expert-tensor size u (each
//! expert's matrices are split over u ranks: the tensor ranks, u = t, Megatron-Core's default, or
//! none, u = 1, its "MoE parallel folding"). The token rows each rank routes (T), dispatches (R)
//! and receives (N_j), and the tensor all-gather of the received rows when u = t, are
//! [`super::moe_dispatch`]'s.

use super::moe_dispatch::{sequence_shards, Dispatch};
use super::transformer::{Block, LayerShape, Piece};
use crate::config::{MoeSpec, Recompute};
use crate::ops::{CollectiveOp, Kernel};

const ACT: u64 = 2; // bytes per 16-bit activation element

/// One mixture-of-experts layer's shapes for one microbatch.
#[derive(Clone, Debug)]
pub struct MoeBlock {
    /// The dense layer's shape (attention, tensor parallelism, precision).
    pub shape: LayerShape,
    /// Routed experts E.
    pub experts: u64,
    /// Experts per token k.
    pub top_k: u64,
    /// Shared experts S.
    pub shared: u64,
    /// Expert width f.
    pub ffn: u64,
    /// Expert-parallel size e.
    pub ep: u64,
    /// Expert-tensor size u: the ranks each routed expert's matrices are split over.
    pub expert_tensor: u64,
    /// The token rows each rank routes, dispatches and receives.
    pub dispatch: Dispatch,
}

impl MoeBlock {
    /// The block of global layer `layer` with expert-parallel size `ep` and expert-tensor size
    /// `expert_tensor` (t or 1).
    pub fn new(shape: &LayerShape, moe: &MoeSpec, layer: u32, ep: u32, expert_tensor: u32) -> Self {
        MoeBlock {
            shape: *shape,
            experts: moe.experts,
            top_k: moe.top_k,
            shared: moe.shared_experts,
            ffn: moe.ffn(shape.ffn),
            ep: ep as u64,
            expert_tensor: expert_tensor as u64,
            dispatch: Dispatch::new(shape, moe, layer, ep, expert_tensor),
        }
    }

    /// Bytes of each dispatch or combine all-to-all (per-rank buffer): the hottest position's rows
    /// of h 16-bit elements.
    pub fn all_to_all_bytes(&self) -> u64 {
        self.dispatch.all_to_all_rows() * self.shape.h * ACT
    }

    fn swiglu(&self) -> bool {
        self.shape.swiglu
    }

    /// Width of an expert's first GEMM: f, or gate and up (2 f) for SwiGLU.
    fn up(&self) -> u64 {
        if self.swiglu() {
            2 * self.ffn
        } else {
            self.ffn
        }
    }

    /// Grouped GEMMs of the L local experts over `rows` token rows (spread evenly among them):
    /// `batch` L products, priced by the compute model as one batched GEMM.
    fn grouped(&self, rows: u64, n: u64, k: u64, weight_gradient: bool) -> Kernel {
        let local = self.experts / self.ep;
        let m = rows.div_ceil(local);
        let (m, n, k) = if weight_gradient { (n, k, m) } else { (m, n, k) };
        match self.shape.linear(m, n, k) {
            Kernel::Gemm { m, n, k, .. } => Kernel::Gemm { batch: local, m, n, k },
            Kernel::Gemm8 { m, n, k, .. } => Kernel::Gemm8 { batch: local, m, n, k },
            other => other,
        }
    }

    /// The local experts' forward kernels at each position of the expert-parallel group.
    fn experts_forward(&self) -> Vec<Vec<Kernel>> {
        let (h, t) = (self.shape.h, self.expert_tensor);
        let act = if self.swiglu() { 3 } else { 2 }; // read gate and up (or the input), write
        self.dispatch
            .received
            .iter()
            .map(|&n| n * self.dispatch.gather)
            .map(|n| {
                vec![
                    self.grouped(n, self.up() / t, h, false), // h -> f (gate and up for SwiGLU)
                    Kernel::Stream {
                        bytes: n * self.ffn / t * ACT * act,
                    },
                    self.grouped(n, h, self.ffn / t, false), // f -> h
                ]
            })
            .collect()
    }

    /// Their backward: data and weight gradients of both GEMMs, the activation's backward between.
    fn experts_backward(&self) -> Vec<Vec<Kernel>> {
        let (h, t) = (self.shape.h, self.expert_tensor);
        let act = if self.swiglu() { 5 } else { 3 };
        self.dispatch
            .received
            .iter()
            .map(|&n| n * self.dispatch.gather)
            .map(|n| {
                vec![
                    self.grouped(n, self.ffn / t, h, false), // f -> h data gradient
                    self.grouped(n, self.ffn / t, h, true),  // f -> h weight gradient
                    Kernel::Stream {
                        bytes: n * self.ffn / t * ACT * act,
                    },
                    self.grouped(n, h, self.up() / t, false), // h -> f data gradient
                    self.grouped(n, h, self.up() / t, true),  // h -> f weight gradient
                ]
            })
            .collect()
    }

    /// The shared experts over the whole sequence, as one dense MLP of width S f split over the
    /// tensor ranks (with sequence parallelism between an all-gather and a reduce-scatter of the
    /// block input, as a dense MLP); forward, or backward (data and weight gradients).
    fn shared_experts(&self, backward: bool) -> Vec<Piece> {
        if self.shared == 0 {
            return Vec::new();
        }
        let (bs, h, t) = (self.shape.b * self.shape.s, self.shape.h, self.shape.t);
        let (f, up) = (self.shared * self.ffn / t, self.shared * self.up() / t);
        let lin = |m, n, k| self.shape.linear(m, n, k);
        let kernels = if !backward {
            let act = if self.swiglu() { 3 } else { 2 };
            let bytes = bs * f * ACT * act;
            vec![lin(bs, up, h), Kernel::Stream { bytes }, lin(bs, h, f)]
        } else {
            let bytes = bs * f * ACT * if self.swiglu() { 5 } else { 3 };
            vec![
                lin(bs, f, h),
                lin(f, h, bs),
                Kernel::Stream { bytes },
                lin(bs, h, up),
                lin(h, up, bs),
            ]
        };
        let pieces = vec![Piece::Compute("moe shared", kernels)];
        Self::gathered(sequence_shards(&self.shape), self.shape.allreduce_bytes(), pieces)
    }

    /// `pieces` between an all-gather and a reduce-scatter of `bytes` over the tensor group when
    /// they need the rows of `ranks` > 1 tensor ranks (sequence parallelism), alone otherwise.
    fn gathered(ranks: u64, bytes: u64, pieces: Vec<Piece>) -> Vec<Piece> {
        if ranks == 1 {
            return pieces;
        }
        std::iter::once(Piece::Tensor(CollectiveOp::AllGather, bytes))
            .chain(pieces)
            .chain([Piece::Tensor(CollectiveOp::ReduceScatter, bytes)])
            .collect()
    }

    /// The mixture-of-experts block's forward, between the tensor-parallel collectives.
    fn block_forward(&self) -> Vec<Piece> {
        let (tokens, h, e) = (self.dispatch.tokens, self.shape.h, self.experts);
        let local = self.shape.local_bsh();
        let router = vec![
            Kernel::Stream { bytes: local * 7 / 2 }, // bias-dropout-add after attention
            Kernel::Stream { bytes: local * 2 },     // layer norm
            Kernel::Gemm {
                batch: 1,
                m: tokens,
                n: e,
                k: h,
            }, // router logits (16-bit; the router's weights are replicated on every tensor rank)
            // softmax in fp32 (read 2, write 4 per logit) and top-k (read 4); write k values and indices
            Kernel::Stream {
                bytes: tokens * e * 10 + tokens * self.top_k * 12,
            },
            // permute: gather each token's rows into expert order (read and write R rows)
            Kernel::Stream {
                bytes: 2 * self.dispatch.dispatched * h * ACT,
            },
        ];
        let combine = vec![
            // unpermute and weight: read R rows, write T rows
            Kernel::Stream {
                bytes: (self.dispatch.dispatched + tokens) * h * ACT,
            },
        ];
        let mut out = self.around_experts(router, self.experts_forward(), combine);
        out.extend(self.shared_experts(false));
        out
    }

    /// Its backward (reverse order).
    fn block_backward(&self) -> Vec<Piece> {
        let (tokens, h, e) = (self.dispatch.tokens, self.shape.h, self.experts);
        let local = self.shape.local_bsh();
        let mut out = vec![Piece::Compute(
            "moe combine",
            vec![
                Kernel::Stream { bytes: local * 5 / 2 }, // dropout backward
                Kernel::Stream { bytes: local },         // bias gradient of the block output
            ],
        )];
        out.extend(self.shared_experts(true));
        // unpermute backward: read the output gradient (T rows) and the expert outputs (R rows, for
        // the routing weights' gradient), write R rows
        let combine = vec![Kernel::Stream {
            bytes: (tokens + 2 * self.dispatch.dispatched) * h * ACT,
        }];
        let router = vec![
            // permute backward: scatter-add R rows into T
            Kernel::Stream {
                bytes: (self.dispatch.dispatched + tokens) * h * ACT,
            },
            // softmax and top-k backward in fp32: read probabilities and gradient (8), write 2
            Kernel::Stream { bytes: tokens * e * 10 },
            Kernel::Gemm {
                batch: 1,
                m: tokens,
                n: h,
                k: e,
            }, // router data gradient
            Kernel::Gemm {
                batch: 1,
                m: h,
                n: e,
                k: tokens,
            }, // router weight gradient
        ];
        out.extend(self.around_experts(combine, self.experts_backward(), router));
        out
    }

    /// `before`, the dispatch all-to-all, the all-gather of the received rows over the tensor group
    /// (sequence parallelism with split experts), the experts, the reduce-scatter, the combine
    /// all-to-all, `after`;
    /// without expert parallelism the tokens stay on the rank (no all-to-all), and without either
    /// the experts are ordinary kernels.
    fn around_experts(&self, before: Vec<Kernel>, experts: Vec<Vec<Kernel>>, after: Vec<Kernel>) -> Vec<Piece> {
        if self.ep == 1 && self.dispatch.gather == 1 {
            let mut all = before;
            all.extend(experts.into_iter().flatten());
            all.extend(after);
            return vec![Piece::Compute("moe", all)];
        }
        let bytes = self.all_to_all_bytes();
        let a2a = (self.ep > 1).then_some(Piece::Expert(CollectiveOp::AllToAll, bytes));
        let experts = if self.ep > 1 {
            Piece::Experts("moe experts", experts)
        } else {
            Piece::Compute("moe experts", experts.into_iter().flatten().collect())
        };
        let mut out = vec![Piece::Compute("moe router", before)];
        out.extend(a2a.clone());
        out.extend(Self::gathered(
            self.dispatch.gather,
            self.dispatch.gather * bytes,
            vec![experts],
        ));
        out.extend(a2a);
        out.push(Piece::Compute("moe combine", after));
        out
    }

    /// The attention block's pieces (with their tensor-parallel collectives).
    fn attention(&self, block: Block) -> Vec<Piece> {
        if self.shape.t == 1 {
            vec![Piece::Compute(block.name, block.kernels)]
        } else {
            self.shape.with_collectives(vec![block])
        }
    }

    /// The forward pass of the whole layer.
    pub fn forward(&self) -> Vec<Piece> {
        let mut out = self.attention(self.shape.attention_forward_block());
        out.extend(self.block_forward());
        out
    }

    /// The backward pass of the whole layer, with the recomputation `recompute` asks for.
    pub fn backward(&self, recompute: Recompute) -> Vec<Piece> {
        let mut out = self.block_backward();
        out.extend(self.attention(self.shape.attention_backward_block(recompute)));
        out
    }
}

/// Bytes one mixture-of-experts layer stores for one microbatch on one rank beyond what
/// Korthikanti's count gives a dense layer (whose MLP stores its two 4h-wide intermediates, 16
/// s b h / t): the router's fp32 probabilities (4 T E), the rows its experts process (R, or the
/// tensor group's t R under sequence parallelism with experts split over it; R with whole experts)
/// as input and as output kept for the routing weights' gradient (2 h each), the experts'
/// intermediates (2 (up + f) / u per row, balanced) and the shared experts' (2 b s S (up + f) / t).
/// With FP8 the experts' linear layers keep their inputs at 1 byte (Transformer Engine's FP8
/// copies): the rows' h and their activations' f / u, and the shared experts' S f / t per token.
/// Full recompute keeps only the layer input: nothing more.
pub fn activation_extra_bytes(block: &MoeBlock, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let s = &block.shape;
    let (tokens, t) = ((s.b * s.s) as f64, s.t as f64);
    let rows = (block.dispatch.dispatched * block.dispatch.gather) as f64;
    let (h, width) = (s.h as f64, (block.up() + block.ffn) as f64);
    let stored = 4.0 * block.dispatch.tokens as f64 * block.experts as f64
        + 4.0 * rows * h
        + 2.0 * rows * width / block.expert_tensor as f64
        + 2.0 * tokens * block.shared as f64 * width / t;
    let fp8 = if s.fp8 {
        let f = block.ffn as f64;
        rows * (h + f / block.expert_tensor as f64) + tokens * block.shared as f64 * f / t
    } else {
        0.0
    };
    stored - fp8 - 16.0 * tokens * h / t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSpec;

    fn block(moe: &str, ep: u32) -> MoeBlock {
        let m: ModelSpec = serde_yaml::from_str(&format!(
            "{{ layers: 4, hidden: 1024, heads: 8, seq_len: 512, vocab: 0, mlp: swiglu, moe: {moe} }}"
        ))
        .unwrap();
        MoeBlock::new(&LayerShape::new(&m, 2, 1, false), m.moe.as_ref().unwrap(), 0, ep, 1)
    }

    fn flops(pieces: &[Piece], position: usize) -> f64 {
        let sum = |k: &[Kernel]| k.iter().map(Kernel::flops).sum::<f64>();
        pieces
            .iter()
            .map(|p| match p {
                Piece::Compute(_, k) => sum(k),
                Piece::Experts(_, k) => sum(&k[position]),
                _ => 0.0,
            })
            .sum()
    }

    #[test]
    fn expert_flops_are_two_per_routed_weight_and_token() {
        // T = b s = 2 x 512 = 1024 tokens, k = 2 of E = 8 SwiGLU experts of f = 2048 (3 h f weights
        // each), e = 4: each position receives T k = 2048 rows over its 2 experts. Forward block
        // FLOPs per position: router 2 T h E + experts 2 (T k) 3 h f; the attention as a dense layer's
        let b = block("{ experts: 8, top_k: 2, ffn_hidden: 2048 }", 4);
        assert_eq!(b.dispatch.received, vec![2048; 4]);
        let (t, h, e, k, f) = (1024.0, 1024.0, 8.0, 2.0, 2048.0);
        let attention: f64 = b
            .shape
            .attention_forward_block()
            .kernels
            .iter()
            .map(Kernel::flops)
            .sum();
        let expected = attention + 2.0 * t * h * e + 2.0 * t * k * 3.0 * h * f;
        assert_eq!(flops(&b.forward(), 0), expected);
        // backward: twice the block's (data and weight gradients of every matrix)
        let attention_bwd: f64 = b
            .shape
            .attention_backward_block(Recompute::None)
            .kernels
            .iter()
            .map(Kernel::flops)
            .sum();
        let bwd = flops(&b.backward(Recompute::None), 0) - attention_bwd;
        assert_eq!(bwd, 2.0 * (expected - attention));
        // all-to-alls: T k h 16-bit elements = 1024 x 2 x 1024 x 2 B, four per layer
        let a2a: Vec<u64> = b
            .forward()
            .iter()
            .chain(&b.backward(Recompute::None))
            .filter_map(|p| match p {
                Piece::Expert(CollectiveOp::AllToAll, bytes) => Some(*bytes),
                _ => None,
            })
            .collect();
        assert_eq!(a2a, vec![1024 * 2 * 1024 * 2; 4]);
    }

    /// A layer of 8 SwiGLU experts (h 1024, f 4096, top 2) and `shared` shared experts on t = 2
    /// ranks with sequence parallelism, b 2, s 512, expert size `ep` and expert-tensor size `u`.
    fn sp_block(shared: u64, ep: u32, u: u32) -> MoeBlock {
        let m: ModelSpec = serde_yaml::from_str(&format!(
            "{{ layers: 4, hidden: 1024, heads: 8, seq_len: 512, vocab: 0, mlp: swiglu, \
               moe: {{ experts: 8, top_k: 2, shared_experts: {shared} }} }}"
        ))
        .unwrap();
        MoeBlock::new(&LayerShape::new(&m, 2, 2, true), m.moe.as_ref().unwrap(), 0, ep, u)
    }

    /// The collectives of `pieces`: (op, bytes, over the expert-parallel group).
    fn collectives(pieces: &[Piece]) -> Vec<(CollectiveOp, u64, bool)> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Expert(op, bytes) => Some((*op, *bytes, true)),
                Piece::Tensor(op, bytes) => Some((*op, *bytes, false)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn with_sequence_parallelism_each_tensor_rank_dispatches_its_shard() {
        // t = 2 with sequence parallelism: each tensor rank routes T = b s / t = 512 tokens and
        // dispatches T k = 1024 rows (1024 x 1024 x 2 B); the rows reaching the tensor group are
        // all-gathered before the experts (2 x that, nccl-tests' full output) and reduce-scattered
        // after, and each tensor rank's experts run on the group's 2048 rows with f / t columns
        let b = sp_block(0, 4, 2);
        let rows = 1024 * 2;
        let a2a = (CollectiveOp::AllToAll, rows / 2 * 1024 * 2, true);
        let gathered = 2 * rows / 2 * 1024 * 2;
        let (ag, rs) = (CollectiveOp::AllGather, CollectiveOp::ReduceScatter);
        // the attention block's all-gather and reduce-scatter of b s h, then the experts'
        let bsh = 2 * 512 * 1024 * 2;
        assert_eq!(
            collectives(&b.forward()),
            vec![
                (ag, bsh, false),
                (rs, bsh, false),
                a2a,
                (ag, gathered, false),
                (rs, gathered, false),
                a2a
            ]
        );
        let experts = b.experts_forward();
        let (h, f) = (1024.0, 4096.0 / 2.0);
        let expected = 2.0 * rows as f64 * 3.0 * h * f; // the group's rows, 3 h f / t weights
        assert_eq!(experts[0].iter().map(Kernel::flops).sum::<f64>(), expected);
    }

    #[test]
    fn whole_experts_run_on_the_rows_a_rank_receives_with_no_tensor_gather() {
        // the same layer with expert-tensor size 1: each tensor rank still routes its T = 512
        // tokens and dispatches T k = 1024 rows (all-to-all of 1024 x 1024 x 2 B per rank, as
        // with u = t), but its whole experts take the 1024 rows it receives: no all-gather or
        // reduce-scatter around them, only the attention block's of b s h
        let (split, whole) = (sp_block(0, 4, 2), sp_block(0, 4, 1));
        let (ag, rs) = (CollectiveOp::AllGather, CollectiveOp::ReduceScatter);
        let (bsh, a2a) = (2 * 512 * 1024 * 2, (CollectiveOp::AllToAll, 1024 * 1024 * 2, true));
        let attention = [(ag, bsh, false), (rs, bsh, false)];
        assert_eq!(collectives(&whole.forward()), [&attention[..], &[a2a, a2a]].concat());
        assert_eq!(whole.all_to_all_bytes(), split.all_to_all_bytes());
        // backward: the two all-to-alls and the attention block's collectives, nothing else
        let backward = collectives(&whole.backward(Recompute::None));
        assert_eq!(backward.iter().filter(|c| c.2).count(), 2);
        assert_eq!(backward.iter().filter(|c| !c.2).count(), 2);
        // per rank the same expert FLOPs: 2 x 1024 rows x 3 h f (f = 4096 whole) = 2 x 2048 rows
        // x 3 h f / 2; L = 2 local experts of 512 rows each, their GEMMs f wide (gate and up: 2 f)
        let experts = whole.experts_forward();
        let sum = |k: &[Kernel]| k.iter().map(Kernel::flops).sum::<f64>();
        assert_eq!(sum(&experts[0]), 2.0 * 1024.0 * 3.0 * 1024.0 * 4096.0);
        assert_eq!(sum(&experts[0]), sum(&split.experts_forward()[0]));
        assert!(matches!(
            experts[0][0],
            Kernel::Gemm {
                batch: 2,
                m: 512,
                n: 8192,
                k: 1024
            }
        ));
        // shared experts stay split over the tensor ranks: their all-gather and reduce-scatter of
        // b s h remain
        let shared = collectives(&sp_block(1, 4, 1).forward());
        assert_eq!(shared[4..], [(ag, bsh, false), (rs, bsh, false)]);
    }

    #[test]
    fn fp8_experts_keep_their_inputs_at_one_byte() {
        // b 2 x s 512 = 1024 tokens, top 2 of 8 experts, width 1024 (SwiGLU), one shared expert, h
        // 1024, e 2, t 1: R = 2048 rows; FP8 keeps each row's expert input (h) and activation
        // output (f) at 1 byte instead of 2, and the shared expert's activation output (S f per
        // token): 2048 x (1024 + 1024) + 1024 x 1 x 1024 bytes less
        let bf16 = block("{experts: 8, top_k: 2, ffn_hidden: 1024, shared_experts: 1}", 2);
        let mut fp8 = bf16.clone();
        fp8.shape.fp8 = true;
        let less = activation_extra_bytes(&bf16, Recompute::None) - activation_extra_bytes(&fp8, Recompute::None);
        assert_eq!(less, 2048.0 * 2048.0 + 1024.0 * 1024.0);
        assert_eq!(activation_extra_bytes(&fp8, Recompute::Full), 0.0);
    }
}
