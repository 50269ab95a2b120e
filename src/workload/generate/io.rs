//! Storage I/O in the iteration: checkpoint load and save, and data loading per microbatch.

use super::{Generator, StageCtx, NONE_MB, NO_LAYER};
use crate::ops::CollectiveOp;
use crate::workload::checkpoint::CHECKPOINT_BYTES_PER_PARAM;
use crate::workload::graph::{Phase, Stream, TaskId, TaskKind, TaskLabel};

impl Generator<'_> {
    /// Checkpoint I/O of a stage, blocking the compute stream: replica 0's ranks write their shards
    /// (save), or read them and broadcast them to the other replicas (load). A shard is the
    /// Megatron checkpoint state of the rank's parameters (14 bytes each).
    pub(super) fn checkpoint_io(&mut self, ctx: &StageCtx, params: u64, write: bool, prev: &mut [Option<TaskId>]) {
        let bytes = CHECKPOINT_BYTES_PER_PARAM * params;
        let label = TaskLabel {
            phase: Phase::Io,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: NONE_MB,
        };
        let replica0: Vec<usize> = (0..ctx.ranks.len())
            .filter(|&i| self.lay.coord(ctx.ranks[i]).data == 0)
            .collect();
        for i in replica0 {
            let r = ctx.ranks[i];
            let x = self.g.storage_by(r, bytes, write, false);
            prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Storage(x), label));
        }
        if !write && self.lay.d > 1 {
            let ids = self.blocking_collective(
                &ctx.ranks,
                &ctx.data_groups,
                CollectiveOp::Broadcast,
                bytes,
                label,
                prev,
            );
            for c in ids {
                self.g.mark_data_parallel(c);
            }
        }
    }

    /// Reads a microbatch's tokens or labels (b s int32) on the I/O stream, and makes the compute
    /// stream wait for it.
    pub(super) fn data_read(&mut self, ctx: &StageCtx, mb: u32) {
        let bytes = 4 * self.w.batch.micro * self.w.model.seq_len;
        let label = TaskLabel {
            phase: Phase::Io,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: mb,
        };
        let zero = self.zero_delay();
        for &r in &ctx.ranks {
            let x = self.g.storage(r, bytes, false);
            let read = self.buf.task(r, Stream::Io, TaskKind::Storage(x), label);
            let wait = self.buf.task(r, Stream::Compute, TaskKind::Delay(zero), label);
            self.buf.depend(read, wait);
        }
    }

    /// The zero-length delay that makes a stream wait for another's task (created on first use).
    pub(super) fn zero_delay(&mut self) -> u32 {
        match self.zero_delay {
            Some(z) => z,
            None => *self.zero_delay.insert(self.g.delay(crate::units::SimDuration::ZERO)),
        }
    }
}
