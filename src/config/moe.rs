//! Mixture of experts: the `model.moe` section and the expert-parallel split (`parallel.expert`).
//!
//! A mixture-of-experts layer replaces the dense MLP of every n-th transformer layer (past the first
//! k, which stay dense when `first_dense_layers` says so) with a router
//! (a small h x E GEMM, softmax and top-k) and E experts, each an MLP of width `ffn_hidden`; every
//! token goes to `top_k` of them. Expert parallelism divides the experts among the ranks of the
//! expert-parallel group. Megatron-Core (since its "MoE parallel folding", core_r0.10.0) lays the
//! expert layers' ranks out as expert-tensor x expert x expert-data x pipeline over the same ranks
//! as the dense layers' tensor x context x data x pipeline (`parallel_state.py`, the expert
//! `RankGenerator` with context size 1, order tp-ep-dp-pp); with the expert-tensor size equal to
//! t, as here, the expert-parallel groups are carved out of data x context: with expert size e,
//! data positions e q .. e q + e - 1 (position = context index + c x replica, same tensor rank and
//! stage) form one expert-parallel group, and positions r, r + e, r + 2e, ... hold the same
//! experts (the expert-data-parallel group of d c / e ranks, over which the experts' gradients are
//! reduced). The experts' own tensor parallelism is the dense layers' t by default.
//!
//! With `parallel.expert_tensor: 1` (Megatron-Core's `--expert-tensor-parallel-size 1`, as NVIDIA
//! runs Qwen3-235B-A22B on H100s: Megatron-MoE-ModelZoo, best_practice/Qwen3/readme.md, TP2 EP32
//! ETP1) the expert RankGenerator's tensor size is 1:
//! every expert is whole on its rank, and the expert-parallel groups are e consecutive ranks of a
//! stage's t x d x c ranks in the dense order (tensor fastest, then context, then data), so e must
//! divide t d c, and the t d c / e ranks holding the same experts form the expert-data-parallel
//! group ([`crate::workload::expert_layout`]).

use super::{Document, WorkloadSpec};
use crate::error::Result;
use serde::Deserialize;

/// Largest expert count accepted.
const EXPERTS_MAX: u64 = 1 << 16;
/// Largest load imbalance accepted (the standard deviation of log expert popularity).
const IMBALANCE_MAX: f64 = 10.0;

/// The mixture-of-experts layers of a model.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MoeSpec {
    /// Routed experts E per mixture-of-experts layer.
    pub experts: u64,
    /// Experts each token is routed to.
    pub top_k: u64,
    /// Width of one expert's MLP (same kind, `model.mlp`, as the dense one); the model's
    /// `ffn_hidden` unless stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_hidden: Option<u64>,
    /// Expert capacity factor c: each expert takes at most c x (tokens x top_k / experts) tokens of
    /// each rank, the excess dropped, and the buffers are padded to that capacity (Megatron-Core's
    /// `--moe-expert-capacity-factor` with `--moe-pad-expert-input-to-capacity`), so all-to-alls
    /// and expert GEMMs are sized by tokens x top_k x c. Absent: dropless, every routed token is
    /// processed (Megatron-Core's default), and a skewed router makes its hot experts' ranks slower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_factor: Option<f64>,
    /// Shared experts every token goes through besides its routed ones (DeepSeek-style), each of
    /// width `ffn_hidden`, tensor-parallel like a dense MLP.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shared_experts: u64,
    /// Layer i is a mixture-of-experts layer when n divides i (Megatron-Core's `--moe-layer-freq`);
    /// the others keep the dense MLP. 1: every layer.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub every_n_layers: u32,
    /// The first k layers keep the dense MLP (of width `model.ffn_hidden`) whatever
    /// `every_n_layers` says (DeepSeek's `first_k_dense_replace`); 0 (the default): none.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub first_dense_layers: u32,
    /// Load imbalance: the router's preference for some experts, as the standard deviation of the
    /// logarithm of each expert's share of the tokens (drawn per layer from `seed`); 0 (the
    /// default): every expert gets the same share.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub imbalance: f64,
    /// Seed of the experts' shares under `imbalance` (a property of the router, so not the run's
    /// `--seed`, which draws the run's noise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seed: u64,
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl MoeSpec {
    /// Width of one expert's MLP (`model_ffn`: the dense layers' width, the default).
    pub fn ffn(&self, model_ffn: u64) -> u64 {
        self.ffn_hidden.unwrap_or(model_ffn)
    }
    /// Whether global layer `layer` is a mixture-of-experts layer: past the first dense layers,
    /// and n divides it (DeepSeek's rule in its Hugging Face model code, `layer_idx >=
    /// first_k_dense_replace and layer_idx % moe_layer_freq == 0`; with no dense layers first,
    /// Megatron-Core's integer `--moe-layer-freq`).
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        layer >= self.first_dense_layers && layer % self.every_n_layers.max(1) == 0
    }
    /// How many of `layers` layers are mixture-of-experts layers.
    pub fn moe_layers(&self, layers: u32) -> u32 {
        (0..layers).filter(|&l| self.is_moe_layer(l)).count() as u32
    }
}

/// Checks `model.moe`, `parallel.expert` and `parallel.expert_tensor` against each other and the
/// rest of the split.
pub fn check(w: &WorkloadSpec, doc: &Document) -> Result<()> {
    let (e, p) = (w.parallel.expert, &w.parallel);
    let et = p.expert_tensor_size();
    if e == 0 {
        return Err(doc.field_error("parallel.expert", "must be at least 1"));
    }
    if w.ep_comm_overlap && (w.model.moe.is_none() || e < 2) {
        return Err(doc.field_error(
            "ep_comm_overlap",
            "overlaps the expert-parallel all-to-alls: it needs `model.moe` and `parallel.expert` of 2 or more",
        ));
    }
    // Megatron-Core's own conditions (transformer_config.py): interleaving when pipelined, no full recompute
    let steady_pairs = w.schedule == super::Schedule::Interleaved
        || (w.schedule == super::Schedule::OneFOneB && w.parallel.pipeline == 1);
    if w.ep_comm_overlap && !steady_pairs {
        return Err(doc.field_error(
            "ep_comm_overlap",
            "runs each forward beside a backward of another microbatch, as Megatron-Core does with interleaving \
             (`schedule: interleaved`) or without a pipeline (`parallel.pipeline: 1`, `schedule: 1f1b`)",
        ));
    }
    if w.ep_comm_overlap && w.recompute == super::Recompute::Full {
        return Err(doc.field_error(
            "ep_comm_overlap",
            "cannot run with `recompute: full` (Megatron-Core refuses the combination): use `none` or `selective`",
        ));
    }
    if et != 1 && et != p.tensor {
        return Err(doc.field_error(
            "parallel.expert_tensor",
            format!(
                "must be 1 (whole experts, Megatron-Core's MoE parallel folding) or tensor ({}, each expert split as the dense layers)",
                p.tensor
            ),
        ));
    }
    let Some(moe) = &w.model.moe else {
        if e > 1 {
            return Err(doc.field_error(
                "parallel.expert",
                "divides the experts of a mixture-of-experts model among ranks: it needs `model.moe`",
            ));
        }
        if et != p.tensor {
            return Err(doc.field_error(
                "parallel.expert_tensor",
                "splits the routed experts of a mixture-of-experts model: it needs `model.moe`",
            ));
        }
        return Ok(());
    };
    if moe.experts == 0 || moe.experts > EXPERTS_MAX {
        return Err(doc.field_error("model.moe.experts", format!("must be between 1 and {EXPERTS_MAX}")));
    }
    if moe.top_k == 0 {
        return Err(doc.field_error(
            "model.moe.top_k",
            "must be at least 1: each token goes to top_k experts",
        ));
    }
    if moe.top_k > moe.experts {
        return Err(doc.field_error(
            "model.moe.top_k",
            format!(
                "a token cannot go to more experts than model.moe.experts ({})",
                moe.experts
            ),
        ));
    }
    let ffn = moe.ffn(w.model.ffn());
    // the routed experts are split over the expert-tensor ranks, the shared ones over the tensor ranks
    let split = if moe.shared_experts > 0 { p.tensor } else { et };
    if ffn == 0 || ffn > 1 << 24 || ffn % split as u64 != 0 {
        let what = if split == p.tensor {
            format!("a positive multiple of tensor ({})", p.tensor)
        } else {
            "positive".to_string()
        };
        return Err(doc.field_error(
            "model.moe.ffn_hidden",
            format!("must be {what}, at most {}", 1u64 << 24),
        ));
    }
    if let Some(c) = moe.capacity_factor {
        if !(c > 0.0 && c <= moe.experts as f64) {
            return Err(doc.field_error(
                "model.moe.capacity_factor",
                format!(
                    "must be above 0 (and at most model.moe.experts = {}: an expert takes at most every token)",
                    moe.experts
                ),
            ));
        }
    }
    if moe.shared_experts > 1024 {
        return Err(doc.field_error("model.moe.shared_experts", "must be at most 1024"));
    }
    if moe.every_n_layers == 0 {
        return Err(doc.field_error("model.moe.every_n_layers", "must be at least 1 (1: every layer)"));
    }
    if moe.moe_layers(w.model.layers) == 0 {
        return Err(doc.field_error(
            "model.moe.first_dense_layers",
            format!(
                "leaves no mixture-of-experts layer among the model's {} (layer i is one when i >= first_dense_layers \
                 and every_n_layers ({}) divides i)",
                w.model.layers, moe.every_n_layers
            ),
        ));
    }
    if !(0.0..=IMBALANCE_MAX).contains(&moe.imbalance) {
        return Err(doc.field_error(
            "model.moe.imbalance",
            format!("must be between 0 (balanced) and {IMBALANCE_MAX}"),
        ));
    }
    if moe.experts % e as u64 != 0 {
        return Err(doc.field_error(
            "parallel.expert",
            format!(
                "model.moe.experts ({}) is not divisible by expert ({e}): each expert-parallel rank holds whole experts",
                moe.experts
            ),
        ));
    }
    let fold = p.tensor / et;
    if fold > 1 && (fold * p.data * p.context) % e != 0 {
        let (what, product) = if p.context > 1 {
            (
                "tensor x data x context",
                format!("{} x {} x {}", p.tensor, p.data, p.context),
            )
        } else {
            ("tensor x data", format!("{} x {}", p.tensor, p.data))
        };
        return Err(doc.field_error(
            "parallel.expert",
            format!(
                "{what} ({product} = {}) is not divisible by expert ({e}): with expert_tensor 1 the expert-parallel groups are carved out of the {what} ranks, as in Megatron-Core's MoE parallel folding",
                fold * p.data * p.context
            ),
        ));
    }
    if fold == 1 && (p.data * p.context) % e != 0 {
        let (what, from) = if p.context > 1 {
            (
                format!("data x context ({} x {} = {})", p.data, p.context, p.data * p.context),
                "the data x context ranks, as in Megatron-Core",
            )
        } else {
            (format!("data ({})", p.data), "the data-parallel group")
        };
        return Err(doc.field_error(
            "parallel.expert",
            format!("{what} is not divisible by expert ({e}): the expert-parallel groups are carved out of {from}"),
        ));
    }
    if p.tensor > 1 && !p.sequence_parallel {
        return Err(doc.field_error(
            "parallel.sequence_parallel",
            "a mixture-of-experts model with tensor parallelism needs sequence parallelism (as Megatron-Core requires): each tensor rank routes its own sequence shard",
        ));
    }
    if w.data_parallel.zero_stage >= 3 {
        return Err(doc.field_error(
            "data_parallel.zero_stage",
            "ZeRO-3 (weights sharded) is not modelled for mixture-of-experts models: use 0, 1 or 2",
        ));
    }
    if w.data_parallel.overlap_param_gather {
        return Err(doc.field_error(
            "data_parallel.overlap_param_gather",
            "is not modelled for mixture-of-experts models yet: the weights are gathered after the optimizer step",
        ));
    }
    Ok(())
}
