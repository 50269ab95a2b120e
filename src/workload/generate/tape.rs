//! A pass as a tape: what a forward or backward pass of one microbatch through one model chunk
//! does, in order (receive, pieces, gradient reductions, send), built before any task is emitted,
//! so that it can be emitted as it stands ([`Generator::play`]) or interleaved with another pass's
//! (`combined`).

use super::{Generator, StageCtx};
use crate::ops::CollectiveOp;
use crate::workload::graph::{Phase, TaskId};
use crate::workload::transformer::Piece;

/// One step of a pass.
#[derive(Clone, Debug)]
pub(super) enum Entry {
    /// Receive the activation (forward) or its gradient (backward) across virtual-stage `boundary`.
    Recv {
        /// The virtual-stage boundary.
        boundary: u32,
        /// Forward activation or backward gradient.
        forward: bool,
        /// The phase of the receive's label.
        phase: Phase,
    },
    /// Read the microbatch's tokens or labels (first and last virtual stage, with data loading).
    DataRead,
    /// Pieces (each with its global layer), of one phase.
    Pieces(Vec<(Piece, u16)>, Phase),
    /// A layer's gradient reduction: the collective, (dense, routed experts') parameters, layer.
    GradReduce(CollectiveOp, (u64, u64), u16),
    /// Send across virtual-stage `boundary`.
    Send {
        /// The virtual-stage boundary.
        boundary: u32,
        /// Forward activation or backward gradient.
        forward: bool,
        /// The phase of the send's label.
        phase: Phase,
    },
}

impl Generator<'_> {
    /// Emits a pass's tape for every rank of the stage, in order; `prev` is each rank's last
    /// compute-stream task, and the gradient reductions started are added to `grad_reduces`.
    pub(super) fn play(
        &mut self,
        ctx: &StageCtx,
        tape: Vec<Entry>,
        mb: u32,
        chunk: u32,
        prev: &mut [Option<TaskId>],
        grad_reduces: &mut [Vec<TaskId>],
    ) {
        for entry in tape {
            self.play_entry(ctx, entry, mb, chunk, prev, grad_reduces);
        }
    }

    /// Emits one entry of a tape.
    pub(super) fn play_entry(
        &mut self,
        ctx: &StageCtx,
        entry: Entry,
        mb: u32,
        chunk: u32,
        prev: &mut [Option<TaskId>],
        grad_reduces: &mut [Vec<TaskId>],
    ) {
        match entry {
            Entry::Recv {
                boundary,
                forward,
                phase,
            } => self.recv(ctx, boundary, mb, forward, chunk, phase),
            Entry::DataRead => self.data_read(ctx, mb),
            Entry::Pieces(pieces, phase) => self.emit(ctx, pieces, phase, mb, chunk, prev),
            Entry::GradReduce(op, params, layer) => self.grad_reduce(ctx, op, params, layer, prev, grad_reduces),
            Entry::Send {
                boundary,
                forward,
                phase,
            } => self.send(ctx, boundary, mb, forward, chunk, phase, prev),
        }
    }
}
