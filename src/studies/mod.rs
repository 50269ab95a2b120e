//! What the commands compute, as library calls: one run end to end, a collective sweep, a sweep
//! of configurations, the Megatron-LM validation, the capacity planner, sharded sweeps and plans
//! (and their merge), the training-run Monte Carlo and the benchmark cases. Each strings config →
//! workload → sim → report together; none prints (progress bars aside) or parses command lines.

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
