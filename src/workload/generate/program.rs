//! A stage's program: the schedule's forward and backward passes (each built as a tape, with ZeRO-3
//! gathers and gradient accumulation, in [`super::tape`]) emitted for every rank of the stage.

use super::{Generator, StageCtx};
use crate::ops::{CollectiveOp, Kernel};
use crate::workload::dispatch::host_ops;
use crate::workload::graph::{CollectiveId, Op, Phase, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;
use crate::workload::schedule::{steps_with_warmup, Step};
use crate::workload::transformer::{grad_accumulation_kernel, Piece};

impl Generator<'_> {
    /// The ranks of a stage, grouped: tensor groups (one per data index) and data groups (one per
    /// tensor index). In representative mode only tensor rank 0 of replica 0 gets tasks, but every
    /// group still lists all its real ranks, so communication is priced for the real group.
    pub(super) fn stage(&mut self, stage: u32) {
        let lay = self.lay;
        let (datas, tensors) = if self.representative { (1, 1) } else { (lay.d, lay.t) };
        let ranks: Vec<u32> = (0..datas)
            .flat_map(|data| (0..tensors).map(move |tensor| lay.rank(RankCoord { tensor, data, stage })))
            .collect();
        let index = |tensor: u32, data: u32| (data * tensors + tensor) as usize;
        let tensor_groups = (0..datas)
            .map(|data| {
                let all = (0..lay.t)
                    .map(|tensor| lay.rank(RankCoord { tensor, data, stage }))
                    .collect();
                (
                    self.g.group(all),
                    (0..tensors).map(|tensor| index(tensor, data)).collect(),
                )
            })
            .collect();
        let data_groups = (0..tensors)
            .map(|tensor| {
                let all = (0..lay.d)
                    .map(|data| lay.rank(RankCoord { tensor, data, stage }))
                    .collect();
                (self.g.group(all), (0..datas).map(|data| index(tensor, data)).collect())
            })
            .collect();
        let (expert_groups, expert_data_groups) = self.expert_groups(stage, datas, tensors, &data_groups);
        let context_groups = self.context_groups(stage, datas, tensors);
        self.ring_recv = vec![None; ranks.len()];
        self.buf.begin(ranks[0]);
        let ctx = StageCtx {
            stage,
            ranks,
            tensor_groups,
            data_groups,
            expert_groups,
            expert_data_groups,
            context_groups,
        };

        let stage_split = (0..self.v)
            .map(|c| self.chunk_params(stage, c))
            .fold((0, 0), |(d, e), (cd, ce)| (d + cd, e + ce));
        let stage_params = stage_split.0 + stage_split.1;
        let mut prev_compute: Vec<Option<TaskId>> = vec![None; ctx.ranks.len()];
        if self.w.checkpoint.load {
            self.checkpoint_io(&ctx, stage_params, false, &mut prev_compute);
        }
        let overlap_ep = self.w.ep_comm_overlap;
        let program = steps_with_warmup(self.w.schedule, stage, lay.p, self.m, self.v, overlap_ep as u32);
        // The last backward of each chunk, where overlapped gradient reduction happens.
        let mut last_backward = vec![None; self.v as usize];
        for (i, st) in program.iter().enumerate() {
            if let Step::Backward { chunk, .. } = *st {
                last_backward[chunk as usize] = Some(i);
            }
        }
        let mut grad_reduces: Vec<Vec<TaskId>> = vec![Vec::new(); ctx.ranks.len()];
        let overlap_grads =
            |i: usize, chunk: u32| self.w.data_parallel.overlap && last_backward[chunk as usize] == Some(i);
        let mut i = 0;
        while i < program.len() {
            match (program[i], program.get(i + 1)) {
                // 1F1B's steady state with the all-to-alls overlapped: the forward and the backward
                // beside it run together
                (
                    Step::Forward { microbatch, chunk },
                    Some(&Step::Backward {
                        microbatch: b,
                        chunk: bc,
                    }),
                ) if overlap_ep => {
                    let backward = (b, bc, overlap_grads(i + 1, bc));
                    self.combined(
                        &ctx,
                        (microbatch, chunk),
                        backward,
                        &mut prev_compute,
                        &mut grad_reduces,
                    );
                    i += 1;
                }
                (Step::Forward { microbatch, chunk }, _) => self.forward(&ctx, microbatch, chunk, &mut prev_compute),
                (Step::Backward { microbatch, chunk }, _) => {
                    let overlap = overlap_grads(i, chunk);
                    self.backward(&ctx, microbatch, chunk, overlap, &mut prev_compute, &mut grad_reduces)
                }
            }
            i += 1;
        }
        self.finish_step(&ctx, stage_split, &mut grad_reduces, &mut prev_compute);
        if self.w.checkpoint.save {
            self.checkpoint_io(&ctx, stage_params, true, &mut prev_compute);
        }
        self.buf.flush(&mut self.g);
    }

    /// A forward pass of microbatch `mb` through `chunk`, emitted.
    pub(super) fn forward(&mut self, ctx: &StageCtx, mb: u32, chunk: u32, prev: &mut [Option<TaskId>]) {
        let tape = self.forward_tape(ctx.stage, mb, chunk);
        self.play(ctx, tape, mb, chunk, prev, &mut []);
    }

    /// A backward pass of microbatch `mb` through `chunk`, emitted (with each layer's gradient
    /// reduction started when `overlap_grads`).
    pub(super) fn backward(
        &mut self,
        ctx: &StageCtx,
        mb: u32,
        chunk: u32,
        overlap_grads: bool,
        prev: &mut [Option<TaskId>],
        grad_reduces: &mut [Vec<TaskId>],
    ) {
        let tape = self.backward_tape(ctx.stage, mb, chunk, overlap_grads);
        self.play(ctx, tape, mb, chunk, prev, grad_reduces);
    }

    /// Emits pieces for every rank of the stage, merging adjacent compute pieces into one task.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit(
        &mut self,
        ctx: &StageCtx,
        pieces: Vec<(Piece, u16)>,
        phase: Phase,
        mb: u32,
        chunk: u32,
        prev: &mut [Option<TaskId>],
    ) {
        // adjacent compute pieces run back to back on the compute stream: merge them into one task,
        // with the host operations that dispatch them
        let mut merged: Vec<(Piece, u16, u32)> = Vec::with_capacity(pieces.len());
        for (piece, layer) in pieces {
            let ops = match &piece {
                Piece::Compute(name, kernels) => host_ops(name, phase, kernels.len()),
                _ => 0,
            };
            match (merged.last_mut(), piece) {
                (Some((Piece::Compute(_, into), _, n)), Piece::Compute(_, kernels)) => {
                    into.extend(kernels);
                    *n += ops;
                }
                (_, piece) => merged.push((piece, layer, ops)),
            }
        }
        for (piece, layer, host_ops) in merged {
            let label = TaskLabel {
                phase,
                chunk: chunk as u8,
                layer,
                microbatch: mb,
            };
            match piece {
                Piece::Compute(name, kernels) => {
                    let op = self.g.op(Op {
                        name: name.into(),
                        kernels,
                        host_ops,
                    });
                    for (i, &r) in ctx.ranks.iter().enumerate() {
                        prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Compute(op), label));
                    }
                }
                Piece::Data(op, bytes) => {
                    let ids = self.blocking_collective(&ctx.ranks, &ctx.data_groups, op, bytes, label, prev);
                    for c in ids {
                        self.g.mark_data_parallel(c);
                    }
                }
                Piece::Tensor(op, bytes) => {
                    self.blocking_collective(&ctx.ranks, &ctx.tensor_groups, op, bytes, label, prev);
                }
                Piece::Expert(op, bytes) => {
                    self.blocking_collective(&ctx.ranks, &ctx.expert_groups, op, bytes, label, prev);
                }
                Piece::ExpertData(op, bytes) => {
                    self.blocking_collective(&ctx.ranks, &ctx.expert_data_groups, op, bytes, label, prev);
                }
                Piece::Experts(name, per_position) => self.experts(ctx, name, per_position, label, prev),
                Piece::Overlapped(op, bytes, name, kernels) => {
                    let on = Beside {
                        op,
                        bytes,
                        userbuffers: true,
                    };
                    self.overlapped_collective(ctx, on, name, kernels, label, prev)
                }
                Piece::AsyncReduce(op, bytes, kernels) => {
                    let on = Beside {
                        op,
                        bytes,
                        userbuffers: false,
                    };
                    self.overlapped_collective(ctx, on, "weight gradient (async reduction)", kernels, label, prev)
                }
                Piece::AwaitGather(bytes) => self.await_gather(ctx, bytes, label, prev),
                Piece::RingSend(bytes) => self.ring_send(ctx, bytes, label, prev),
                Piece::RingWait => self.ring_wait(ctx, label, prev),
            }
        }
    }

    /// A tensor-parallel collective beside a GEMM: the GEMM on the compute stream, the collective
    /// on the tensor-comm stream after the previous piece, and a zero-time join on the compute
    /// stream that waits for both, for what follows.
    fn overlapped_collective(
        &mut self,
        ctx: &StageCtx,
        Beside { op, bytes, userbuffers }: Beside,
        name: &'static str,
        kernels: Vec<Kernel>,
        label: TaskLabel,
        prev: &mut [Option<TaskId>],
    ) {
        let host_ops = kernels.len() as u32;
        let gemm = self.g.op(Op {
            name: name.into(),
            kernels,
            host_ops,
        });
        let join = self.g.delay(crate::units::SimDuration::ZERO);
        for (group, members) in &ctx.tensor_groups {
            let c = self.g.collective(op, *group, bytes);
            if userbuffers {
                self.g.mark_userbuffers(c);
            }
            for &i in members {
                let r = ctx.ranks[i];
                self.buf.task(r, Stream::Compute, TaskKind::Compute(gemm), label);
                let coll = self.buf.task(r, Stream::TensorComm, TaskKind::Collective(c), label);
                if let Some(p) = prev[i] {
                    self.buf.depend(p, coll);
                }
                let joined = self.buf.task(r, Stream::Compute, TaskKind::Delay(join), label);
                self.buf.depend(coll, joined);
                prev[i] = Some(joined);
            }
        }
    }

    /// A data-parallel all-gather of updated weights on the data-parallel stream, free to start at
    /// once, and a zero-time task on the compute stream that waits for it.
    fn await_gather(&mut self, ctx: &StageCtx, bytes: u64, label: TaskLabel, prev: &mut [Option<TaskId>]) {
        let join = self.g.delay(crate::units::SimDuration::ZERO);
        for (group, members) in &ctx.data_groups {
            let c = self.g.collective(CollectiveOp::AllGather, *group, bytes);
            for &i in members {
                let r = ctx.ranks[i];
                let gather = self.buf.task(r, Stream::DataParallel, TaskKind::Collective(c), label);
                let joined = self.buf.task(r, Stream::Compute, TaskKind::Delay(join), label);
                self.buf.depend(gather, joined);
                prev[i] = Some(joined);
            }
        }
    }

    /// One collective per group on `stream` of each present member, after that member's task in
    /// `after`; returns each member's task (by index into `ctx.ranks`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn collective_after(
        &mut self,
        ctx: &StageCtx,
        groups: &[(u32, Vec<usize>)],
        op: CollectiveOp,
        bytes: u64,
        stream: Stream,
        label: TaskLabel,
        after: &[Option<TaskId>],
    ) -> Vec<Option<TaskId>> {
        let mut tasks = vec![None; ctx.ranks.len()];
        for (group, members) in groups {
            let c = self.g.collective(op, *group, bytes);
            for &i in members {
                let t = self.buf.task(ctx.ranks[i], stream, TaskKind::Collective(c), label);
                if let Some(p) = after[i] {
                    self.buf.depend(p, t);
                }
                tasks[i] = Some(t);
            }
        }
        tasks
    }

    /// One collective per group on the compute stream of each present member, which waits for it.
    pub(super) fn blocking_collective(
        &mut self,
        ranks: &[u32],
        groups: &[(u32, Vec<usize>)],
        op: CollectiveOp,
        bytes: u64,
        label: TaskLabel,
        prev: &mut [Option<TaskId>],
    ) -> Vec<CollectiveId> {
        let mut ids = Vec::with_capacity(groups.len());
        for (group, members) in groups {
            let c = self.g.collective(op, *group, bytes);
            for &i in members {
                prev[i] = Some(self.buf.task(ranks[i], Stream::Compute, TaskKind::Collective(c), label));
            }
            ids.push(c);
        }
        ids
    }

    /// `pieces` preceded, under ZeRO-3, by the all-gather of the weights they use (`params`
    /// of them; those of the blocks' linear layers when `linear_layers`, which FP8 training can
    /// gather in FP8).
    pub(super) fn gathered(&self, params: u64, linear_layers: bool, pieces: Vec<Piece>) -> Vec<Piece> {
        if self.zero3() {
            std::iter::once(Piece::Data(
                CollectiveOp::AllGather,
                self.gather_bytes(params, linear_layers),
            ))
            .chain(pieces)
            .collect()
        } else {
            pieces
        }
    }

    /// A backward pass's pieces with, without gradient-accumulation fusion, the kernel that adds
    /// microbatch `mb`'s weight gradients of `params` parameters into the gradients at the end of
    /// its last compute piece (the weight gradients are all computed by then; the input gradient's
    /// all-reduce may still follow). Without a contiguous buffer the first microbatch's gradients
    /// are assigned by autograd, so microbatch 0 adds nothing.
    pub(super) fn accumulated(&self, params: u64, mb: u32, mut pieces: Vec<Piece>) -> Vec<Piece> {
        let dp = &self.w.data_parallel;
        // without a buffer the first microbatch's gradients are assigned, not added (autograd)
        if !dp.gradient_accumulation_fusion && (dp.grad_buffer() || mb > 0) {
            let kernel = grad_accumulation_kernel(params, self.w.data_parallel.grad_dtype.bytes());
            match pieces.iter_mut().rev().find_map(|p| match p {
                Piece::Compute(_, kernels) => Some(kernels),
                _ => None,
            }) {
                Some(kernels) => kernels.push(kernel),
                None => pieces.push(Piece::Compute("grad accumulation", vec![kernel])),
            }
        }
        pieces
    }
}

/// A tensor-parallel collective that runs beside a GEMM: its operation, bytes, and whether
/// Transformer Engine's userbuffers run it (otherwise NCCL).
#[derive(Clone, Copy)]
struct Beside {
    op: CollectiveOp,
    bytes: u64,
    userbuffers: bool,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::workload;
    use crate::ops::Kernel;
    use crate::workload::generate;
    use crate::workload::graph::{Stream, TaskGraph, TaskKind};

    /// Streamed bytes of all compute tasks of rank 0.
    fn rank0_stream_bytes(g: &TaskGraph) -> u64 {
        g.stream(0, Stream::Compute as usize)
            .filter_map(|t| match g.task_kind[t as usize] {
                TaskKind::Compute(op) => Some(&g.ops[op as usize]),
                _ => None,
            })
            .flat_map(|op| op.kernels.iter())
            .map(Kernel::streamed_bytes)
            .sum()
    }

    /// Without gradient-accumulation fusion every backward pass adds its weight gradients into the
    /// gradients: per microbatch and parameter, read the 2-byte gradient and read and write the
    /// accumulated element (2 bytes for fp16, 4 for fp32). Without a contiguous buffer (fp16, as in
    /// SC'21) autograd assigns the first microbatch's gradients, so m - 1 microbatches add; the fp32
    /// buffer adds all m. Rank 0 of p = 2, t = 1 holds 16 layers of 12 h^2 + 13 h parameters and the
    /// 51200 x 3840 embedding; m = 4 microbatches.
    #[test]
    fn unfused_gradient_accumulation_streams_every_parameter_per_microbatch() {
        let base = [
            "workload.parallel.pipeline=2",
            "workload.parallel.data=1",
            "workload.batch.global=4",
        ];
        let params = 16 * (12 * 3840 * 3840 + 13 * 3840) + 51200 * 3840;
        let fused = rank0_stream_bytes(&generate(&workload(
            &[&base[..], &["workload.data_parallel.gradient_accumulation_fusion=true"]].concat(),
        )));
        let fp16 = rank0_stream_bytes(&generate(&workload(&base)));
        assert_eq!(fp16 - fused, 3 * params * (2 + 2 * 2));
        let fp32 = ["workload.data_parallel.grad_dtype=fp32"];
        let fused32 = rank0_stream_bytes(&generate(&workload(
            &[
                &base[..],
                &fp32,
                &["workload.data_parallel.gradient_accumulation_fusion=true"],
            ]
            .concat(),
        )));
        let fp32 = rank0_stream_bytes(&generate(&workload(&[&base[..], &fp32].concat())));
        assert_eq!(fp32 - fused32, 4 * params * (2 + 2 * 4));
    }
}
