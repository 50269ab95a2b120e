//! A whole training run — iterations, periodic checkpoints, failures and
//! restarts — as a seeded Monte Carlo.
//!
//! The run needs W seconds of useful work (iterations x simulated iteration time). Every τ seconds
//! of work it saves a checkpoint (C seconds). Failures arrive as a Poisson process of rate
//! λ = nodes / node MTBF + GPUs / GPU MTBF; a failure loses the work since the last checkpoint and
//! costs the restart time plus a checkpoint load. Each trial walks the run segment by segment
//! (exponential times to failure are memoryless, so each attempt of a segment draws afresh); the
//! trials give the mean, the spread and the goodput W / wall time. The interval sweep reuses the
//! same seeds for every τ (common random numbers), so differences between intervals are not noise.
//! Young/Daly's first-order optimum is τ = sqrt(2 C / λ).

use crate::config::{HardwareSpec, StorageSpec, WorkloadSpec};
use crate::model::storage::{transfer_seconds, Direction};
use crate::workload::checkpoint::checkpoint_shape;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What one training run consists of.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct RunShape {
    /// Useful work: iterations x iteration time, s.
    pub work_s: f64,
    /// Checkpoint save time, s (0 without checkpoints).
    pub checkpoint_s: f64,
    /// Time lost per failure besides the lost work: restart + checkpoint load, s.
    pub recovery_s: f64,
    /// Failures per second (0 without failures).
    pub failure_rate: f64,
}

/// Monte Carlo results for one checkpoint interval.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct RunStats {
    /// Work between checkpoints, s (infinite: no checkpoints).
    pub interval_s: f64,
    /// Trials.
    pub trials: u32,
    /// Mean wall time, days.
    pub mean_days: f64,
    /// Standard deviation of the wall time, days.
    pub std_days: f64,
    /// 10th percentile, days.
    pub p10_days: f64,
    /// 90th percentile, days.
    pub p90_days: f64,
    /// Useful work / mean wall time.
    pub goodput: f64,
    /// Mean failures per run.
    pub mean_failures: f64,
}

/// A checkpoint of a workload on a machine: its size, who moves it, and how long that takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Total bytes.
    pub bytes: f64,
    /// Nodes that write it: those of data-parallel replica 0 (each model-parallel rank writes its shard).
    pub writer_nodes: u32,
    /// Nodes that read it back: all nodes of the job.
    pub reader_nodes: u32,
    /// Save time, s.
    pub save_s: f64,
    /// Load time, s: each shard is read once from the filesystem.
    pub load_s: f64,
}

/// Checkpoint size (the workload's) and times (the storage model's) of `w` on `hw`'s storage.
pub fn checkpoint(w: &WorkloadSpec, hw: &HardwareSpec, st: &StorageSpec) -> Checkpoint {
    let shape = checkpoint_shape(w, hw.node.gpus);
    Checkpoint {
        bytes: shape.bytes,
        writer_nodes: shape.writer_nodes,
        reader_nodes: shape.reader_nodes,
        save_s: transfer_seconds(st, shape.bytes, shape.writer_nodes, Direction::Write),
        load_s: transfer_seconds(st, shape.bytes, shape.reader_nodes, Direction::Read),
    }
}

/// The most iterations a run may have: beyond, `--tokens` is not a training run but a typo.
pub const MAX_ITERATIONS: f64 = 1e12;

/// The iterations of training `w` on `tokens` tokens (a positive, finite number), at most
/// [`MAX_ITERATIONS`]; otherwise an input error naming `--tokens`.
pub fn iterations(w: &WorkloadSpec, tokens: f64) -> crate::error::Result<f64> {
    let bad = |why: String| crate::error::Error::Input(format!("error: --tokens {tokens:e}: {why}"));
    if !(tokens.is_finite() && tokens > 0.0) {
        return Err(bad("must be a positive number of tokens, e.g. 300e9".into()));
    }
    let per_iteration = (w.batch.global * w.model.seq_len) as f64;
    let iterations = (tokens / per_iteration).ceil();
    if iterations > MAX_ITERATIONS {
        return Err(bad(format!(
            "{iterations:.3e} iterations of {per_iteration} tokens, more than {MAX_ITERATIONS:.0e}; this is not a training run"
        )));
    }
    Ok(iterations)
}

/// Young/Daly's optimal interval sqrt(2 C MTBF), s.
pub fn young_daly(shape: &RunShape) -> f64 {
    (2.0 * shape.checkpoint_s / shape.failure_rate).sqrt()
}

fn one_trial(shape: &RunShape, interval: f64, rng: &mut ChaCha8Rng) -> (f64, u32) {
    let (mut remaining, mut wall, mut failures) = (shape.work_s, 0.0, 0u32);
    while remaining > 0.0 {
        let segment = remaining.min(interval);
        let last = segment >= remaining;
        let need = segment + if last { 0.0 } else { shape.checkpoint_s };
        let to_failure = if shape.failure_rate > 0.0 {
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            -u.ln() / shape.failure_rate
        } else {
            f64::INFINITY
        };
        if to_failure >= need {
            wall += need;
            remaining -= segment;
        } else {
            wall += to_failure + shape.recovery_s;
            failures += 1;
        }
    }
    (wall, failures)
}

/// Runs `trials` seeded trials with checkpoints every `interval` seconds of work.
pub fn monte_carlo(shape: &RunShape, interval: f64, trials: u32, seed: u64) -> RunStats {
    let mut walls = Vec::with_capacity(trials as usize);
    let mut failures = 0u64;
    for trial in 0..trials.max(1) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(trial as u64));
        let (wall, f) = one_trial(shape, interval, &mut rng);
        walls.push(wall);
        failures += f as u64;
    }
    let n = walls.len() as f64;
    let mean = walls.iter().sum::<f64>() / n;
    let var = walls.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n;
    walls.sort_by(f64::total_cmp);
    let pct = |p: f64| walls[((p * (n - 1.0)).round() as usize).min(walls.len() - 1)];
    let day = 86_400.0;
    RunStats {
        interval_s: interval,
        trials: walls.len() as u32,
        mean_days: mean / day,
        std_days: var.sqrt() / day,
        p10_days: pct(0.1) / day,
        p90_days: pct(0.9) / day,
        goodput: shape.work_s / mean,
        mean_failures: failures as f64 / n,
    }
}

/// Goodput for `count` intervals spaced geometrically from `low` to `high` (same seeds for all).
/// Intervals are log-spaced from `low` to `high`; those whose trials would take more than
/// [`MAX_TRIAL_STEPS`] steps (see [`expected_steps`]) are left out.
pub fn sweep(shape: &RunShape, low: f64, high: f64, count: u32, trials: u32, seed: u64) -> Vec<RunStats> {
    let count = count.max(2);
    (0..count)
        .map(|i| low * (high / low).powf(i as f64 / (count - 1) as f64))
        .filter(|&tau| trials as f64 * expected_steps(shape, tau) <= MAX_TRIAL_STEPS)
        .map(|tau| monte_carlo(shape, tau, trials, seed))
        .collect()
}

/// The most loop steps (segment attempts) all trials together may take: a run beyond it cannot
/// finish in any useful time, and is refused.
pub const MAX_TRIAL_STEPS: f64 = 1e9;

/// Expected segment attempts of one trial with checkpoints every `interval` s of work: each of the
/// ceil(W / interval) segments of `interval + C` seconds survives the exponential failures with
/// probability exp(-rate x (interval + C)), so it is attempted exp(rate x (interval + C)) times.
pub fn expected_steps(shape: &RunShape, interval: f64) -> f64 {
    let segment = interval.min(shape.work_s);
    let segments = (shape.work_s / segment.max(1e-9)).ceil();
    segments * (shape.failure_rate * (segment + shape.checkpoint_s)).exp()
}

/// The interval with the best mean goodput.
pub fn best(stats: &[RunStats]) -> Option<&RunStats> {
    stats.iter().max_by(|a, b| a.goodput.total_cmp(&b.goodput))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, builtin_workload, Document};

    /// No failures, no checkpoints: the wall time is exactly the work.
    #[test]
    fn without_failures_the_run_is_its_work() {
        let shape = RunShape {
            work_s: 86_400.0 * 30.0,
            checkpoint_s: 0.0,
            recovery_s: 0.0,
            failure_rate: 0.0,
        };
        let s = monte_carlo(&shape, f64::INFINITY, 3, 1);
        assert_eq!(s.mean_days, 30.0);
        assert_eq!(s.goodput, 1.0);
        assert_eq!(s.std_days, 0.0);
    }

    /// In the regime where Young/Daly holds (C = 60 s << MTBF = 10 h, negligible recovery), the best
    /// simulated interval is within 10% of sqrt(2 C MTBF) = sqrt(2 x 60 x 36 000) = 2078 s. The
    /// intervals are 1.7% apart; 400 trials of 100 days each.
    #[test]
    fn best_interval_matches_young_daly() {
        let shape = RunShape {
            work_s: 100.0 * 86_400.0,
            checkpoint_s: 60.0,
            recovery_s: 1.0,
            failure_rate: 1.0 / 36_000.0,
        };
        let yd = young_daly(&shape);
        assert!((yd - 2078.46).abs() < 0.1);
        let stats = sweep(&shape, yd / 2.0, yd * 2.0, 81, 400, 7);
        let b = best(&stats).unwrap();
        assert!(
            (b.interval_s / yd - 1.0).abs() < 0.10,
            "best {} s vs Young/Daly {yd} s",
            b.interval_s
        );
        // and goodput is lower at both ends of the sweep
        assert!(stats[0].goodput < b.goodput && stats[80].goodput < b.goodput);
    }

    /// Same seed, same result; another seed, another sample with a visible spread.
    #[test]
    fn seeds() {
        let shape = RunShape {
            work_s: 30.0 * 86_400.0,
            checkpoint_s: 120.0,
            recovery_s: 900.0,
            failure_rate: 1.0 / 18_000.0,
        };
        let a = monte_carlo(&shape, 3600.0, 50, 1);
        assert_eq!(a, monte_carlo(&shape, 3600.0, 50, 1));
        let b = monte_carlo(&shape, 3600.0, 50, 2);
        assert_ne!(a.mean_days, b.mean_days);
        assert!(a.std_days > 0.0 && a.p90_days > a.p10_days);
    }

    /// Megatron SC'21 s5.10: the 1T model's 13.8 TB checkpoint loads in about 14 s at 1 TB/s and
    /// saves at 273 GB/s (so about 50 s) on 384 DGX A100 nodes.
    #[test]
    fn checkpoint_of_the_1t_model_on_selene() {
        let hw =
            HardwareSpec::from_document(&Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap())
                .unwrap();
        let w = WorkloadSpec::from_document(&Document::parse("gpt-1t", builtin_workload("gpt-1t").unwrap()).unwrap())
            .unwrap();
        let c = checkpoint(&w, &hw, hw.storage.as_ref().unwrap());
        // P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12 l h)) = 1.008e12 parameters, x 14 bytes = 14.1 TB
        assert!((c.bytes / 13.8e12 - 1.0).abs() < 0.03, "{}", c.bytes);
        assert_eq!(c.reader_nodes, 384);
        assert_eq!(
            c.writer_nodes, 64,
            "data-parallel replica 0: 64 stages x 8 tensor ranks = 64 nodes"
        );
        assert!((c.load_s - 14.1).abs() < 0.5, "load {} s", c.load_s);
        assert!(
            (c.bytes / c.save_s / 273e9 - 1.0).abs() < 0.01,
            "save at {} B/s",
            c.bytes / c.save_s
        );
    }
}
