//! Per-rank time accounting: each rank's time split by what it was doing, in O(1) per state change.

use crate::units::{SimDuration, SimTime};

/// Time of one rank, split by what it was doing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RankTime {
    /// Running kernels.
    pub compute: SimDuration,
    /// Communication in flight while no kernel ran.
    pub exposed_comm: SimDuration,
    /// Communication in flight while kernels ran (also counted in `compute`).
    pub overlapped_comm: SimDuration,
    /// Kernel time lost to the SMs communication kernels held (also counted in `compute`): what the
    /// kernels took beyond their time on all SMs.
    pub sm_contention: SimDuration,
    /// Waiting at a collective for other members to arrive.
    pub sync_wait: SimDuration,
    /// Storage I/O in flight while no kernel ran and no communication was in flight.
    pub io: SimDuration,
    /// Nothing to do: pipeline bubbles (including waits at collectives that span pipeline stages),
    /// or waiting for the slowest rank at the end.
    pub idle: SimDuration,
    /// Time its compute tasks waited for the host to launch their kernels (also counted in
    /// `compute`).
    pub host_wait: SimDuration,
    /// Kernel time by kind of kernel ([`crate::ops::KernelKind`] order), in nanoseconds, each op's
    /// time split as its kernels' uncontended times are; the SMs lost to communication are in
    /// `sm_contention`.
    pub by_kind_ns: [f64; crate::ops::KernelKind::COUNT],
}

/// What a rank is doing now, and its time so far; `advance` books the time since the last change.
#[derive(Clone, Copy, Default)]
pub(super) struct RankClock {
    /// When the time was last booked.
    pub(super) last: SimTime,
    /// A kernel is running.
    pub(super) computing: bool,
    /// Communications in flight.
    pub(super) comm_active: u32,
    /// Collectives reached, waiting for other members.
    pub(super) sync_waiting: u32,
    /// Storage I/Os in flight.
    pub(super) io_active: u32,
    /// Time booked so far.
    pub(super) time: RankTime,
}

impl RankClock {
    /// Books the time since the last change to the state the rank was in.
    pub(super) fn advance(&mut self, now: SimTime) {
        let dt = now.since(self.last);
        self.last = now;
        if dt.0 == 0 {
            return;
        }
        let t = &mut self.time;
        if self.computing {
            t.compute += dt;
            if self.comm_active > 0 {
                t.overlapped_comm += dt;
            }
        } else if self.comm_active > 0 {
            t.exposed_comm += dt;
        } else if self.io_active > 0 {
            t.io += dt;
        } else if self.sync_waiting > 0 {
            t.sync_wait += dt;
        } else {
            t.idle += dt;
        }
    }
}
