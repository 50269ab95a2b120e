//! The compute model against GEMM rates measured on the device: `workloads/reference/gemm-a100.csv`
//! (published: measured shapes, compared within 10%, and best-of-sweep maxima, upper bounds) for
//! A100s and this project's device measurements, BF16 and FP8, for H100s and H200s:
//! `gemm-h100-sustained.csv` (timed as training runs them, at the board's power limit: what the
//! H100 preset is fitted to), `gemm-h100.csv` and `gemm-h200.csv` (the best of short replays after
//! idling, at a higher clock). Only rows for the machine's form factor are used: the A100 PCIe rows
//! are a different card.

use crate::config::GpuSpec;
use crate::model::compute::ComputeModel;
use crate::ops::Kernel;

const A100: &str = include_str!("../../workloads/reference/gemm-a100.csv");
const H100_SUSTAINED: &str = include_str!("../../workloads/reference/gemm-h100-sustained.csv");
const H100: &str = include_str!("../../workloads/reference/gemm-h100.csv");
const H200: &str = include_str!("../../workloads/reference/gemm-h200.csv");

/// One published GEMM rate and the simulated one.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmComparison {
    /// Source id.
    pub source: String,
    /// `shape` (a measurement of this shape) or `best-of-sweep` (an upper bound).
    pub kind: String,
    /// Output rows, columns, reduction dimension.
    pub mnk: (u64, u64, u64),
    /// Operand type: `fp16`, `bf16` or `fp8`.
    pub dtype: String,
    /// Published TFLOP/s.
    pub published_tflops: f64,
    /// Simulated TFLOP/s.
    pub simulated_tflops: f64,
}

impl GemmComparison {
    /// (simulated - published) / published, percent: positive is faster than measured.
    pub fn error_pct(&self) -> f64 {
        (self.simulated_tflops / self.published_tflops - 1.0) * 100.0
    }
    /// Whether the leading dimensions allow cuBLAS's aligned kernels (multiples of 8 for 16-bit data).
    pub fn aligned(&self) -> bool {
        let (m, n, k) = self.mnk;
        m % 8 == 0 && n % 8 == 0 && k % 8 == 0
    }
}

/// The reference tables for a GPU model, none for a GPU without one: A100, H100 SXM and H200 parts.
fn reference(gpu: &GpuSpec) -> &'static [&'static str] {
    let model = gpu.model.to_ascii_uppercase();
    if model.starts_with("A100") {
        &[A100]
    } else if model.starts_with("H100") && !model.contains("PCIE") {
        &[H100_SUSTAINED, H100]
    } else if model.starts_with("H200") {
        &[H200]
    } else {
        &[]
    }
}

/// Every SXM row of the GPU's reference table priced by the compute model of `gpu`; empty when
/// no table exists for its model. An FP8 row is the GEMM alone: the measured products took FP8
/// operands, so the model's cast of the input (a separate streaming kernel) is left out.
pub fn compare(gpu: &GpuSpec) -> Vec<GemmComparison> {
    let model = ComputeModel::new(gpu);
    reference(gpu)
        .iter()
        .flat_map(|table| table.lines())
        .filter(|l| !l.starts_with('#') && !l.starts_with("source,"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f[0].ends_with("-pcie") {
                return None;
            }
            let (m, n, k) = (f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?);
            let seconds = if f[5] == "fp8" {
                let cast = Kernel::Stream { bytes: 3 * m * k };
                model.kernel_seconds(&Kernel::Gemm8 { batch: 1, m, n, k }) - model.kernel_seconds(&cast)
            } else {
                model.kernel_seconds(&Kernel::Gemm { batch: 1, m, n, k })
            };
            Some(GemmComparison {
                source: f[0].to_string(),
                kind: f[1].to_string(),
                mnk: (m, n, k),
                dtype: f[5].to_string(),
                published_tflops: f[6].parse().ok()?,
                simulated_tflops: 2.0 * (m * n * k) as f64 / seconds / 1e12,
            })
        })
        .collect()
}

/// The sources of `rows`, each once, in the order they first appear.
pub fn sources(rows: &[GemmComparison]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for r in rows {
        if !seen.contains(&r.source.as_str()) {
            seen.push(&r.source);
        }
    }
    seen
}

/// Mean and max absolute error (percent) over the aligned `shape` rows of one source and operand type.
pub fn shape_errors(rows: &[GemmComparison], source: &str, dtype: &str) -> (f64, f64, usize) {
    super::abs_error_summary(
        rows.iter()
            .filter(|r| r.source == source && r.kind == "shape" && r.aligned() && r.dtype == dtype)
            .map(|r| r.error_pct()),
    )
}

/// Markdown table of the comparison.
pub fn markdown(rows: &[GemmComparison]) -> String {
    let mut s = String::from(
        "| source | kind | m x n x k | type | measured TFLOP/s | simulated | error |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (m, n, k) = r.mnk;
        s += &format!(
            "| {} | {} | {m} x {n} x {k} | {} | {:.1} | {:.1} | {:+.1}% |\n",
            r.source,
            r.kind,
            r.dtype,
            r.published_tflops,
            r.simulated_tflops,
            r.error_pct()
        );
    }
    s
}
