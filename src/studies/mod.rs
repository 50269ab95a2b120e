//! What the commands compute, as library calls: one run end to end, a collective sweep, a sweep
//! of configurations, the Megatron-LM validation, the capacity planner, sharded sweeps and plans
//! (and their merge), the training-run Monte Carlo and the benchmark cases. Each strings config →
//! workload → sim → report together; none prints (progress bars aside) or parses command lines.

pub mod attention_kernels;
pub mod bench;
pub mod cluster;
pub mod collective;
pub mod gemm;
pub mod iterations;
pub mod nccl_tests;
pub mod plan;
pub mod run;
pub mod shard;
pub mod sm_contention;
pub mod sweep;
pub mod train;
pub mod validate;
pub mod validation_report;

/// Mean and max of the absolute values of `errors` (percent), and how many there are; zeros when
/// there are none.
pub fn abs_error_summary(errors: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let (mut sum, mut max, mut n) = (0.0, 0.0_f64, 0);
    for e in errors {
        sum += e.abs();
        max = max.max(e.abs());
        n += 1;
    }
    (sum / n.max(1) as f64, max, n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn abs_error_summary_averages_magnitudes() {
        // |-3| + |1| + |2| = 6 over 3 errors: mean 2, max 3; none: zeros
        assert_eq!(super::abs_error_summary([-3.0, 1.0, 2.0].into_iter()), (2.0, 3.0, 3));
        assert_eq!(super::abs_error_summary(std::iter::empty()), (0.0, 0.0, 0));
    }
}
