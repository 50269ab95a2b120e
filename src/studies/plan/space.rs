//! The planner's search space: one [`Candidate`] per combination of the axes that apply to the
//! model and the machine, and the rules that leave out what cannot win.
//!
//! The GPU count is t x c x p x d (tensor, context, pipeline, data). Axes that cannot apply are not
//! enumerated: context parallelism (c > 1, a divisor of N / t with the sequence cut into 2c chunks)
//! only with fused attention; expert parallelism (e > 1, a divisor of the experts that divides
//! d x c, the ranks Megatron-Core carves its expert-parallel groups from) only for a
//! mixture-of-experts model, which also never takes ZeRO-3 nor, with t > 1, a split without
//! sequence parallelism (refused by the run's checks); FP8 only where every GPU of the machine has
//! `fp8_flops`. A mixture-of-experts model with t > 1 also tries whole experts (expert-tensor size 1,
//! e a divisor of t x d x c: Megatron-Core's MoE parallel folding), and with e > 1 the all-to-alls
//! overlapped with another microbatch (`ep_comm_overlap`) where Megatron-Core allows it (with
//! interleaving or no pipeline, no full recompute). A pipeline whose model chunks do not divide the
//! layers is tried with Megatron-Core's `account_for_embedding_in_pipeline_split` and
//! `..._loss_...` when layers + 2 divide: each chunk n = (layers + 2) / (p v) layers, the first and
//! last n - 1. With fused attention, selective recompute is left out: the fused kernels already
//! store no s x s scores, so it saves no memory the model counts and only runs the fused forward
//! again (Megatron-Core checkpoints the core attention whatever kernel runs it): it cannot win. A model with 2021 attention and no
//! experts on a GPU without FP8 gets exactly the search it had before these axes existed.
//!
//! Context parallelism is pruned twice, because a ring of c ranks only helps in two ways: it
//! divides a microbatch's activations by c, and it cuts one sequence into c pieces, so that a
//! pipeline gets c times the microbatches (a smaller bubble) at the same work per GPU.
//! - Enumeration: c > 1 only with microbatch 1. A microbatch of b sequences on a ring of c, where
//!   g > 1 divides both, has the tokens per rank (b s / c), the microbatches per pipeline
//!   (B / (b d)), the weights, optimizer shards (over d c) and activations of b / g sequences on a
//!   ring of c / g, with more K/V traffic ((c - 1) b s / c tokens of K/V per rank and layer against
//!   (c / g - 1) b s / c): it can at best tie. With c and b powers of two that leaves b = 1.
//! - Enumeration: a rank's share of a sequence, s / c, at least [`MIN_RING_TOKENS`]. Below it the
//!   GEMMs have fewer rows than the tensor cores' tiles fill well and each ring step is too short
//!   to hide its K/V send; such rings also cost the most to simulate (c steps per layer on B / d
//!   microbatches). A heuristic bound: long sequences keep their large rings (131072 tokens: up to
//!   c = 128).
//! - After the memory check ([`prune`]): a fitting candidate with c > 1 is simulated only if the same
//!   split on a ring of c / 2 (twice the data size) does not fit, or, with a pipeline, still has
//!   a bubble worth halving: Megatron's ideal bubble (p - 1) / (v m) at least
//!   [`BUBBLE_WORTH_HALVING`]. Otherwise doubling the ring gains at most half a bubble of under 5%
//!   against smaller GEMMs and more K/V sends: a heuristic bound, not a proof.

use crate::config::{Precision, Recompute, RunConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The fewest tokens of a sequence a context rank holds (s / c) in the search.
pub const MIN_RING_TOKENS: u64 = 1024;

/// Megatron's ideal bubble (p - 1) / (v m) below which a larger context ring is not tried for the
/// bubble's sake (it can still be for memory).
pub const BUBBLE_WORTH_HALVING: f64 = 0.05;

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn is_bf16(p: &Precision) -> bool {
    *p == Precision::Bf16
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One configuration of the search space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// Tensor degree.
    pub tensor: u32,
    /// Context-parallel degree (1: none).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub context: u32,
    /// Pipeline degree.
    pub pipeline: u32,
    /// Data degree.
    pub data: u32,
    /// Expert-parallel degree (1: none).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub expert: u32,
    /// Expert-tensor size: 0 for the dense layers' tensor size, or 1 (whole experts).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expert_tensor: u32,
    /// The expert-parallel all-to-alls overlapped with another microbatch (`ep_comm_overlap`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ep_overlap: bool,
    /// The embedding and the loss counted as a layer each in the pipeline split (the first and the
    /// last model chunk one layer fewer), for layer counts the chunks do not divide.
    #[serde(default, skip_serializing_if = "is_false")]
    pub embedding_split: bool,
    /// Microbatch.
    pub micro: u64,
    /// Model chunks per GPU (1: 1F1B, more: interleaved).
    pub interleave: u32,
    /// Recompute mode.
    pub recompute: Recompute,
    /// Sequence parallelism.
    pub sequence_parallel: bool,
    /// ZeRO stage.
    pub zero_stage: u8,
    /// Precision of the linear layers.
    #[serde(default, skip_serializing_if = "is_bf16")]
    pub precision: Precision,
    /// Layers per stage when balanced over GPUs of different speeds (heterogeneous machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_per_stage: Option<Vec<u32>>,
}

impl Candidate {
    /// The `--set` overrides that select this configuration.
    pub fn overrides(&self) -> Vec<String> {
        let schedule = if self.interleave > 1 { "interleaved" } else { "1f1b" };
        let precision = if self.precision == Precision::Fp8 {
            "fp8"
        } else {
            "bf16"
        };
        vec![
            format!("workload.parallel.tensor={}", self.tensor),
            format!("workload.parallel.context={}", self.context),
            format!("workload.parallel.pipeline={}", self.pipeline),
            format!("workload.parallel.data={}", self.data),
            format!("workload.parallel.expert={}", self.expert),
            format!("workload.parallel.interleave={}", self.interleave),
            format!("workload.parallel.sequence_parallel={}", self.sequence_parallel),
            format!("workload.batch.micro={}", self.micro),
            format!("workload.schedule={schedule}"),
            format!("workload.recompute={}", self.recompute.name()),
            format!("workload.data_parallel.zero_stage={}", self.zero_stage),
            format!("workload.precision={precision}"),
            "workload.gpus=~".to_string(),
            match self.expert_tensor {
                0 => "workload.parallel.expert_tensor=~".to_string(),
                et => format!("workload.parallel.expert_tensor={et}"),
            },
            format!("workload.ep_comm_overlap={}", self.ep_overlap),
        ]
        .into_iter()
        .chain(std::iter::once(match &self.layers_per_stage {
            Some(l) => {
                let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                format!("workload.parallel.layers_per_stage=[{}]", list.join(","))
            }
            None => "workload.parallel.layers_per_stage=~".to_string(),
        }))
        .collect()
    }

    /// Short description, e.g. `t8 p16 d8 b1 v1 full sp zero1`; a context ring, expert parallelism
    /// and FP8 add `c4` after the tensor size, `e8` after the data size and ` fp8` at the end.
    pub fn label(&self) -> String {
        let mut s = format!("t{}", self.tensor);
        if self.context > 1 {
            s += &format!(" c{}", self.context);
        }
        s += &format!(" p{} d{}", self.pipeline, self.data);
        if self.expert > 1 {
            s += &format!(" e{}", self.expert_cell());
        }
        s += &self.rest_label();
        if self.precision == Precision::Fp8 {
            s += " fp8";
        }
        s
    }
    /// The expert-parallel size as a table shows it: `x1` for whole experts with t > 1, ` a2a` with
    /// the all-to-alls overlapped (e.g. `16x1 a2a`).
    pub fn expert_cell(&self) -> String {
        let mut s = self.expert.to_string();
        if self.expert_tensor == 1 && self.tensor > 1 {
            s += "x1";
        }
        if self.ep_overlap {
            s += " a2a";
        }
        s
    }
    /// The ranks each routed expert is split over: the tensor size, or 1 with whole experts.
    pub fn expert_tensor_size(&self) -> u32 {
        if self.expert_tensor == 0 {
            self.tensor
        } else {
            self.expert_tensor
        }
    }
    /// The label without context, expert and precision, for a table that gives them columns.
    pub fn split_label(&self) -> String {
        format!("t{} p{} d{}", self.tensor, self.pipeline, self.data) + &self.rest_label()
    }
    fn rest_label(&self) -> String {
        format!(
            " b{} v{} {}{} zero{}",
            self.micro,
            self.interleave,
            self.recompute.name(),
            if self.sequence_parallel { " sp" } else { "" },
            self.zero_stage
        ) + &match (&self.layers_per_stage, self.embedding_split) {
            (_, true) => " emb+loss split".to_string(),
            (Some(l), false) => {
                let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                format!(" layers {}", list.join("+"))
            }
            (None, false) => String::new(),
        }
    }
    /// The same split on a context ring half as large (twice the data size); None without one.
    fn half_ring(&self) -> Option<Candidate> {
        (self.context > 1).then(|| Candidate {
            context: self.context / 2,
            data: self.data * 2,
            ..self.clone()
        })
    }
}

/// Layers per stage in proportion to each stage's GPU peak (largest remainders, at least one
/// each), for a split of `layers` over `p` stages of `per_stage` GPUs on a machine with node
/// groups; None when every stage has the same GPU.
pub fn balanced_layers(hw: &crate::config::HardwareSpec, layers: u32, p: u32, per_stage: u64) -> Option<Vec<u32>> {
    let groups = crate::config::groups::group_of_nodes(&hw.node_groups, hw.nodes);
    let models = hw.gpu_models();
    let speed: Vec<f64> = (0..p as u64)
        .map(|s| {
            let node = (s * per_stage / hw.node.gpus as u64) as usize;
            models[groups.get(node).copied().unwrap_or(0) as usize]
                .peak_flops
                .flops_per_s()
        })
        .collect();
    if speed.iter().all(|&x| x == speed[0]) || layers < p {
        return None;
    }
    let total: f64 = speed.iter().sum();
    let spare = (layers - p) as f64;
    let exact: Vec<f64> = speed.iter().map(|x| spare * x / total).collect();
    let mut out: Vec<u32> = exact.iter().map(|x| 1 + x.floor() as u32).collect();
    let mut order: Vec<usize> = (0..p as usize).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let mut left = layers - out.iter().sum::<u32>();
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    Some(out)
}

fn divisors(n: u64) -> Vec<u64> {
    (1..=n).filter(|d| n % d == 0).collect()
}

/// The values of the new axes that apply to this model on this machine.
struct Axes {
    /// Context sizes allowed by the sequence and the attention kernels (before dividing N / t).
    context: bool,
    /// The experts of a mixture-of-experts model.
    experts: Option<u64>,
    /// Precisions every GPU runs.
    precisions: Vec<Precision>,
}

impl Axes {
    fn of(cfg: &RunConfig) -> Axes {
        let w = &cfg.workload;
        let fp8 = cfg.hardware.gpu_models().iter().all(|g| g.fp8_flops.is_some());
        Axes {
            context: w.attention.fused().is_some(),
            experts: w.model.moe.as_ref().map(|m| m.experts),
            precisions: if fp8 {
                vec![Precision::Bf16, Precision::Fp8]
            } else {
                vec![Precision::Bf16]
            },
        }
    }
    /// Context sizes c for `rest` = N / t GPUs: divisors with the sequence in 2c equal chunks,
    /// a rank holding at least [`MIN_RING_TOKENS`] tokens.
    fn contexts(&self, rest: u64, seq_len: u64) -> Vec<u64> {
        if !self.context {
            return vec![1];
        }
        divisors(rest)
            .into_iter()
            .filter(|&c| c == 1 || (seq_len % (2 * c) == 0 && seq_len / c >= MIN_RING_TOKENS))
            .collect()
    }
    /// (expert size, expert-tensor size) pairs for tensor size `t` and `ranks` = d x c data and
    /// context ranks: divisors of the experts that divide them, each expert split over t (0: the
    /// tensor size); with t > 1 also the divisors (above 1) that divide t x d x c, with whole
    /// experts (1) over groups that fold the tensor ranks in.
    fn expert_options(&self, t: u64, ranks: u64) -> Vec<(u64, u32)> {
        let Some(experts) = self.experts else {
            return vec![(1, 0)];
        };
        let split = divisors(experts).into_iter().filter(|x| ranks % x == 0).map(|e| (e, 0));
        let whole = divisors(experts)
            .into_iter()
            .filter(|x| t > 1 && *x > 1 && (t * ranks) % x == 0)
            .map(|e| (e, 1));
        split.chain(whole).collect()
    }
}

/// Every candidate of the search space for `gpus` GPUs (validity is checked later).
pub fn candidates(cfg: &RunConfig, gpus: u64) -> Vec<Candidate> {
    let m = &cfg.workload.model;
    let axes = Axes::of(cfg);
    let moe = m.moe.is_some();
    let fused = cfg.workload.attention.fused().is_some();
    let mut out = Vec::new();
    for t in divisors(gpus)
        .into_iter()
        .filter(|t| *t <= cfg.hardware.node.gpus as u64 && m.heads % t == 0)
    {
        for c in axes.contexts(gpus / t, m.seq_len) {
            for p in divisors(gpus / (t * c)) {
                let d = gpus / (t * c * p);
                for (e, et) in axes.expert_options(t, d * c) {
                    for micro in [1u64, 2, 4, 8] {
                        // a ring of c with b > 1 ties at best with b / 2 on c / 2 (module docs)
                        if c > 1 && micro > 1 {
                            continue;
                        }
                        for interleave in [1u32, 2, 4] {
                            if interleave > 1 && p == 1 {
                                continue;
                            }
                            let Some(split) = layer_split(m.layers, p as u32 * interleave) else {
                                continue;
                            };
                            for recompute in [Recompute::None, Recompute::Selective, Recompute::Full] {
                                // with fused attention selective recompute saves nothing and costs a forward
                                if fused && recompute == Recompute::Selective {
                                    continue;
                                }
                                // Megatron-Core overlaps the all-to-alls with interleaving or without a
                                // pipeline, and not under full recompute
                                let overlap = e > 1 && (interleave > 1 || p == 1) && recompute != Recompute::Full;
                                for sequence_parallel in [false, true] {
                                    // experts with t > 1 need sequence parallelism
                                    if (sequence_parallel && t == 1) || (moe && t > 1 && !sequence_parallel) {
                                        continue;
                                    }
                                    for zero_stage in [0u8, 1, 3] {
                                        if moe && zero_stage == 3 {
                                            continue;
                                        }
                                        for &precision in &axes.precisions {
                                            for ep_overlap in [false, true].into_iter().filter(|&o| !o || overlap) {
                                                let c = Candidate {
                                                    tensor: t as u32,
                                                    context: c as u32,
                                                    pipeline: p as u32,
                                                    data: d as u32,
                                                    expert: e as u32,
                                                    expert_tensor: et,
                                                    ep_overlap,
                                                    embedding_split: split.is_some(),
                                                    micro,
                                                    interleave,
                                                    recompute,
                                                    sequence_parallel,
                                                    zero_stage,
                                                    precision,
                                                    layers_per_stage: split.clone(),
                                                };
                                                push_with_balanced(&mut out, cfg, c);
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// How `layers` go over `chunks` model chunks: evenly (Some(None)), or with the embedding and the
/// loss counted as a layer each (Some(Some(list)): n = (layers + 2) / chunks each, n - 1 on the
/// first and the last, n at least 2), or not at all (None).
pub fn layer_split(layers: u32, chunks: u32) -> Option<Option<Vec<u32>>> {
    if layers % chunks == 0 {
        return Some(None);
    }
    let n = (layers + 2) / chunks;
    if chunks < 2 || (layers + 2) % chunks != 0 || n < 2 {
        return None;
    }
    let mut list = vec![n; chunks as usize];
    list[0] = n - 1;
    list[chunks as usize - 1] = n - 1;
    Some(Some(list))
}

/// Pushes `c` and, on mixed GPUs, first the split that gives faster stages more layers.
fn push_with_balanced(out: &mut Vec<Candidate>, cfg: &RunConfig, c: Candidate) {
    let per_stage = c.tensor as u64 * c.context as u64 * c.data as u64;
    let balanced = (c.interleave == 1)
        .then(|| balanced_layers(&cfg.hardware, cfg.workload.model.layers, c.pipeline, per_stage))
        .flatten();
    if let Some(layers) = balanced {
        out.push(Candidate {
            layers_per_stage: Some(layers),
            embedding_split: false,
            ..c.clone()
        });
    }
    out.push(c);
}

/// Which fitting candidates (given with their global batch `batch`) are worth simulating: false for
/// a context ring whose half ring also fits and has a pipeline bubble under
/// [`BUBBLE_WORTH_HALVING`] (module docs). Without context parallelism, all.
pub fn prune(fitting: &[&Candidate], batch: u64) -> Vec<bool> {
    let fits: HashSet<String> = fitting.iter().map(|c| c.label()).collect();
    fitting
        .iter()
        .map(|c| {
            let Some(half) = c.half_ring() else {
                return true;
            };
            if !fits.contains(&half.label()) {
                return true;
            }
            let m = batch as f64 / (half.micro * half.data as u64) as f64;
            let bubble = (half.pipeline as f64 - 1.0) / (half.interleave as f64 * m);
            bubble >= BUBBLE_WORTH_HALVING
        })
        .collect()
}
