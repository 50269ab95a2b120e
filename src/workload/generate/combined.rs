//! Megatron-Core's overlap of the expert-parallel all-to-alls (`ep_comm_overlap`, its
//! `--overlap-moe-expert-parallel-comm` and "combined 1F1B" schedule): in 1F1B's steady state a
//! forward and the backward beside it (of another microbatch: the schedule warms up with one more
//! forward) run together. Each pass is cut after each of its token dispatch and combine all-to-alls
//! into segments; the compute stream runs a segment of the forward, then one of the backward, and
//! so on, while each all-to-all runs on the expert-comm stream once its segment is done and the
//! pass's next segment waits for it. So each pass's all-to-alls run while the other pass computes,
//! and a pass without all-to-alls (a dense chunk) is one segment.

use super::tape::Entry;
use super::{Generator, StageCtx};
use crate::ops::CollectiveOp;
use crate::workload::graph::{Phase, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::transformer::Piece;

/// One item of a pass's body: a piece of a phase, or a layer's gradient reduction.
enum Item {
    Piece(Piece, u16, Phase),
    Reduce(CollectiveOp, (u64, u64), u16),
}

/// A pass being emitted: its microbatch and chunk, its body cut into segments, each rank's last
/// compute-stream task, and the all-to-all its next segment waits for.
struct Pass {
    mb: u32,
    chunk: u32,
    lead: Vec<Entry>,
    segments: std::vec::IntoIter<Vec<Item>>,
    trail: Vec<Entry>,
    prev: Vec<Option<TaskId>>,
    pending: Option<(Vec<Option<TaskId>>, TaskLabel)>,
}

impl Pass {
    /// Splits a tape into what comes before its pieces (receives, data reads), its body cut after
    /// each all-to-all, and what comes after (the send).
    fn new(tape: Vec<Entry>, mb: u32, chunk: u32, prev: &[Option<TaskId>]) -> Self {
        let (mut lead, mut trail, mut segments) = (Vec::new(), Vec::new(), vec![Vec::new()]);
        for entry in tape {
            match entry {
                Entry::Recv { .. } | Entry::DataRead => lead.push(entry),
                Entry::Send { .. } => trail.push(entry),
                Entry::GradReduce(op, params, layer) => {
                    segments.last_mut().unwrap().push(Item::Reduce(op, params, layer))
                }
                Entry::Pieces(pieces, phase) => {
                    for (piece, layer) in pieces {
                        let cut = matches!(piece, Piece::Expert(CollectiveOp::AllToAll, _));
                        segments.last_mut().unwrap().push(Item::Piece(piece, layer, phase));
                        if cut {
                            segments.push(Vec::new());
                        }
                    }
                }
            }
        }
        Pass {
            mb,
            chunk,
            lead,
            segments: segments.into_iter(),
            trail,
            prev: prev.to_vec(),
            pending: None,
        }
    }
}

impl Generator<'_> {
    /// Emits forward `(microbatch, chunk)` and backward `(microbatch, chunk, overlap_grads)`
    /// together, their segments alternating on the compute stream (see the module docs).
    pub(super) fn combined(
        &mut self,
        ctx: &StageCtx,
        forward: (u32, u32),
        backward: (u32, u32, bool),
        prev: &mut [Option<TaskId>],
        grad_reduces: &mut [Vec<TaskId>],
    ) {
        let f_tape = self.forward_tape(ctx.stage, forward.0, forward.1);
        let b_tape = self.backward_tape(ctx.stage, backward.0, backward.1, backward.2);
        let mut passes = [
            Pass::new(f_tape, forward.0, forward.1, prev),
            Pass::new(b_tape, backward.0, backward.1, prev),
        ];
        for pass in &mut passes {
            for entry in std::mem::take(&mut pass.lead) {
                self.play_entry(ctx, entry, pass.mb, pass.chunk, &mut pass.prev, grad_reduces);
            }
        }
        loop {
            let mut emitted = false;
            for pass in &mut passes {
                if let Some(segment) = pass.segments.next() {
                    self.segment(ctx, pass, segment, grad_reduces);
                    emitted = true;
                }
            }
            if !emitted {
                break;
            }
        }
        for pass in &mut passes {
            self.join_pending(ctx, pass);
            for entry in std::mem::take(&mut pass.trail) {
                self.play_entry(ctx, entry, pass.mb, pass.chunk, &mut pass.prev, grad_reduces);
            }
        }
        // what follows comes after both passes' last compute-stream tasks (task ids grow in
        // creation order)
        for (i, p) in prev.iter_mut().enumerate() {
            *p = passes[0].prev[i].max(passes[1].prev[i]);
        }
    }

    /// Emits one segment of a pass: it waits for the pass's last all-to-all, runs its pieces on
    /// the compute stream and starts its closing all-to-all on the expert-comm stream.
    fn segment(&mut self, ctx: &StageCtx, pass: &mut Pass, segment: Vec<Item>, grad_reduces: &mut [Vec<TaskId>]) {
        self.join_pending(ctx, pass);
        let mut run: Vec<(Piece, u16)> = Vec::new();
        let mut run_phase = Phase::Forward;
        for item in segment {
            match item {
                Item::Piece(Piece::Expert(CollectiveOp::AllToAll, bytes), layer, phase) => {
                    self.flush_run(ctx, pass, &mut run, run_phase);
                    let label = TaskLabel {
                        phase,
                        chunk: pass.chunk as u8,
                        layer,
                        microbatch: pass.mb,
                    };
                    let groups = &ctx.expert_groups;
                    let a2a = self.collective_after(
                        ctx,
                        groups,
                        CollectiveOp::AllToAll,
                        bytes,
                        Stream::ExpertComm,
                        label,
                        &pass.prev,
                    );
                    pass.pending = Some((a2a, label));
                }
                Item::Piece(piece, layer, phase) => {
                    if phase != run_phase {
                        self.flush_run(ctx, pass, &mut run, run_phase);
                        run_phase = phase;
                    }
                    run.push((piece, layer));
                }
                Item::Reduce(op, params, layer) => {
                    self.flush_run(ctx, pass, &mut run, run_phase);
                    self.grad_reduce(ctx, op, params, layer, &pass.prev, grad_reduces);
                }
            }
        }
        self.flush_run(ctx, pass, &mut run, run_phase);
    }

    /// Emits the pieces gathered so far.
    fn flush_run(&mut self, ctx: &StageCtx, pass: &mut Pass, run: &mut Vec<(Piece, u16)>, phase: Phase) {
        if !run.is_empty() {
            self.emit(ctx, std::mem::take(run), phase, pass.mb, pass.chunk, &mut pass.prev);
        }
    }

    /// Makes the pass's compute stream wait for its last all-to-all: a zero-time task there.
    fn join_pending(&mut self, ctx: &StageCtx, pass: &mut Pass) {
        let Some((a2a, label)) = pass.pending.take() else {
            return;
        };
        let zero = self.zero_delay();
        for (i, &r) in ctx.ranks.iter().enumerate() {
            let join = self.buf.task(r, Stream::Compute, TaskKind::Delay(zero), label);
            if let Some(t) = a2a[i] {
                self.buf.depend(t, join);
            }
            pass.prev[i] = Some(join);
        }
    }
}
