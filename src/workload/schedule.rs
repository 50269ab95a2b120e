//! Pipeline schedules: the order of forward and backward passes on each pipeline stage,
//! as Megatron-LM implements them (`megatron/core/pipeline_parallel/schedules.py`).

use crate::config::Schedule;

/// One pass of one microbatch through one model chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Forward pass.
    Forward {
        /// Microbatch index.
        microbatch: u32,
        /// Model chunk on this device (0 unless interleaved).
        chunk: u32,
    },
    /// Backward pass.
    Backward {
        /// Microbatch index.
        microbatch: u32,
        /// Model chunk on this device.
        chunk: u32,
    },
}

/// The steps of `stage` (0-based) out of `stages`, for `microbatches` microbatches and
/// `chunks` model chunks per device.
pub fn steps(schedule: Schedule, stage: u32, stages: u32, microbatches: u32, chunks: u32) -> Vec<Step> {
    steps_with_warmup(schedule, stage, stages, microbatches, chunks, 0)
}

/// [`steps`] with `extra` more warm-up forwards in 1F1B and interleaved 1F1B (Megatron-Core adds
/// one when it overlaps the expert-parallel all-to-alls, so that each steady-state forward and the
/// backward beside it belong to different microbatches and can run together).
pub fn steps_with_warmup(
    schedule: Schedule,
    stage: u32,
    stages: u32,
    microbatches: u32,
    chunks: u32,
    extra: u32,
) -> Vec<Step> {
    let m = microbatches;
    let f = |microbatch, chunk| Step::Forward { microbatch, chunk };
    let b = |microbatch, chunk| Step::Backward { microbatch, chunk };
    match schedule {
        // GPipe: all forwards, then all backwards (in the same order).
        Schedule::GPipe => (0..m).map(|i| f(i, 0)).chain((0..m).map(|i| b(i, 0))).collect(),
        // PipeDream-Flush: p - stage - 1 warm-up forwards, then one forward / one backward, then cool-down.
        Schedule::OneFOneB => {
            let warmup = warmup(schedule, stage, stages, m, chunks, extra);
            let mut out: Vec<Step> = (0..warmup).map(|i| f(i, 0)).collect();
            for i in 0..m - warmup {
                out.push(f(warmup + i, 0));
                out.push(b(i, 0));
            }
            out.extend((m - warmup..m).map(|i| b(i, 0)));
            out
        }
        Schedule::Interleaved => interleaved(stage, stages, m, chunks, extra),
    }
}

/// The forwards `stage` runs before its first backward in [`steps_with_warmup`]: all of them in
/// GPipe; in (interleaved) 1F1B the warm-up, at most every pass.
fn warmup(schedule: Schedule, stage: u32, stages: u32, microbatches: u32, chunks: u32, extra: u32) -> u32 {
    let (p, m) = (stages, microbatches);
    match schedule {
        Schedule::GPipe => m,
        Schedule::OneFOneB => (p - stage - 1 + extra).min(m),
        Schedule::Interleaved if m == p => m * chunks,
        Schedule::Interleaved => ((p - stage - 1) * 2 + (chunks - 1) * p + extra).min(m * chunks),
    }
}

/// The most forward passes whose backward has not run yet on `stage`, over [`steps_with_warmup`]:
/// the warm-up forwards, plus the steady state's first forward where one follows (it runs before
/// the first backward). Constant time, for any number of microbatches.
pub fn peak_in_flight(schedule: Schedule, stage: u32, stages: u32, microbatches: u32, chunks: u32, extra: u32) -> u32 {
    let passes = match schedule {
        Schedule::Interleaved => microbatches * chunks,
        Schedule::GPipe | Schedule::OneFOneB => microbatches,
    };
    (warmup(schedule, stage, stages, microbatches, chunks, extra) + 1).min(passes)
}

/// Megatron's interleaved 1F1B: virtual microbatch k runs chunk (k mod (p v)) / p, in groups of p
/// microbatches; warm-up is (p - stage - 1) * 2 + (v - 1) * p virtual steps (all of them if m == p).
fn interleaved(stage: u32, p: u32, m: u32, v: u32, extra: u32) -> Vec<Step> {
    let total = m * v;
    let chunk_of = |k: u32, forward: bool| {
        let c = (k % (p * v)) / p;
        if forward {
            c
        } else {
            v - 1 - c
        }
    };
    let microbatch_of = |k: u32| (k / (p * v)) * p + k % p;
    let fwd = |k: u32| Step::Forward {
        microbatch: microbatch_of(k),
        chunk: chunk_of(k, true),
    };
    let bwd = |k: u32| Step::Backward {
        microbatch: microbatch_of(k),
        chunk: chunk_of(k, false),
    };
    let warmup = warmup(Schedule::Interleaved, stage, p, m, v, extra);
    let mut out: Vec<Step> = (0..warmup).map(fwd).collect();
    for i in 0..total - warmup {
        out.push(fwd(warmup + i));
        out.push(bwd(i));
    }
    out.extend((total - warmup..total).map(bwd));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(steps: &[Step]) -> (usize, usize) {
        let f = steps.iter().filter(|s| matches!(s, Step::Forward { .. })).count();
        (f, steps.len() - f)
    }

    #[test]
    fn one_f_one_b_first_and_last_stage() {
        // p = 4, m = 6: stage 0 warms up with 3 forwards; the last stage alternates from the start.
        let s0 = steps(Schedule::OneFOneB, 0, 4, 6, 1);
        let fwd = |microbatch| Step::Forward { microbatch, chunk: 0 };
        let bwd = |microbatch| Step::Backward { microbatch, chunk: 0 };
        assert_eq!(&s0[..5], &[fwd(0), fwd(1), fwd(2), fwd(3), bwd(0)]);
        let s3 = steps(Schedule::OneFOneB, 3, 4, 6, 1);
        assert_eq!(&s3[..4], &[fwd(0), bwd(0), fwd(1), bwd(1)]);
        assert_eq!(count(&s0), (6, 6));
    }

    #[test]
    fn an_extra_warmup_forward_pairs_each_backward_with_another_microbatch() {
        // p = 4, m = 6, last stage: plain 1F1B alternates F0 B0 F1 B1 (each pair one microbatch);
        // one more warm-up forward pairs F(i + 1) with B(i); stage 0 warms up with 3 + 1
        let fwd = |microbatch| Step::Forward { microbatch, chunk: 0 };
        let bwd = |microbatch| Step::Backward { microbatch, chunk: 0 };
        let s3 = steps_with_warmup(Schedule::OneFOneB, 3, 4, 6, 1, 1);
        assert_eq!(&s3[..5], &[fwd(0), fwd(1), bwd(0), fwd(2), bwd(1)]);
        let s0 = steps_with_warmup(Schedule::OneFOneB, 0, 4, 6, 1, 1);
        assert_eq!(&s0[..6], &[fwd(0), fwd(1), fwd(2), fwd(3), fwd(4), bwd(0)]);
        // interleaved, p 2, v 2, m 4, last stage: (2 - 1 - 1) x 2 + (2 - 1) x 2 = 2 warm-up steps, 3 with one more
        let plain = steps(Schedule::Interleaved, 1, 2, 4, 2);
        let more = steps_with_warmup(Schedule::Interleaved, 1, 2, 4, 2, 1);
        assert!(matches!(plain[2], Step::Forward { .. }) && matches!(plain[3], Step::Backward { .. }));
        assert!(matches!(more[2], Step::Forward { .. }) && matches!(more[3], Step::Forward { .. }));
        assert_eq!(count(&more), count(&plain));
    }

    #[test]
    fn peak_in_flight_is_the_walk_of_the_steps() {
        // the closed form against counting forwards minus backwards along the steps
        for sched in [Schedule::GPipe, Schedule::OneFOneB, Schedule::Interleaved] {
            for (p, v) in [(1, 1), (2, 2), (4, 1), (4, 3), (8, 2)] {
                for m in [1, 2, p, p + 1, 2 * p, 3 * p + 1] {
                    for extra in [0, 1] {
                        for stage in 0..p {
                            let (mut live, mut peak) = (0i64, 0i64);
                            for st in steps_with_warmup(sched, stage, p, m, v, extra) {
                                live += if matches!(st, Step::Forward { .. }) { 1 } else { -1 };
                                peak = peak.max(live);
                            }
                            let got = peak_in_flight(sched, stage, p, m, v, extra);
                            assert_eq!(got as i64, peak, "{sched:?} p{p} v{v} m{m} extra{extra} stage{stage}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_schedule_runs_each_pass_once() {
        for (sched, v) in [
            (Schedule::GPipe, 1),
            (Schedule::OneFOneB, 1),
            (Schedule::Interleaved, 2),
            (Schedule::Interleaved, 3),
        ] {
            for p in [1, 2, 4] {
                for m in [p, 2 * p, 4 * p] {
                    for stage in 0..p {
                        let s = steps(sched, stage, p, m, v);
                        let mut seen = std::collections::HashSet::new();
                        for st in &s {
                            assert!(seen.insert(*st), "{sched:?} p{p} m{m} stage{stage}: {st:?} twice");
                            // a backward never precedes its own forward
                            if let Step::Backward { microbatch, chunk } = *st {
                                assert!(seen.contains(&Step::Forward { microbatch, chunk }));
                            }
                        }
                        assert_eq!(count(&s), ((m * v) as usize, (m * v) as usize));
                    }
                }
            }
        }
    }
}
