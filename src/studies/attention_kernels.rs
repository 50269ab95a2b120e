//! The attention kernels against a published attention microbenchmark: the charts released with
//! FlashAttention-2 (`workloads/reference/attention-fa2-release.csv`, A100 80GB SXM4 and H100 80GB
//! SXM5, fp16, model width 2048, 16k tokens, forward + backward). Three of its methods are what
//! the simulator models:
//! - `pytorch`: the unfused attention core, priced kernel by kernel as the benchmark runs it
//!   ([`unfused_core`]): batched GEMMs that write or read the s x s scores, the causal mask added,
//!   softmax, and their backward. Its time is almost all streaming of the s x s tensors, so it
//!   checks the streaming rate training's score kernels reach (`gpu.memory_efficiency`), where
//!   STREAM's copy kernel says nothing about them;
//! - `flash1` and `flash2`: one fused kernel each way, at `gpu.flash1_attention_efficiency` and
//!   `gpu.attention_efficiency`.

use crate::config::GpuSpec;
use crate::model::compute::ComputeModel;
use crate::ops::{FusedAttention, Kernel};

const CHARTS: &str = include_str!("../../workloads/reference/attention-fa2-release.csv");

/// The benchmark's model width: heads x head dimension.
const WIDTH: u64 = 2048;

/// One published attention speed and the simulated one.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionComparison {
    /// Method: `pytorch`, `flash1` or `flash2`.
    pub method: String,
    /// With the causal mask (its skipped half not counted in the FLOPs).
    pub causal: bool,
    /// Head dimension.
    pub head_dim: u64,
    /// Sequence length.
    pub seq_len: u64,
    /// Sequences.
    pub batch: u64,
    /// Published TFLOP/s, forward + backward.
    pub published_tflops: f64,
    /// Simulated TFLOP/s on the same FLOP count.
    pub simulated_tflops: f64,
}

impl AttentionComparison {
    /// (simulated - published) / published, percent: positive is faster than measured.
    pub fn error_pct(&self) -> f64 {
        (self.simulated_tflops / self.published_tflops - 1.0) * 100.0
    }
    /// FLOPs the benchmark counts: 4 b s^2 h d forward (halved by the causal mask), 2.5 times
    /// that backward.
    pub fn counted_flops(&self) -> f64 {
        counted_forward_flops(self.batch, self.seq_len, self.head_dim, self.causal) * 3.5
    }
}

fn counted_forward_flops(batch: u64, seq_len: u64, head_dim: u64, causal: bool) -> f64 {
    let heads = WIDTH / head_dim;
    let full = 4.0 * (batch * seq_len * seq_len * heads * head_dim) as f64;
    if causal {
        full / 2.0
    } else {
        full
    }
}

/// The benchmark's unfused attention core (`attention_pytorch`, fp16), forward then backward, as
/// kernels: `baddbmm` writes the scaled scores (b h batches of s x s x d); when causal, the fp32
/// mask is cast to fp16 (s^2 elements, 4 bytes read and 2 written) and added (scores and mask
/// read, scores written); softmax reads and writes the scores; dropout at p = 0 runs no kernel;
/// the product with V reads them (s x d x s). Backward: the gradient of the probabilities
/// (s x s x d, written) and of V (s x d x s, reading the probabilities), softmax's backward (the
/// probabilities and their gradient read, the scores' gradient written), nothing for the add, and
/// the gradients of Q and K (s x d x s each, reading the scores' gradient).
pub fn unfused_core(batch: u64, seq_len: u64, head_dim: u64, causal: bool) -> Vec<Kernel> {
    let bh = batch * (WIDTH / head_dim);
    let (s, d) = (seq_len, head_dim);
    let scores = bh * s * s; // elements of one s x s tensor
    let scores_out = Kernel::Gemm {
        batch: bh,
        m: s,
        n: s,
        k: d,
    };
    let scores_in = Kernel::Gemm {
        batch: bh,
        m: s,
        n: d,
        k: s,
    };
    let mut kernels = vec![scores_out];
    if causal {
        kernels.push(Kernel::Stream { bytes: 6 * s * s });
        kernels.push(Kernel::Stream {
            bytes: 2 * (2 * scores + s * s),
        });
    }
    kernels.push(Kernel::Stream { bytes: 4 * scores }); // softmax
    kernels.push(scores_in); // probabilities x V
    kernels.push(scores_out); // d probabilities
    kernels.push(scores_in); // d V
    kernels.push(Kernel::Stream { bytes: 6 * scores }); // softmax backward
    kernels.push(scores_in); // d Q
    kernels.push(scores_in); // d K
    kernels
}

/// A fused kernel's forward and backward: the counted FLOPs (forward, and 2.5 times them
/// backward), reading Q, K, V and writing O forward, reading Q, K, V, O, dO and writing dQ, dK, dV
/// backward (fp16).
fn fused(batch: u64, seq_len: u64, head_dim: u64, causal: bool, library: FusedAttention) -> Vec<Kernel> {
    let forward = counted_forward_flops(batch, seq_len, head_dim, causal) as u64;
    let tensor = 2 * batch * seq_len * WIDTH;
    vec![
        Kernel::Attention {
            flops: forward,
            bytes: 4 * tensor,
            library,
        },
        Kernel::Attention {
            flops: forward * 5 / 2,
            bytes: 8 * tensor,
            library,
        },
    ]
}

/// The chart's GPU for a GPU model: the A100 80GB SXM and the H100 SXM presets have rows.
fn chart_gpu(gpu: &GpuSpec) -> Option<&'static str> {
    let model = gpu.model.to_ascii_uppercase();
    if model.starts_with("A100-SXM4-80GB") {
        Some("A100-SXM4-80GB")
    } else if model.starts_with("H100-SXM5") {
        Some("H100-SXM5-80GB")
    } else {
        None
    }
}

/// Every modelled row of the charts for the GPU, priced by the compute model of `gpu`; empty for a
/// GPU without rows. A `flash1` row is left out when the GPU has no FlashAttention 1 rate.
pub fn compare(gpu: &GpuSpec) -> Vec<AttentionComparison> {
    let Some(name) = chart_gpu(gpu) else {
        return Vec::new();
    };
    let model = ComputeModel::new(gpu);
    CHARTS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("gpu,"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 8 || f[0] != name {
                return None;
            }
            let (causal, head_dim, seq_len, batch) = (
                f[2] == "true",
                f[3].parse().ok()?,
                f[4].parse().ok()?,
                f[5].parse().ok()?,
            );
            let kernels = match f[1] {
                "pytorch" => unfused_core(batch, seq_len, head_dim, causal),
                "flash2" => fused(batch, seq_len, head_dim, causal, FusedAttention::Flash2),
                "flash1" if gpu.flash1_attention_efficiency.is_some() => {
                    fused(batch, seq_len, head_dim, causal, FusedAttention::Flash1)
                }
                _ => return None,
            };
            let mut row = AttentionComparison {
                method: f[1].to_string(),
                causal,
                head_dim,
                seq_len,
                batch,
                published_tflops: f[7].parse().ok()?,
                simulated_tflops: 0.0,
            };
            let seconds: f64 = kernels.iter().map(|k| model.kernel_seconds(k)).sum();
            row.simulated_tflops = row.counted_flops() / seconds / 1e12;
            Some(row)
        })
        .collect()
}

/// Mean and max absolute error (percent) and the count of one method's rows, optionally only those
/// with the causal mask and a head dimension of 128 from sequence 4096 up (where the presets'
/// fused-kernel rates are read).
pub fn errors(rows: &[AttentionComparison], method: &str, training_shapes_only: bool) -> (f64, f64, usize) {
    super::abs_error_summary(
        rows.iter()
            .filter(|r| r.method == method)
            .filter(|r| !training_shapes_only || (r.causal && r.head_dim == 128 && r.seq_len >= 4096))
            .map(|r| r.error_pct()),
    )
}

/// Markdown table of the comparison.
pub fn markdown(rows: &[AttentionComparison]) -> String {
    let mut s = String::from(
        "| method | mask | head dim | seq | batch | published TFLOP/s | simulated | error |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:+.1}% |\n",
            r.method,
            if r.causal { "causal" } else { "none" },
            r.head_dim,
            r.seq_len,
            r.batch,
            r.published_tflops,
            r.simulated_tflops,
            r.error_pct()
        );
    }
    s
}
