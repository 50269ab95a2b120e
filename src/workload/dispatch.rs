//! What the host dispatches: the framework operations behind each generated compute piece.
//!
//! Every kernel is launched by its rank's host thread, which first runs the framework code that
//! asks for it; views, splits, allocations and RNG-state swaps cost host time without launching
//! anything. When the kernels of a step are shorter than the host time that dispatches them the
//! GPU waits (the simulation's host model, [`crate::sim`]). The counts are read from the code that
//! ran (Megatron-LM v2.5, 2021) per piece and pass; pieces not listed count one operation per kernel.

use crate::workload::graph::Phase;

/// Framework operations the host dispatches for a compute piece named `name` of `kernels` kernels
/// in pass `phase`.
pub fn host_ops(name: &str, phase: Phase, kernels: usize) -> u32 {
    let forward = matches!(phase, Phase::Forward | Phase::Recompute);
    let counted = match (name, forward) {
        ("attention", true) => Some(ATTENTION_FORWARD),
        ("mlp", true) => Some(MLP_FORWARD),
        ("attention", false) => Some(ATTENTION_BACKWARD),
        ("attention (unfused softmax)", true) => Some(ATTENTION_FORWARD + UNFUSED_SOFTMAX),
        ("attention (unfused softmax)", false) => Some(ATTENTION_BACKWARD + UNFUSED_SOFTMAX),
        ("mlp", false) => Some(MLP_BACKWARD),
        ("layer", true) => Some(ATTENTION_FORWARD + MLP_FORWARD),
        ("layer", false) => Some(ATTENTION_BACKWARD + MLP_BACKWARD),
        _ => None,
    };
    counted.unwrap_or(kernels as u32)
}

/// Self-attention block forward, from the residual bias-dropout-add and layer norm to the
/// row-parallel output projection (its all-reduce is a collective of its own): Megatron-LM v2.5
/// (e269e20) `transformer.py` ParallelTransformerLayer/ParallelAttention, `mpu/layers.py`,
/// `fused_layer_norm.py`, `fused_softmax.py`, `mpu/random.py`: 38 torch calls (layer norm with its
/// 3 `.contiguous()`, the copy-to-region identity, QKV `F.linear`, 8 views/transposes/splits,
/// `torch.empty`, `baddbmm`, the softmax's scale tensor and kernel, 4 RNG-state get/set of the
/// tracker's fork, dropout, `bmm`, permute, `.contiguous()`, the dense `F.linear`, the bias
/// `expand_as` and the fused bias-dropout-add) and 7 `autograd.Function.apply` and `enable_grad`
/// wrappers.
pub const ATTENTION_FORWARD: u32 = 45;
/// Operations the attention block adds forward, and autograd nodes backward, when Megatron-LM's
/// fused softmax does not take the scores (`fused_softmax.py`): `.float()`, the scale's `mul`,
/// `masked_fill_`, `Softmax` and `.half()` in place of the fused kernel's one apply.
pub const UNFUSED_SOFTMAX: u32 = 4;
/// MLP block forward: layer norm (4 calls), copy-to-region, `F.linear`, fused bias-GeLU,
/// `F.linear`, bias `expand_as`, fused bias-dropout-add, and 4 wrappers.
pub const MLP_FORWARD: u32 = 14;
/// Self-attention block backward: autograd nodes the engine runs (about 61 per layer with the 12
/// `AccumulateGrad`; the split between blocks follows their parameters and ops), less the
/// all-reduce's.
pub const ATTENTION_BACKWARD: u32 = 40;
/// MLP block backward: 2 linears x 4 nodes, GeLU, expand, bias-dropout-add, layer norm, copy, and
/// 6 `AccumulateGrad`, less the all-reduce's.
pub const MLP_BACKWARD: u32 = 19;
