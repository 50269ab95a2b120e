//! Compute and delay tasks: a compute task runs its op's kernels for the compute model's time
//! (times a seeded jitter, if any); a delay waits a fixed time without running kernels.

use super::{Event, Sim};
use crate::model::compute::ComputeModel;
use crate::ops::{Kernel, KernelKind};
use crate::units::SimDuration;
use crate::workload::TaskId;
use rand::RngExt;

/// An op's time on one GPU model, and how its kernels' kinds share it.
#[derive(Clone, Copy, Debug)]
pub(super) struct OpCost {
    /// Its kernels back to back.
    pub(super) time: SimDuration,
    /// Each kind of kernel's share of that time ([`KernelKind`] order).
    shares: [f32; KernelKind::COUNT],
}

impl OpCost {
    /// The cost of an op of these kernels on this GPU model.
    pub(super) fn of(model: &ComputeModel, kernels: &[Kernel]) -> Self {
        let (seconds, shares) = model.op_seconds_by_kind(kernels);
        OpCost {
            time: SimDuration::from_secs_f64(seconds),
            shares: shares.map(|s| s as f32),
        }
    }
}

impl Sim<'_> {
    /// Starts compute task `t` (op `op`) on stream `si`.
    pub(super) fn start_compute(&mut self, t: TaskId, si: usize, op: u32) {
        let now = self.queue.now();
        let r = self.rank_of_stream(si);
        let model = self.rank_group.get(r).map_or(0, |&g| g as usize);
        let cost = self.op_time[model][op as usize];
        let mut d = cost.time;
        let slow = self.slowdown[r];
        if self.jitter.is_active() {
            let (u1, u2): (f64, f64) = (self.rng.random(), self.rng.random());
            d = SimDuration::from_secs_f64(d.as_secs_f64() * slow * self.jitter.factor(u1, u2));
        } else if slow != 1.0 {
            d = SimDuration::from_secs_f64(d.as_secs_f64() * slow);
        }
        let (start, floor) = self.host_bounds(t, r, op, d, now);
        let end = if self.sm_share.is_some() {
            self.share_compute(t, si, r, op, d, (start, floor))
        } else {
            (start + d).max(floor)
        };
        let clock = &mut self.clocks[r];
        clock.advance(now);
        clock.computing = true;
        for (kind, share) in clock.time.by_kind_ns.iter_mut().zip(cost.shares) {
            *kind += d.0 as f64 * share as f64;
        }
        // the GPU waiting for its host to launch the kernels: before the first, and at the end
        clock.time.host_wait += start.since(now) + floor.since(start + d);
        self.queue.schedule_fixed(
            end,
            Event::TaskDone {
                task: t,
                stream: si as u32,
                kernels: true,
            },
        );
    }

    /// Starts delay task `t` (delay index `i`) on stream `si`.
    pub(super) fn start_delay(&mut self, t: TaskId, si: usize, i: u32) {
        let now = self.queue.now();
        let d = self.g.delays[i as usize];
        self.queue.schedule_fixed(
            now + d,
            Event::TaskDone {
                task: t,
                stream: si as u32,
                kernels: false,
            },
        );
    }

    /// A compute or delay task finished.
    pub(super) fn task_done(&mut self, t: TaskId, si: usize, kernels: bool) {
        let now = self.queue.now();
        if kernels {
            if self.sm_share.is_some() && !self.share_done(t, si) {
                return; // superseded: the task was re-timed when the SMs free on its rank changed
            }
            let r = self.rank_of_stream(si);
            let clock = &mut self.clocks[r];
            clock.advance(now);
            clock.computing = false;
        }
        self.complete(t, si, now);
    }
}
