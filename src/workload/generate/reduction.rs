//! After the backward passes: the data-parallel gradient reduction (all-reduce, or reduce-scatter
//! under ZeRO), the tensor-parallel all-reduce of the replicated weights' gradients under sequence
//! parallelism, the tied-embedding sync between first and last stage, the optimizer step and
//! ZeRO's weight all-gather.

use super::{Generator, StageCtx, NONE_MB, NO_LAYER};
use crate::ops::CollectiveOp;
use crate::workload::graph::{Op, Phase, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;
use crate::workload::params::sequence_parallel_params;
use crate::workload::transformer::{data_parallel_kernels, embedding_params_per_rank, optimizer_phases, Piece};

impl Generator<'_> {
    /// Everything between the last backward pass and the checkpoint: the gradient reduction when it
    /// is not overlapped with the backward passes, the embedding sync, the optimizer step (1/d of
    /// the parameters under ZeRO) and, under ZeRO-1/2, the all-gather of the updated weights.
    pub(super) fn finish_step(
        &mut self,
        ctx: &StageCtx,
        (stage_dense, stage_experts): (u64, u64),
        grad_reduces: &mut [Vec<TaskId>],
        prev: &mut [Option<TaskId>],
    ) {
        let dp = &self.w.data_parallel;
        let stage_params = stage_dense + stage_experts;
        let (grad_bytes, buffer) = (dp.grad_dtype.bytes(), dp.grad_buffer());
        if !dp.overlap && !self.zero3() {
            if self.zero() >= 1 {
                self.grad_reduce(
                    ctx,
                    CollectiveOp::ReduceScatter,
                    (stage_dense, stage_experts),
                    NO_LAYER,
                    prev,
                    grad_reduces,
                );
            } else {
                self.local_ddp_reduce(ctx, grad_bytes, buffer, prev);
            }
        }
        self.sequence_parallel_sync(ctx, grad_reduces, prev);
        self.embedding_sync(ctx, grad_reduces, prev);
        // ZeRO shards the optimizer step over the data-parallel ranks
        let opt_params = if self.zero() >= 1 {
            stage_dense.div_ceil(self.lay.d as u64) + stage_experts.div_ceil(self.expert_data_size() as u64)
        } else {
            stage_params
        };
        let [unscale, norm, adam] = optimizer_phases(opt_params, grad_bytes, buffer);
        let label = TaskLabel {
            phase: Phase::Optimizer,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: NONE_MB,
        };
        let op = self.g.op(Op {
            name: "optimizer".into(),
            host_ops: crate::workload::dispatch::host_ops("unscale", Phase::Optimizer, unscale.len()),
            kernels: unscale,
        });
        let kinds = vec![TaskKind::Compute(op); ctx.ranks.len()];
        self.after_grad_reduces(ctx, &kinds, label, grad_reduces, prev);
        // found-inf, then the gradient norm for clipping, each all-reduced over the model-parallel group
        self.model_parallel_scalar(ctx, 0, label, prev);
        let pieces = vec![(Piece::Compute("grad norm", norm), NO_LAYER)];
        self.emit(ctx, pieces, Phase::Optimizer, NONE_MB, 0, prev);
        self.model_parallel_scalar(ctx, 1, label, prev);
        let pieces = vec![(Piece::Compute("optimizer", adam), NO_LAYER)];
        self.emit(ctx, pieces, Phase::Optimizer, NONE_MB, 0, prev);
        if matches!(self.zero(), 1 | 2) && !self.w.data_parallel.overlap_param_gather {
            // every rank updated 1/d of the weights: all-gather them (16-bit, the blocks' linear
            // layers' in FP8 where asked; the routed experts' over their expert-data-parallel group)
            let mut pieces = Vec::new();
            if self.lay.d > 1 {
                let embeddings = self.stage_embedding_params(ctx.stage);
                let bytes = self.gather_bytes(embeddings, false) + self.gather_bytes(stage_dense - embeddings, true);
                pieces.push((Piece::Data(CollectiveOp::AllGather, bytes), NO_LAYER));
            }
            pieces.extend(self.expert_piece(CollectiveOp::AllGather, 2 * stage_experts));
            self.emit(ctx, pieces, Phase::Optimizer, NONE_MB, 0, prev);
        }
    }

    /// Megatron-LM's local DDP after the last backward pass, once per model chunk and on the
    /// compute stream (nothing overlaps it): the kernels before (flatten, divide), the all-reduce of
    /// the chunk's gradients over the data-parallel group (none with one replica), the copy back.
    fn local_ddp_reduce(&mut self, ctx: &StageCtx, grad_bytes: u64, buffer: bool, prev: &mut [Option<TaskId>]) {
        for chunk in 0..self.v {
            let (params, experts) = self.chunk_params(ctx.stage, chunk);
            let (before, after) = data_parallel_kernels(params + experts, grad_bytes, buffer);
            let mut pieces = vec![(Piece::Compute("grad flatten", before), NO_LAYER)];
            if self.lay.d > 1 {
                pieces.push((Piece::Data(CollectiveOp::AllReduce, params * grad_bytes), NO_LAYER));
            }
            pieces.extend(self.expert_piece(CollectiveOp::AllReduce, experts * grad_bytes));
            if !after.is_empty() {
                pieces.push((Piece::Compute("grad copy back", after), NO_LAYER));
            }
            self.emit(ctx, pieces, Phase::GradReduce, NONE_MB, chunk, prev);
        }
    }

    /// One 4-byte all-reduce (`which`: 0 found-inf, 1 gradient norm) over each rank's model-parallel
    /// group (every tensor rank of every stage of its replica), blocking the compute stream; none
    /// when that group is one rank.
    fn model_parallel_scalar(&mut self, ctx: &StageCtx, which: usize, label: TaskLabel, prev: &mut [Option<TaskId>]) {
        let lay = self.lay;
        if lay.t * lay.p == 1 {
            return;
        }
        for (i, &rank) in ctx.ranks.iter().enumerate() {
            let data = lay.coord(rank).data;
            let slot = data as usize * 2 + which;
            if self.model_parallel_scalars[slot] == u32::MAX {
                let ranks = (0..lay.p)
                    .flat_map(|stage| (0..lay.t).map(move |tensor| lay.rank(RankCoord { tensor, data, stage })))
                    .collect();
                let group = self.g.group(ranks);
                let c = self.g.collective(CollectiveOp::AllReduce, group, 4);
                self.g.mark_cross_stage(c);
                self.model_parallel_scalars[slot] = c;
            }
            let c = self.model_parallel_scalars[slot];
            prev[i] = Some(self.buf.task(rank, Stream::Compute, TaskKind::Collective(c), label));
        }
    }

    /// The input embedding (first stage) and the output layer (last stage) share one weight: after
    /// the backward passes, each (tensor, data) pair of them all-reduces its embedding gradient
    /// (V h / t parameters) after the data-parallel reduction and before the optimizer step, as
    /// Megatron-LM does; so does the last stage's copy of the input embedding that multi-token
    /// prediction uses. Nothing with one stage, without a vocabulary, or with untied embeddings and
    /// no multi-token prediction.
    pub(super) fn embedding_sync(&mut self, ctx: &StageCtx, grad_reduces: &[Vec<TaskId>], prev: &mut [Option<TaskId>]) {
        let (lay, last) = (self.lay, self.lay.p - 1);
        // tied, or a copy of the input embedding on the last stage for multi-token prediction
        let shared = self.w.model.tied_embeddings || self.w.model.mtp_layers > 0;
        if lay.p == 1 || self.w.model.vocab == 0 || !shared || (ctx.stage != 0 && ctx.stage != last) {
            return;
        }
        let bytes = embedding_params_per_rank(&self.w.model, lay.t) * self.w.data_parallel.grad_dtype.bytes();
        let label = TaskLabel {
            phase: Phase::GradReduce,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: NONE_MB,
        };
        let mut kinds = Vec::with_capacity(ctx.ranks.len());
        for &rank in &ctx.ranks {
            let RankCoord { tensor, data, .. } = lay.coord(rank);
            let slot = (data * lay.t + tensor) as usize;
            if self.embedding_syncs[slot] == u32::MAX {
                let pair = [0, last].map(|stage| lay.rank(RankCoord { tensor, data, stage }));
                let group = self.g.group(pair.to_vec());
                let c = self.g.collective(CollectiveOp::AllReduce, group, bytes);
                self.g.mark_cross_stage(c);
                self.embedding_syncs[slot] = c;
            }
            kinds.push(TaskKind::Collective(self.embedding_syncs[slot]));
        }
        self.after_grad_reduces(ctx, &kinds, label, grad_reduces, prev);
    }

    /// With sequence parallelism over t > 1 ranks, the gradients of the weights every tensor rank
    /// holds whole ([`sequence_parallel_params`] of the stage's layers, the prediction modules' on
    /// the last) are all-reduced over each tensor group after the data-parallel reduction and
    /// before the embedding sync and the optimizer, as Megatron-Core's `finalize_model_grads` does.
    fn sequence_parallel_sync(&mut self, ctx: &StageCtx, grad_reduces: &[Vec<TaskId>], prev: &mut [Option<TaskId>]) {
        if !self.shape.sp {
            return;
        }
        let m = &self.w.model;
        let last = self.lay.p * self.v - 1;
        let params: u64 = (0..self.v)
            .map(|c| self.virtual_stage(ctx.stage, c))
            .flat_map(|vs| {
                let (first, n) = self.w.chunk_layers(vs);
                let mtp = if vs == last { m.mtp_layers } else { 0 };
                (first..first + n).chain(m.layers..m.layers + mtp)
            })
            .map(|l| sequence_parallel_params(m, l))
            .sum();
        let bytes = params * self.w.data_parallel.grad_dtype.bytes();
        let label = TaskLabel {
            phase: Phase::GradReduce,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: NONE_MB,
        };
        let mut kinds = vec![TaskKind::Delay(0); ctx.ranks.len()];
        for (group, members) in &ctx.tensor_groups {
            let c = self.g.collective(CollectiveOp::AllReduce, *group, bytes);
            for &i in members {
                kinds[i] = TaskKind::Collective(c);
            }
        }
        self.after_grad_reduces(ctx, &kinds, label, grad_reduces, prev);
    }

    /// One compute-stream task per rank of the stage (`kinds[i]` for rank i) that waits for that
    /// rank's data-parallel gradient reductions.
    pub(super) fn after_grad_reduces(
        &mut self,
        ctx: &StageCtx,
        kinds: &[TaskKind],
        label: TaskLabel,
        grad_reduces: &[Vec<TaskId>],
        prev: &mut [Option<TaskId>],
    ) {
        for (i, (&rank, &kind)) in ctx.ranks.iter().zip(kinds).enumerate() {
            let task = self.buf.task(rank, Stream::Compute, kind, label);
            for &gr in &grad_reduces[i] {
                self.buf.depend(gr, task);
            }
            prev[i] = Some(task);
        }
    }

    /// Ranks that hold the same routed experts: d c / e, or t d c / e with whole experts.
    pub(super) fn expert_data_size(&self) -> u32 {
        self.expert_lay.expert_data_size()
    }

    /// A blocking collective of `bytes` of the routed experts over their expert-data-parallel
    /// group; none when there is nothing to move or no one to move it to.
    fn expert_piece(&self, op: CollectiveOp, bytes: u64) -> Option<(Piece, u16)> {
        (bytes > 0 && self.expert_data_size() > 1).then_some((Piece::ExpertData(op, bytes), NO_LAYER))
    }

    /// Data-parallel reduction (all-reduce, or reduce-scatter under ZeRO) of `(dense, experts)`
    /// gradients on the data-parallel stream, after `prev`: the dense ones over the data-parallel
    /// group, the routed experts' over their expert-data-parallel group.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn grad_reduce(
        &mut self,
        ctx: &StageCtx,
        op: CollectiveOp,
        (params, experts): (u64, u64),
        layer: u16,
        prev: &[Option<TaskId>],
        out: &mut [Vec<TaskId>],
    ) {
        let grad_bytes = self.w.data_parallel.grad_dtype.bytes();
        let label = TaskLabel {
            phase: Phase::GradReduce,
            chunk: 0,
            layer,
            microbatch: NONE_MB,
        };
        // with whole experts the expert-data-parallel group can span tensor ranks of one replica
        let mut reductions = Vec::new();
        if self.lay.d > 1 {
            reductions.push((&ctx.data_groups, params * grad_bytes));
        }
        if experts > 0 && self.expert_data_size() > 1 {
            reductions.push((&ctx.expert_data_groups, experts * grad_bytes));
        }
        for (groups, bytes) in reductions {
            let tasks = self.collective_after(ctx, groups, op, bytes, Stream::DataParallel, label, prev);
            for (i, task) in tasks.into_iter().enumerate() {
                out[i].extend(task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::workload;
    use crate::ops::CollectiveOp;
    use crate::workload::generate;
    use crate::workload::graph::TaskGraph;
    use crate::workload::layout::Layout;
    use crate::workload::transformer::layer_params_per_rank;

    /// With p > 1 the tied embedding's gradient is all-reduced between each first-stage rank and the
    /// last-stage rank with the same tensor and data index: t x d = 2 x 2 pairs here, each moving the
    /// rank's V h / t = 51200 x 3840 / 2 gradients of 2 bytes. None without a vocabulary.
    #[test]
    fn tied_embedding_gradients_are_all_reduced_between_first_and_last_stage() {
        let base = [
            "workload.parallel.tensor=2",
            "workload.parallel.pipeline=4",
            "workload.parallel.data=2",
            "workload.batch.global=8",
        ];
        let w = workload(&base);
        let lay = Layout::of(&w);
        // (collective index) of the all-reduces between a first-stage and a last-stage rank
        let syncs = |g: &TaskGraph| -> Vec<usize> {
            (0..g.collectives.len())
                .filter(|&i| {
                    let ranks = &g.groups[g.collectives[i].group as usize];
                    let stages: Vec<u32> = ranks.iter().map(|&r| lay.coord(r).stage).collect();
                    stages == [0, 3]
                })
                .collect()
        };
        let g = generate(&w);
        let found = syncs(&g);
        assert_eq!(found.len(), 4);
        for &i in &found {
            let c = &g.collectives[i];
            assert_eq!((c.op, c.bytes), (CollectiveOp::AllReduce, 51200 * 3840 / 2 * 2));
            assert_eq!(g.collective_tasks(i as u32).len(), 2, "both ends of the pair take part");
        }
        let no_vocab = generate(&workload(&[&base[..], &["workload.model.vocab=0"]].concat()));
        assert!(syncs(&no_vocab).is_empty());
    }

    /// ZeRO-3 over 8 data-parallel ranks, one microbatch, no embedding (vocab 0): the data-parallel
    /// collectives move 3P elements of 16-bit data (ZeRO: all-gather of the weights in the forward
    /// and in the backward pass, reduce-scatter of the gradients), P = 32 layers x (12 h^2 + 13 h).
    #[test]
    fn zero3_moves_three_times_the_parameters() {
        let w = workload(&[
            "workload.model.vocab=0",
            "workload.parallel.pipeline=1",
            "workload.parallel.data=8",
            "workload.batch.global=8",
            "workload.data_parallel.zero_stage=3",
        ]);
        let g = generate(&w);
        let p = 32 * layer_params_per_rank(&w.model, 1);
        let dp_bytes: u64 = g
            .collectives
            .iter()
            .filter(|c| g.groups[c.group as usize].len() == 8)
            .map(|c| c.bytes)
            .sum();
        assert_eq!(dp_bytes, 3 * 2 * p);
        let ops = |op| g.collectives.iter().filter(|c| c.op == op).count();
        assert_eq!(
            ops(CollectiveOp::AllGather),
            2 * 32,
            "forward and backward gather per layer"
        );
        assert_eq!(ops(CollectiveOp::ReduceScatter), 32);
        assert_eq!(ops(CollectiveOp::AllReduce), 0);
    }

    /// Megatron-LM 2021's local DDP, interleaved with v = 2 chunks over t = 2, p = 2, d = 2: one
    /// fp16 all-reduce per chunk and data-parallel group (2 chunks x 2 stages x 2 tensor ranks = 8),
    /// each of that chunk's parameters; the optimizer's found-inf and gradient-norm all-reduces
    /// (4 bytes) once per replica over its t x p = 4 ranks, spanning stages; one 4-byte loss
    /// all-reduce per microbatch over each last-stage data group (m = 4 microbatches x 2 tensor ranks).
    #[test]
    fn megatron_2021_collectives() {
        let w = workload(&[
            "workload.parallel.tensor=2",
            "workload.parallel.pipeline=2",
            "workload.parallel.data=2",
            "workload.batch.global=8",
            "workload.schedule=interleaved",
            "workload.parallel.interleave=2",
        ]);
        let g = generate(&w);
        let lay = Layout::of(&w);
        let group = |c: &crate::workload::graph::Collective| &g.groups[c.group as usize];
        let data_parallel: Vec<_> = g
            .collectives
            .iter()
            .filter(|c| c.bytes > 4 && c.op == CollectiveOp::AllReduce)
            .filter(|c| group(c).iter().map(|&r| lay.coord(r).data).collect::<Vec<_>>() == [0, 1])
            .collect();
        assert_eq!(data_parallel.len(), 8);
        let chunk = 8 * layer_params_per_rank(&w.model, 2);
        assert!(data_parallel
            .iter()
            .all(|c| c.bytes == 2 * chunk || c.bytes == 2 * (chunk + 51200 * 3840 / 2)));
        let scalars: Vec<_> = g.collectives.iter().filter(|c| c.bytes == 4).collect();
        let model_parallel: Vec<_> = scalars.iter().filter(|c| group(c).len() == 4).collect();
        assert_eq!(model_parallel.len(), 2 * 2);
        assert!(model_parallel.iter().all(|c| c.cross_stage));
        let losses = scalars.iter().filter(|c| group(c).len() == 2 && !c.cross_stage).count();
        assert_eq!(losses, 4 * 2);
    }

    /// The data-parallel kernels run with one replica too: flatten, divide and copy back stream
    /// 3 x 2 x 2 bytes per parameter of fp16 gradients; with an fp32 buffer only the divide (8).
    #[test]
    fn local_ddp_kernels() {
        let p = 1000;
        let sum = |k: Vec<crate::ops::Kernel>| k.iter().map(crate::ops::Kernel::streamed_bytes).sum::<u64>();
        let (before, after) = crate::workload::transformer::data_parallel_kernels(p, 2, false);
        assert_eq!(sum(before) + sum(after), 12 * p);
        let (before, after) = crate::workload::transformer::data_parallel_kernels(p, 4, true);
        assert_eq!(sum(before) + sum(after), 8 * p);
    }
}
