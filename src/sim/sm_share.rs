//! SMs shared between communication and compute kernels on one GPU.
//!
//! A member of a collective holds the SMs of its communication kernel
//! ([`crate::model::network::occupancy`]) from the moment it reaches the collective (its kernel is
//! launched and waits there for the other members) until the collective completes. A compute task
//! runs at the speed of the SMs left: it takes the compute model's time for its kernels on the
//! free SMs, and when the SMs held on its rank change while it runs, its remaining work is re-timed
//! at the new speed (its finishing event moves; the superseded one is ignored when it pops).
//! Streaming kernels keep their HBM-bound time; the HBM traffic of the communication itself is not
//! modelled. Only machines whose hardware file names an NCCL have the occupancy model, and only
//! collectives off the compute stream hold SMs: one on the compute stream blocks it, so no kernel
//! of that stream runs beside it (and graphs whose collectives all block pay nothing for the model).

use super::Sim;
use crate::config::HardwareSpec;
use crate::fasthash::FxHashMap;
use crate::model::compute::ComputeModel;
use crate::model::network::occupancy::{userbuffers_sms, CommOccupancy};
use crate::units::{SimDuration, SimTime};
use crate::workload::{CollectiveId, Stream, TaskGraph, TaskId, TransferId};

/// SMs each rank's communication holds, and the compute tasks they slow.
pub(super) struct SmShare {
    occupancy: CommOccupancy,
    /// The compute model of each GPU model of the machine (as `op_time`).
    models: Vec<ComputeModel>,
    /// SMs held on each rank.
    held: Vec<u32>,
    /// SMs each collective's members hold (`u16::MAX`: not priced yet).
    collective_sms: Vec<u16>,
    /// SMs by (op, group, bytes, stream), shared by the instances.
    memo: FxHashMap<(u8, u32, u64, u8), u16>,
    /// An op's time on (GPU model, op, free SMs) over its time on all SMs.
    ratio: FxHashMap<(u8, u32, u32), f64>,
    /// The compute task running on each stream.
    running: Vec<Running>,
    /// Per rank, a bit per stream that has a compute task running (re-timing reads only those).
    running_mask: Vec<u8>,
}

/// A compute task in flight, as far as re-timing it needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Running {
    /// The task (`TaskId::MAX`: none).
    task: TaskId,
    op: u32,
    /// Its rank's GPU model.
    model: u8,
    /// When its kernels can run (the host has dispatched the first).
    start: SimTime,
    /// The earliest end the host allows (its last dispatch plus one kernel).
    floor: SimTime,
    /// Seconds on all SMs.
    full_s: f64,
    /// Its time on the SMs it has now over `full_s`.
    factor: f64,
    /// Fraction of its work done by `last`.
    done: f64,
    last: SimTime,
    /// When its finishing event is due.
    end: SimTime,
    /// When its kernels finish their work at the current speed (`end` without the host's floor).
    work_end: SimTime,
}

impl Running {
    const IDLE: Running = Running {
        task: TaskId::MAX,
        op: 0,
        model: 0,
        start: SimTime::ZERO,
        floor: SimTime::ZERO,
        full_s: 0.0,
        factor: 1.0,
        done: 0.0,
        last: SimTime::ZERO,
        end: SimTime::ZERO,
        work_end: SimTime::ZERO,
    };
}

/// Whether a send on stream index `si` is a context-parallel ring's K/V exchange.
fn ring_exchange(si: u32) -> bool {
    si as usize % Stream::COUNT == Stream::ContextComm as usize
}

impl SmShare {
    /// The model for a run of `g` on `hw`: none without an occupancy model, or where every
    /// collective of `g` blocks its compute stream. (Kept out of line: the simulation's loop stays
    /// small enough to inline the event queue.)
    #[inline(never)]
    pub(super) fn for_run(hw: &HardwareSpec, g: &TaskGraph) -> Option<Box<Self>> {
        let occupancy = CommOccupancy::new(hw)?;
        let off_compute = |si: u32| si as usize % Stream::COUNT != Stream::Compute as usize;
        let beside_kernels = (0..g.collectives.len() as CollectiveId)
            .any(|c| g.collective_streams(c).first().is_some_and(|&si| off_compute(si)))
            || g.transfers.iter().any(|t| ring_exchange(t.send_stream));
        if !beside_kernels {
            return None;
        }
        let ranks = g.ranks as usize;
        Some(Box::new(SmShare {
            occupancy,
            models: hw.gpu_models().into_iter().map(ComputeModel::new).collect(),
            held: vec![0; ranks],
            collective_sms: vec![u16::MAX; g.collectives.len()],
            memo: FxHashMap::default(),
            ratio: FxHashMap::default(),
            running: vec![Running::IDLE; ranks * Stream::COUNT],
            running_mask: vec![0; ranks],
        }))
    }

    /// The time ratio of `op` on GPU model `model` with `held` SMs taken.
    fn factor(&mut self, g: &TaskGraph, model: u8, op: u32, held: u32) -> f64 {
        if held == 0 {
            return 1.0;
        }
        let m = &self.models[model as usize];
        let free = m.sms().saturating_sub(held).max(1);
        *self.ratio.entry((model, op, free)).or_insert_with(|| {
            let kernels = &g.ops[op as usize].kernels;
            let full = m.op_seconds_on(kernels, m.sms());
            if full > 0.0 {
                m.op_seconds_on(kernels, free) / full
            } else {
                1.0
            }
        })
    }
}

impl Sim<'_> {
    /// Times compute task `t` (op `op`, `full` on all SMs) on stream `si` of rank `r`, whose
    /// kernels can start at `start` and end no earlier than `floor`; returns its end. Called only
    /// with the model (the caller times tasks without it itself).
    #[inline(never)]
    pub(super) fn share_compute(
        &mut self,
        t: TaskId,
        si: usize,
        r: usize,
        op: u32,
        full: SimDuration,
        (start, floor): (SimTime, SimTime),
    ) -> SimTime {
        let model = self.rank_group.get(r).copied().unwrap_or(0);
        let share = self.sm_share.as_deref_mut().expect("called with the model");
        let factor = share.factor(self.g, model, op, share.held[r]);
        let full_s = full.as_secs_f64();
        let work_end = start + SimDuration::from_secs_f64(full_s * factor);
        let end = work_end.max(floor);
        share.running_mask[r] |= 1 << (si % Stream::COUNT);
        share.running[si] = Running {
            task: t,
            op,
            model,
            start,
            floor,
            full_s,
            factor,
            done: 0.0,
            last: start,
            end,
            work_end,
        };
        end
    }

    /// Whether a compute task's finishing event is its current one (not superseded by a re-timing);
    /// if so the task leaves the running set, and the time its kernels lost to communication's SMs
    /// is booked to its rank.
    #[inline(never)]
    pub(super) fn share_done(&mut self, t: TaskId, si: usize) -> bool {
        let now = self.queue.now();
        let share = self.sm_share.as_deref_mut().expect("called with the model");
        let run = &mut share.running[si];
        if run.task != t || run.end != now {
            return false;
        }
        run.task = TaskId::MAX;
        share.running_mask[si / Stream::COUNT] &= !(1 << (si % Stream::COUNT));
        let full = SimDuration::from_secs_f64(run.full_s);
        let lost = run.work_end.since(run.start).0.saturating_sub(full.0);
        self.clocks[si / Stream::COUNT].time.sm_contention += SimDuration(lost);
        true
    }

    /// SMs collective `c`'s members hold.
    fn collective_sms(&mut self, c: CollectiveId) -> u32 {
        let g = self.g;
        let Some(share) = self.sm_share.as_deref_mut() else {
            return 0;
        };
        let known = share.collective_sms[c as usize];
        if known != u16::MAX {
            return known as u32;
        }
        let coll = &g.collectives[c as usize];
        let stream = g
            .collective_streams(c)
            .first()
            .map_or(0, |&si| si as usize % Stream::COUNT);
        let key = (
            coll.op as u8,
            coll.group,
            coll.bytes,
            stream as u8 | (coll.userbuffers as u8) << 4,
        );
        let sms = *share.memo.entry(key).or_insert_with(|| {
            let sms = if stream == Stream::Compute as usize {
                0
            } else if coll.userbuffers {
                userbuffers_sms(coll.op)
            } else {
                share
                    .occupancy
                    .collective_sms(coll.op, &g.groups[coll.group as usize], coll.bytes)
            };
            sms.min(u16::MAX as u32 - 1) as u16
        });
        share.collective_sms[c as usize] = sms;
        sms as u32
    }

    /// Rank `r`'s member of collective `c` launched its kernel (`hold`) or finished it.
    #[inline(never)]
    pub(super) fn share_collective(&mut self, c: CollectiveId, r: usize, hold: bool) {
        let sms = self.collective_sms(c);
        self.share_sms(r, sms, hold);
    }

    /// Rank `r`'s end of transfer `x` launched its kernel (`hold`) or finished it. Only the
    /// context-parallel ring's sends and receives hold SMs: they run beside the attention by design.
    /// Pipeline sends are left out: counted, they moved Figure 14's mean error by 0.01 point and the
    /// H100 figures' rows by at most 0.2 (Llama 2 13B, p 4), and cost GPT-1T's every-rank run about
    /// 40% more wall time in re-timings.
    #[inline(never)]
    pub(super) fn share_transfer(&mut self, x: TransferId, r: usize, hold: bool) {
        let tr = &self.g.transfers[x as usize];
        let sms = match self.sm_share.as_deref() {
            Some(share) if ring_exchange(tr.send_stream) => share.occupancy.transfer_sms(tr.src, tr.dst, tr.bytes),
            _ => 0,
        };
        self.share_sms(r, sms, hold);
    }

    /// `sms` more (`hold`) or fewer SMs held on rank `r`.
    fn share_sms(&mut self, r: usize, sms: u32, hold: bool) {
        if sms == 0 {
            return;
        }
        let share = self.sm_share.as_deref_mut().expect("no SMs are held without the model");
        if hold {
            share.held[r] += sms;
        } else {
            share.held[r] -= sms;
        }
        self.retime(r);
    }

    /// Re-times the compute tasks running on rank `r` at the SMs now free there.
    fn retime(&mut self, r: usize) {
        let now = self.queue.now();
        let g = self.g;
        let share = self.sm_share.as_deref_mut().expect("called with the model");
        let held = share.held[r];
        let mut mask = share.running_mask[r];
        while mask != 0 {
            let si = r * Stream::COUNT + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let mut run = share.running[si];
            let from = run.last.max(run.start);
            if now > from {
                run.done += now.since(from).as_secs_f64() / (run.full_s * run.factor);
                run.last = now;
            }
            let factor = share.factor(g, run.model, run.op, held);
            if factor != run.factor {
                run.factor = factor;
                let left = (1.0 - run.done).max(0.0) * run.full_s * factor;
                run.work_end = now.max(run.start) + SimDuration::from_secs_f64(left);
                let end = run.work_end.max(run.floor);
                if end != run.end {
                    run.end = end;
                    self.queue.schedule_fixed(
                        end,
                        super::Event::TaskDone {
                            task: run.task,
                            stream: si as u32,
                            kernels: true,
                        },
                    );
                }
            }
            share.running[si] = run;
        }
    }
}
