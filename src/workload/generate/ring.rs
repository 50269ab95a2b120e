//! Context parallelism in the generated graph: the context-parallel rings of a stage and their
//! point-to-point steps ([`crate::workload::context`] says what a layer sends).
//!
//! Megatron-Core places the context-parallel group between tensor and data: data positions
//! c q .. c q + c - 1 (same tensor rank and stage) are replica q's ring, position k sending to
//! k + 1 (mod c). Each [`Piece::RingSend`](crate::workload::transformer::Piece) becomes, on every
//! present rank, a send to the next rank and a receive from the previous one on the context stream
//! (the send after the piece before); each `RingWait` a zero-time task on the compute stream that
//! waits for that receive. A representative graph has one rank of each ring; by symmetry its
//! predecessor sends it what it sends its successor at the same time, so its receive is matched to
//! its own send (the flow model prices the send with its copies around the ring).

use super::{Generator, StageCtx};
use crate::workload::graph::{Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;

/// A ring as the stage context lists it: its ranks in ring order, and (position, index into the
/// stage's ranks) of each present member.
pub(super) type RingGroup = (Vec<u32>, Vec<(usize, usize)>);

impl Generator<'_> {
    /// The stage's context-parallel rings among the present `datas` data positions and `tensors`
    /// tensor ranks (none without context parallelism).
    pub(super) fn context_groups(&self, stage: u32, datas: u32, tensors: u32) -> Vec<RingGroup> {
        let (lay, c) = (self.lay, self.lay.c);
        if c <= 1 {
            return Vec::new();
        }
        let index = |tensor: u32, data: u32| (data * tensors + tensor) as usize;
        let mut rings = Vec::new();
        for tensor in 0..tensors {
            for q in 0..datas.div_ceil(c) {
                let all = (0..c)
                    .map(|k| {
                        lay.rank(RankCoord {
                            tensor,
                            data: q * c + k,
                            stage,
                        })
                    })
                    .collect();
                let present = (0..c)
                    .filter(|&k| q * c + k < datas)
                    .map(|k| (k as usize, index(tensor, q * c + k)))
                    .collect();
                rings.push((all, present));
            }
        }
        rings
    }

    /// One step of every ring: each present rank sends `bytes` to the next after its previous
    /// piece and receives from the one before, on the context stream.
    pub(super) fn ring_send(&mut self, ctx: &StageCtx, bytes: u64, label: TaskLabel, prev: &[Option<TaskId>]) {
        for (all, present) in &ctx.context_groups {
            let c = all.len();
            let sent: Vec<u32> = present
                .iter()
                .map(|&(k, _)| self.g.transfer(all[k], all[(k + 1) % c], bytes))
                .collect();
            for (j, &(k, i)) in present.iter().enumerate() {
                let r = ctx.ranks[i];
                let send = self.buf.task(r, Stream::ContextComm, TaskKind::Send(sent[j]), label);
                if let Some(p) = prev[i] {
                    self.buf.depend(p, send);
                }
                // the predecessor's send, or by symmetry this rank's own where it is not present
                let from = present
                    .iter()
                    .position(|&(kk, _)| kk == (k + c - 1) % c)
                    .map_or(sent[j], |jj| sent[jj]);
                self.ring_recv[i] = Some(self.buf.task(r, Stream::ContextComm, TaskKind::Recv(from), label));
            }
        }
    }

    /// Every ring member's compute stream waits for its last ring receive.
    pub(super) fn ring_wait(&mut self, ctx: &StageCtx, label: TaskLabel, prev: &mut [Option<TaskId>]) {
        let join = self.g.delay(crate::units::SimDuration::ZERO);
        for (_, present) in &ctx.context_groups {
            for &(_, i) in present {
                let joined = self
                    .buf
                    .task(ctx.ranks[i], Stream::Compute, TaskKind::Delay(join), label);
                if let Some(recv) = self.ring_recv[i] {
                    self.buf.depend(recv, joined);
                }
                prev[i] = Some(joined);
            }
        }
    }
}
