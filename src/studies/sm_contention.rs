//! The model of SMs held by communication against a measurement on one H200
//! (`workloads/reference/comm-contention-h200.csv`, `scripts/device/comm-contention.py`): k thread
//! blocks that hold k SMs, either moving nothing or streaming HBM, beside back-to-back GEMMs and a
//! streaming kernel. The model runs a kernel on the SMs the blocks leave
//! ([`ComputeModel::kernel_seconds_on`]); the measurement says how much slower it ran.

use crate::config::GpuSpec;
use crate::model::compute::ComputeModel;
use crate::ops::Kernel;

const H200: &str = include_str!("../../workloads/reference/comm-contention-h200.csv");

/// One measured case beside SM-holding blocks, and the model's slowdown for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentionComparison {
    /// `gemm` (m x n x k) or `add` (two tensors of m elements).
    pub kernel: String,
    /// Dimensions as the table gives them.
    pub mnk: (u64, u64, u64),
    /// Operand type: `bf16` or `fp8`.
    pub dtype: String,
    /// What the blocks do: `sleep` (hold SMs, move nothing) or `copy` (hold SMs and stream HBM).
    pub holder: String,
    /// SMs held (one block each).
    pub sms_held: u32,
    /// Measured slowdown against the kernel alone: time beside / time alone - 1.
    pub measured: f64,
    /// The model's slowdown: time on the SMs left / time on all - 1.
    pub modelled: f64,
}

impl ContentionComparison {
    /// The kernel the model prices for this row.
    fn kernel_of(kernel: &str, dtype: &str, (m, n, k): (u64, u64, u64)) -> Kernel {
        match (kernel, dtype) {
            ("gemm", "fp8") => Kernel::Gemm8 { batch: 1, m, n, k },
            ("gemm", _) => Kernel::Gemm { batch: 1, m, n, k },
            // a + b over bf16 tensors of m elements: read two, write one
            _ => Kernel::Stream { bytes: 3 * 2 * m },
        }
    }
}

/// Every measured case with 1 to `max_held` SMs held (no carveout; the rows the holder covered to
/// the end), priced by the compute model of `gpu`.
pub fn compare(gpu: &GpuSpec, max_held: u32) -> Vec<ContentionComparison> {
    let model = ComputeModel::new(gpu);
    let rows: Vec<Vec<&str>> = H200
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("kernel,"))
        .map(|l| l.split(',').collect())
        .collect();
    let alone = |f: &[&str]| -> Option<f64> {
        let same = |r: &&Vec<&str>| r[..5] == f[..5] && r[5] == "none" && r[7] == "0";
        rows.iter().find(same)?[8].parse().ok()
    };
    rows.iter()
        .filter(|f| f[0] != "idle" && f[5] != "none" && f[7] == "0")
        .filter_map(|f| {
            let held: u32 = f[6].parse().ok()?;
            let ms: f64 = f[8].parse().ok()?;
            if held > max_held || ms < 0.0 {
                return None;
            }
            let mnk = (f[1].parse().ok()?, f[2].parse().ok()?, f[3].parse().ok()?);
            let kernel = ContentionComparison::kernel_of(f[0], f[4], mnk);
            let free = gpu.sms.checked_sub(held)?;
            Some(ContentionComparison {
                kernel: f[0].to_string(),
                mnk,
                dtype: f[4].to_string(),
                holder: f[5].to_string(),
                sms_held: held,
                measured: ms / alone(f)? - 1.0,
                modelled: model.kernel_seconds_on(&kernel, free) / model.kernel_seconds(&kernel) - 1.0,
            })
        })
        .collect()
}

/// Markdown table of the comparison.
pub fn markdown(rows: &[ContentionComparison]) -> String {
    let mut s = String::from(
        "| kernel | m x n x k | type | blocks | SMs held | measured slowdown | modelled |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (m, n, k) = r.mnk;
        let shape = if r.kernel == "gemm" {
            format!("{m} x {n} x {k}")
        } else {
            format!("{m} elements")
        };
        s += &format!(
            "| {} | {shape} | {} | {} | {} | {:+.1}% | {:+.1}% |\n",
            r.kernel,
            r.dtype,
            r.holder,
            r.sms_held,
            r.measured * 100.0,
            r.modelled * 100.0
        );
    }
    s
}
