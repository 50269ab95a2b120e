//! Memory per GPU: model states (weights, gradients, optimizer state by ZeRO stage) and activations
//! (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
//! Table 2), with the microbatches in flight taken from the pipeline schedule itself.
//!
//! Per-layer activation bytes for microbatch b, 16-bit activations:
//! - tensor parallel t (t = 1: no parallelism): s b h (10 + 24/t + 5 a s/(h t))
//! - tensor + sequence parallel: s b h (34 + 5 a s/h) / t
//! - selective recompute (attention core not stored): s b h (10 + 24/t), with sequence parallel 34 s b h / t
//! - full recompute: only the layer input, 2 s b h (/ t with sequence parallel), plus one layer's
//!   full activations while it is recomputed.
//! - context parallelism of size c (fused attention only): s / c in place of s, every term / c;
//!   a mixture-of-experts layer's extra (router probabilities, dispatched rows, expert
//!   intermediates) is sized by a rank's s / c tokens too.
//! - multi-head latent attention: its own query, key, value and output widths and its latents
//!   ([`crate::workload::mla::activation_extra_bytes`]).
//!
//! Model states with mixed-precision Adam (Rajbhandari et al., ZeRO): 2 bytes of weights, G bytes
//! of gradients (2, or 4 with fp32 gradients) and 12 bytes of fp32 master weights, momentum and
//! variance per parameter; ZeRO stage 1 shards the 12 over the data-parallel degree N, stage 2 also
//! the gradients, stage 3 also the weights.

use super::expert_layout::ExpertLayout;
use super::layout::Layout;
use super::mla::activation_extra_bytes as mla_activation_extra_bytes;
use super::moe::{activation_extra_bytes, MoeBlock};
use super::params::layer_params_split;
use super::schedule::peak_in_flight;
use super::transformer::{embedding_params_per_rank, layer_params_per_rank, LayerShape};
use crate::config::{Recompute, WorkloadSpec};
use serde::Serialize;

/// Bytes of one layer's stored activations for one microbatch on one tensor rank.
pub fn activation_bytes_per_layer(
    s: u64,
    b: u64,
    h: u64,
    a: u64,
    t: u64,
    sequence_parallel: bool,
    recompute: Recompute,
) -> f64 {
    let (s, b, h, a, t) = (s as f64, b as f64, h as f64, a as f64, t as f64);
    let sbh = s * b * h;
    match (recompute, sequence_parallel) {
        (Recompute::None, false) => sbh * (10.0 + 24.0 / t + 5.0 * a * s / (h * t)),
        (Recompute::None, true) => sbh * (34.0 + 5.0 * a * s / h) / t,
        (Recompute::Selective, false) => sbh * (10.0 + 24.0 / t),
        (Recompute::Selective, true) => 34.0 * sbh / t,
        (Recompute::Full, false) => 2.0 * sbh,
        (Recompute::Full, true) => 2.0 * sbh / t,
    }
}

/// Bytes of model states per GPU for `params` parameters held by this rank (before ZeRO
/// sharding), with `grad_bytes` per gradient, ZeRO `stage` over `n` data-parallel ranks.
pub fn model_state_bytes(params: f64, grad_bytes: f64, stage: u8, n: f64) -> (f64, f64, f64) {
    let (weights, grads, optimizer) = (2.0 * params, grad_bytes * params, 12.0 * params);
    match stage {
        0 => (weights, grads, optimizer),
        1 => (weights, grads, optimizer / n),
        2 => (weights, grads / n, optimizer / n),
        _ => (weights / n, grads / n, optimizer / n),
    }
}

/// Memory of one pipeline stage's GPUs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageMemory {
    /// Stage index.
    pub stage: u32,
    /// Parameters held by one GPU of the stage (before ZeRO sharding).
    pub parameters: f64,
    /// 16-bit weights, bytes.
    pub weights_bytes: f64,
    /// Gradients, bytes.
    pub gradients_bytes: f64,
    /// fp32 master weights, momentum and variance, bytes.
    pub optimizer_bytes: f64,
    /// Peak stored activations (microbatches in flight), bytes.
    pub activation_bytes: f64,
    /// Most microbatch passes in flight (a pass = one model chunk of one microbatch).
    pub passes_in_flight: u32,
    /// Workspace and fragmentation allowance, bytes.
    pub reserve_bytes: f64,
    /// Sum, bytes.
    pub total_bytes: f64,
}

/// Memory report for a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MemoryReport {
    /// Highest total over the stages, bytes per GPU.
    pub peak_bytes_per_gpu: f64,
    /// GPU memory, bytes.
    pub capacity_bytes: f64,
    /// Whether the peak fits in the capacity.
    pub fits: bool,
    /// Per stage.
    pub per_stage: Vec<StageMemory>,
}

/// Most passes in flight on `stage`: forwards whose backward has not run yet, per the schedule.
pub fn passes_in_flight(w: &WorkloadSpec, stage: u32) -> u32 {
    let lay = Layout::of(w);
    let extra = w.ep_comm_overlap as u32;
    peak_in_flight(w.schedule, stage, lay.p, w.microbatches() as u32, w.chunks(), extra)
}

/// Memory per GPU of every stage and the verdict against `capacity` bytes, with a reserve of
/// `reserve_fixed` bytes plus `reserve_fraction` of the rest.
pub fn memory(w: &WorkloadSpec, capacity: f64, reserve_fixed: f64, reserve_fraction: f64) -> MemoryReport {
    let lay = Layout::of(w);
    let m = &w.model;
    let (t, v) = (lay.t as u64, w.chunks());
    let sp = w.parallel.sequence_parallel && t > 1;
    // context parallelism: each rank holds s / c of every sequence (fused attention, no s x s term)
    let s = m.seq_len / w.parallel.context as u64;
    // FlashAttention stores no s x s matrices: what selective recompute keeps, without recomputing
    let stored = match (w.attention, w.recompute) {
        (a, Recompute::None) if a.fused().is_some() => Recompute::Selective,
        (_, r) => r,
    };
    // a layer's activations as Korthikanti counts them, with multi-head latent attention's own widths
    let shape = LayerShape {
        s,
        ..LayerShape::new(m, w.batch.micro, lay.t, w.parallel.sequence_parallel)
    };
    let fp8 = w.precision == crate::config::Precision::Fp8;
    let layer = |r: Recompute| {
        let extra = match m.mla {
            Some(mla) => mla_activation_extra_bytes(&shape, &mla, r),
            None => attention_width_extra_bytes(&shape, r),
        };
        let saved = if fp8 { fp8_attention_saving(&shape, r) } else { 0.0 };
        activation_bytes_per_layer(s, w.batch.micro, m.hidden, m.heads, t, sp, r) + extra - saved
            + unfused_softmax_extra_bytes(&shape, r)
    };
    let mut per_layer = layer(stored);
    // a dense layer's MLP beyond Korthikanti's two 4h-wide intermediates (mixture-of-experts
    // layers count their own, moe_stage)
    let dense_mlp = |r: Recompute| {
        let saved = if fp8 { fp8_mlp_saving(&shape, r) } else { 0.0 };
        mlp_width_extra_bytes(&shape, r) - saved
    };
    let mut per_dense_mlp = dense_mlp(stored);
    // what a layer keeps without recompute: FlashAttention keeps what selective recompute keeps
    let kept = match w.attention {
        a if a.fused().is_some() => Recompute::Selective,
        _ => Recompute::None,
    };
    if w.recompute == Recompute::Full && w.recompute_interval > 1 {
        // one layer in n is recomputed (keeps its input only); the others keep what no recompute keeps
        let n = w.recompute_interval as f64;
        per_layer = (per_layer + (n - 1.0) * layer(kept)) / n;
        per_dense_mlp = (per_dense_mlp + (n - 1.0) * dense_mlp(kept)) / n;
    }
    // with full recompute, one layer's full activations exist while it is recomputed
    let working = match w.recompute {
        Recompute::Full => layer(kept) + dense_mlp(kept),
        _ => 0.0,
    };
    let per_stage = (0..lay.p)
        .map(|stage| {
            // layers of the stage's chunks (each chunk holds as many with an even split), and on the
            // last stage the multi-token-prediction modules' (their projections too)
            let mtp = if stage == lay.p - 1 { m.mtp_layers } else { 0 };
            let stage_layers: u32 = (0..v).map(|c| w.chunk_layers(c * lay.p + stage).1).sum::<u32>() + mtp;
            let glue = mtp as f64 * (super::params::mtp_glue_params(m) / lay.t as u64) as f64;
            let mut params = stage_layers as f64 * layer_params_per_rank(m, lay.t) as f64 + glue;
            let (mut experts, mut moe_extra, mut dense_layers) = (0.0, 0.0, stage_layers);
            if let Some((dense, routed, extra, moe_layers)) = moe_stage(w, stage) {
                (params, experts, moe_extra) = (dense as f64 + glue, routed as f64, extra);
                dense_layers -= moe_layers;
            }
            let last = lay.p * v - 1;
            for c in 0..v {
                let vs = c * lay.p + stage;
                params += (super::generate::embedding_tables(m, vs, last) * embedding_params_per_rank(m, lay.t)) as f64;
            }
            let grad_bytes = w.data_parallel.grad_dtype.bytes() as f64;
            let (mut weights, mut grads, mut optimizer) =
                model_state_bytes(params, grad_bytes, w.data_parallel.zero_stage, lay.d as f64);
            if experts > 0.0 {
                // the routed experts' states are sharded over their expert-data-parallel group,
                // d c / e ranks (lay.d counts data x context positions), t d c / e with whole experts
                let n = ExpertLayout::of(w).expert_data_size() as f64;
                let (we, ge, oe) = model_state_bytes(experts, grad_bytes, w.data_parallel.zero_stage, n);
                (weights, grads, optimizer) = (weights + we, grads + ge, optimizer + oe);
                params += experts;
            }
            let passes = passes_in_flight(w, stage);
            let per_pass = (stage_layers / v) as f64 * per_layer + dense_layers as f64 / v as f64 * per_dense_mlp;
            let mut activations = passes as f64 * (per_pass + moe_extra) + working;
            if stage == lay.p - 1 && m.vocab > 0 {
                // logits of one microbatch: 16-bit and an fp32 copy for the cross-entropy (once more
                // per multi-token-prediction module)
                activations += (1 + m.mtp_layers) as f64 * 6.0 * (s * w.batch.micro * m.vocab / t) as f64;
            }
            let states = weights + grads + optimizer + activations;
            let reserve = reserve_fixed + reserve_fraction * states;
            StageMemory {
                stage,
                parameters: params,
                weights_bytes: weights,
                gradients_bytes: grads,
                optimizer_bytes: optimizer,
                activation_bytes: activations,
                passes_in_flight: passes,
                reserve_bytes: reserve,
                total_bytes: states + reserve,
            }
        })
        .collect::<Vec<_>>();
    let peak = per_stage.iter().map(|s| s.total_bytes).fold(0.0, f64::max);
    MemoryReport {
        peak_bytes_per_gpu: peak,
        capacity_bytes: capacity,
        fits: peak <= capacity,
        per_stage,
    }
}

/// A stage's mixture-of-experts figures per rank: (dense parameters with the embeddings' left out,
/// routed experts' parameters, extra activation bytes of one pass over its layers, its
/// mixture-of-experts layers over all its chunks); none for a dense model.
fn moe_stage(w: &WorkloadSpec, stage: u32) -> Option<(u64, u64, f64, u32)> {
    w.model.moe.as_ref()?;
    let lay = Layout::of(w);
    // a context rank's s / c tokens: every term of the extra is linear in them (dropless)
    let shape = super::generate::rank_shape(w);
    let (mut dense, mut experts, mut extra, mut moe_layers) = (0, 0, 0.0, 0);
    let last = lay.p * w.chunks() - 1;
    for c in 0..w.chunks() {
        let (first, n) = w.chunk_layers(c * lay.p + stage);
        // the last chunk also runs the multi-token-prediction modules' layers
        let mtp = if c * lay.p + stage == last {
            w.model.mtp_layers
        } else {
            0
        };
        let (layers, modules) = (w.model.layers, w.model.layers + mtp);
        for l in (first..first + n).chain(layers..modules) {
            let (e, et) = (w.parallel.expert, w.parallel.expert_tensor_size());
            let (d, routed) = layer_params_split(&w.model, l, lay.t, e, et);
            (dense, experts) = (dense + d, experts + routed);
            if let Some(m) = w.model.moe_at(l) {
                extra += activation_extra_bytes(&MoeBlock::new(&shape, m, l, e, et), w.recompute);
                moe_layers += 1;
            }
        }
    }
    Some((dense, experts, extra / w.chunks() as f64, moe_layers))
}

/// Bytes one layer without multi-head latent attention stores for one microbatch on one rank
/// beyond Korthikanti's count, from its attention widths. Korthikanti's layer stores Q, K, V and the
/// output projection's input as 2 s b h bytes each, split over t (8 s b h / t); the layer stores
/// them at their widths, queries a d, keys and values kv each, attention output a d (d the head
/// dimension): 2 s b (2 a d + 2 kv) / t, and the query and key norms' inputs, 2 s b (a d + kv) / t,
/// when it has them. Zero for GPT (a d = kv = h, no norms); full recompute keeps only the layer
/// input: nothing more.
fn attention_width_extra_bytes(shape: &LayerShape, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let (tokens, t) = ((shape.b * shape.s) as f64, shape.t as f64);
    let (q, kv) = ((shape.a * shape.head_dim) as f64, shape.kv as f64);
    let norms = if shape.qk_norm { 2.0 * (q + kv) } else { 0.0 };
    tokens * (2.0 * (2.0 * q + 2.0 * kv) + norms - 8.0 * shape.h as f64) / t
}

/// Bytes a layer stores beyond Korthikanti's count when Megatron-LM's fused softmax does not take
/// its scores ([`LayerShape::fused_softmax`]): the fallback's softmax runs in fp32 and autograd
/// keeps its fp32 output, 4 bytes per score where the count has 2. Only when the s x s scores
/// are stored (no recompute; the fused attention kernels, which store none, never get here).
fn unfused_softmax_extra_bytes(shape: &LayerShape, recompute: Recompute) -> f64 {
    if recompute != Recompute::None || shape.fused_softmax() {
        return 0.0;
    }
    2.0 * shape.scores() as f64
}

/// Bytes an FP8 layer's attention block stores less than Korthikanti's count for one microbatch on
/// one rank: Transformer Engine keeps the FP8 copy (1 byte per element) of each linear layer's input
/// for the weight gradient where the count has 16 bits, here the QKV (or MLA down-projection)
/// input, h per token, and the output projection's, a d_v, split over t. Nothing under full
/// recompute (which keeps the layer input alone).
fn fp8_attention_saving(shape: &LayerShape, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let (tokens, t) = ((shape.b * shape.s) as f64, shape.t as f64);
    tokens * (shape.h + shape.out_width()) as f64 / t
}

/// The same for a dense MLP's two linear layers: the first's input, h, and the second's, ffn.
fn fp8_mlp_saving(shape: &LayerShape, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let (tokens, t) = ((shape.b * shape.s) as f64, shape.t as f64);
    tokens * (shape.h + shape.ffn) as f64 / t
}

/// Bytes one dense layer's MLP stores for one microbatch on one rank beyond Korthikanti's count,
/// which keeps its two 4h-wide intermediates (16 s b h / t): the first GEMM's output (ffn wide, or
/// gate and up, 2 ffn, for SwiGLU) and the activation's output (ffn), 2 bytes each, split over t.
/// Zero for GPT's GeLU MLP of 4 h; full recompute keeps only the layer input: nothing more.
fn mlp_width_extra_bytes(shape: &LayerShape, recompute: Recompute) -> f64 {
    if recompute == Recompute::Full {
        return 0.0;
    }
    let (tokens, t) = ((shape.b * shape.s) as f64, shape.t as f64);
    let width = (shape.up_width() + shape.ffn) as f64;
    tokens * (2.0 * width - 16.0 * shape.h as f64) / t
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: f64 = 1e9;

    /// ZeRO paper, Figure 1: 7.5B parameters, data-parallel degree 64, K = 12.
    /// stage 0: (2 + 2 + 12) x 7.5 = 120 GB; stage 1: 2 x 7.5 + 2 x 7.5 + 12 x 7.5 / 64 = 31.4 GB;
    /// stage 2: 2 x 7.5 + 14 x 7.5 / 64 = 16.6 GB; stage 3: 16 x 7.5 / 64 = 1.875 GB.
    #[test]
    fn zero_paper_example() {
        let total = |stage| {
            let (w, g, o) = model_state_bytes(7.5e9, 2.0, stage, 64.0);
            (w + g + o) / GB
        };
        assert!((total(0) - 120.0).abs() < 1e-9);
        assert!((total(1) - 31.40625).abs() < 1e-9);
        assert!((total(2) - 16.640625).abs() < 1e-9);
        assert!((total(3) - 1.875).abs() < 1e-9);
    }

    /// GPT 5.9B (32 heads, s 2048) at t 16: with b = 1 each rank holds 2 score matrices, which
    /// Megatron's fused softmax refuses (not a multiple of 4): the fp32 softmax output is kept,
    /// 2 bytes per score more than the count's 2: 2 x (1 x 2 x 2048^2) = 16 MiB; b = 2 (4 matrices)
    /// takes the fused kernel; recomputation stores no scores.
    #[test]
    fn the_unfused_softmax_keeps_fp32_probabilities() {
        let m: crate::config::ModelSpec =
            serde_yaml::from_str("{ layers: 32, hidden: 3840, heads: 32, seq_len: 2048, vocab: 51200 }").unwrap();
        let (one, two) = (LayerShape::new(&m, 1, 16, false), LayerShape::new(&m, 2, 16, false));
        assert_eq!(
            unfused_softmax_extra_bytes(&one, Recompute::None),
            16.0 * 1024.0 * 1024.0
        );
        assert_eq!(unfused_softmax_extra_bytes(&two, Recompute::None), 0.0);
        assert_eq!(unfused_softmax_extra_bytes(&one, Recompute::Selective), 0.0);
    }

    /// Korthikanti's count re-derived for Llama and Qwen3 widths (b 1, s 8192, t 2: 8192 tokens).
    #[test]
    fn attention_and_mlp_widths_move_korthikantis_count() {
        let shape = |yaml: &str| {
            let m: crate::config::ModelSpec = serde_yaml::from_str(yaml).unwrap();
            LayerShape::new(&m, 1, 2, true)
        };
        let llama8 = shape(
            "{ layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn_hidden: 14336, mlp: swiglu, seq_len: 8192, vocab: 0 }",
        );
        // grouped queries: Q and the output 4096 wide, K and V 1024 each where Korthikanti counts
        // 4096 for all four: 2 (2 x 4096 + 2 x 1024) - 8 x 4096 = -12288 bytes per token, over t = 2
        assert_eq!(
            attention_width_extra_bytes(&llama8, Recompute::None),
            -12288.0 * 8192.0 / 2.0
        );
        // SwiGLU of 14336: gate and up (28672) and the product (14336) at 2 bytes, 86016, against
        // Korthikanti's 16 h = 65536: 20480 bytes per token more, over t = 2
        assert_eq!(
            mlp_width_extra_bytes(&llama8, Recompute::Selective),
            20480.0 * 8192.0 / 2.0
        );
        // FP8: the four linear layers' inputs kept at 1 byte instead of 2: QKV's and the output
        // projection's, 4096 + 4096, and the MLP's, 4096 + 14336, per token over t = 2
        assert_eq!(fp8_attention_saving(&llama8, Recompute::None), 8192.0 * 8192.0 / 2.0);
        assert_eq!(fp8_mlp_saving(&llama8, Recompute::Selective), 18432.0 * 8192.0 / 2.0);
        assert_eq!(fp8_mlp_saving(&llama8, Recompute::Full), 0.0);
        // full recompute keeps the layer input only
        assert_eq!(attention_width_extra_bytes(&llama8, Recompute::Full), 0.0);
        assert_eq!(mlp_width_extra_bytes(&llama8, Recompute::Full), 0.0);
        // Qwen3 235B's attention: 64 heads of 128 (queries 8192 wide, h 4096), 4 kv heads (512),
        // query and key norms keeping their inputs: 2 (2 x 8192 + 2 x 512) + 2 (8192 + 512) -
        // 8 x 4096 = 19456 bytes per token
        let qwen = shape(
            "{ layers: 1, hidden: 4096, heads: 64, kv_heads: 4, head_dim: 128, qk_norm: true, seq_len: 8192, vocab: 0 }",
        );
        assert_eq!(
            attention_width_extra_bytes(&qwen, Recompute::None),
            19456.0 * 8192.0 / 2.0
        );
        // GPT: nothing moves
        let gpt = shape("{ layers: 1, hidden: 3840, heads: 32, seq_len: 8192, vocab: 0 }");
        assert_eq!(attention_width_extra_bytes(&gpt, Recompute::None), 0.0);
        assert_eq!(mlp_width_extra_bytes(&gpt, Recompute::None), 0.0);
    }

    /// Korthikanti et al. Table 2 for GPT-3 175B (s 2048, h 12288, a 96), b = 1, t = 8:
    /// 5 a s / h = 5 x 96 x 2048 / 12288 = 80, s b h = 25 165 824.
    #[test]
    fn korthikanti_activation_formulas() {
        let sbh = 2048.0 * 12288.0;
        let act = |t, sp, rc| activation_bytes_per_layer(2048, 1, 12288, 96, t, sp, rc);
        // no parallelism (t = 1): s b h (34 + 80) = 114 s b h
        assert_eq!(act(1, false, Recompute::None), 114.0 * sbh);
        // tensor parallel: s b h (10 + 24/8 + 80/8) = 23 s b h
        assert_eq!(act(8, false, Recompute::None), 23.0 * sbh);
        // tensor + sequence parallel: s b h (34 + 80)/8 = 14.25 s b h
        assert_eq!(act(8, true, Recompute::None), 14.25 * sbh);
        // tensor parallel + selective recompute: s b h (10 + 3) = 13 s b h
        assert_eq!(act(8, false, Recompute::Selective), 13.0 * sbh);
        // tensor + sequence parallel + selective: 34/8 = 4.25 s b h
        assert_eq!(act(8, true, Recompute::Selective), 4.25 * sbh);
        // full recompute: the layer input, 2 s b h
        assert_eq!(act(8, false, Recompute::Full), 2.0 * sbh);
    }
}
