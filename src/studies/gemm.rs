//! The compute model against published GEMM rates (`workloads/reference/gemm-a100.csv`): measured
//! shapes (compared within 10%) and best-of-sweep maxima (upper bounds). Only rows for the machine's
//! form factor are used: the A100 PCIe rows are a different card.

use crate::config::GpuSpec;
use crate::model::compute::ComputeModel;
use crate::ops::Kernel;

const PUBLISHED: &str = include_str!("../../workloads/reference/gemm-a100.csv");

/// One published GEMM rate and the simulated one.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmComparison {
    /// Source id.
    pub source: String,
    /// `shape` (a measurement of this shape) or `best-of-sweep` (an upper bound).
    pub kind: String,
    /// Output rows, columns, reduction dimension.
    pub mnk: (u64, u64, u64),
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

/// Every SXM row priced by the compute model of `gpu`.
pub fn compare(gpu: &GpuSpec) -> Vec<GemmComparison> {
    let model = ComputeModel::new(gpu);
    PUBLISHED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("source,"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f[0].ends_with("-pcie") {
                return None;
            }
            let (m, n, k) = (f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?);
            let kernel = Kernel::Gemm { batch: 1, m, n, k };
            Some(GemmComparison {
                source: f[0].to_string(),
                kind: f[1].to_string(),
                mnk: (m, n, k),
                published_tflops: f[6].parse().ok()?,
                simulated_tflops: kernel.flops() / model.kernel_seconds(&kernel) / 1e12,
            })
        })
        .collect()
}

/// Markdown table of the comparison.
pub fn markdown(rows: &[GemmComparison]) -> String {
    let mut s = String::from(
        "| source | kind | m x n x k | published TFLOP/s | simulated | error |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (m, n, k) = r.mnk;
        s += &format!(
            "| {} | {} | {m} x {n} x {k} | {:.1} | {:.1} | {:+.1}% |\n",
            r.source,
            r.kind,
            r.published_tflops,
            r.simulated_tflops,
            r.error_pct()
        );
    }
    s
}
