//! The host thread of each rank, when the hardware names a dispatch cost (`node.host_dispatch`).
//!
//! Every framework operation is dispatched by the rank's host thread before the GPU can run what
//! it launches, so a kernel cannot start before its launch. The host runs ahead of the GPU within a
//! step, but Megatron-LM 2021 wraps every forward and backward step, and every pipeline transfer,
//! in timers that call `torch.cuda.synchronize()`: at the first task of a new step (microbatch,
//! model chunk, direction) the host has waited for the GPU. A compute task of GPU time `D` with `k`
//! kernels and `n` host operations then starts no earlier than the host's dispatch of its first
//! kernel (after n/k operations) and ends no earlier than its last kernel can (all n dispatched,
//! then D/k). Python-dispatched operations (forward, recomputation, reduction, optimizer) cost
//! `host_dispatch` each; those the C++ autograd engine dispatches in the backward pass cost half
//! ("approx half of it is python parsing overhead", pytorch/pytorch issue 41383).
//! `kernel_overhead` stays the GPU-side cost of each kernel, so nothing is counted twice.

use super::Sim;
use crate::units::{SimDuration, SimTime};
use crate::workload::{Phase, TaskId};

/// One rank's host thread.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Host {
    /// When it has dispatched everything so far.
    free: SimTime,
    /// The step it is in: (microbatch, chunk, forward).
    step: Option<(u32, u8, bool)>,
}

impl Sim<'_> {
    /// Enters task `t`'s step on rank `r` (waiting for the GPU at a new step) and returns the
    /// host time of one of the task's operations.
    fn host_step(&mut self, t: TaskId, r: usize, now: SimTime) -> SimDuration {
        let label = self.g.task_label[t as usize];
        let step = (
            label.microbatch,
            label.chunk,
            label.phase != Phase::Backward && label.phase != Phase::Recompute,
        );
        let host = &mut self.hosts[r];
        if host.step != Some(step) {
            host.free = host.free.max(now);
            host.step = Some(step);
        }
        match label.phase {
            Phase::Backward => SimDuration(self.host_dispatch.0 / 2),
            _ => self.host_dispatch,
        }
    }

    /// When compute task `t` (op `op`, GPU time `d`) on rank `r`, ready on the GPU at `now`, can
    /// start its kernels and the earliest end the host allows: it ends at
    /// `max(start + d, floor)`.
    pub(super) fn host_bounds(
        &mut self,
        t: TaskId,
        r: usize,
        op: u32,
        d: SimDuration,
        now: SimTime,
    ) -> (SimTime, SimTime) {
        if self.host_dispatch.0 == 0 {
            return (now, now);
        }
        let per_op = self.host_step(t, r, now);
        let op = &self.g.ops[op as usize];
        let kernels = op.kernels.len().max(1) as u64;
        let dispatch = SimDuration(per_op.0 * op.host_ops as u64);
        let host = &mut self.hosts[r];
        let first = host.free + SimDuration(dispatch.0 / kernels);
        let last = host.free + dispatch;
        host.free = last;
        (now.max(first), last + SimDuration(d.0 / kernels))
    }

    /// Collective task `t` on rank `r`'s compute stream: the host dispatches it (one operation).
    pub(super) fn host_dispatches_collective(&mut self, t: TaskId, r: usize, now: SimTime) {
        if self.host_dispatch.0 == 0 {
            return;
        }
        let per_op = self.host_step(t, r, now);
        let host = &mut self.hosts[r];
        host.free = host.free + per_op;
    }
}
