//! Builds the task graph of one Megatron-style training iteration from a validated workload.
//!
//! Ranks follow Megatron's order (tensor fastest, then data, then pipeline):
//! `rank = tensor_index + t * (data_index + d * stage)`, so tensor groups sit inside a node.
//! Each stage's schedule is walked once and every step is emitted for all t x d ranks of the
//! stage, so collective and transfer ids are shared by construction.

use super::graph::{CollectiveOp, GraphBuilder, Op, Phase, Stream, TaskGraph, TaskId, TaskKind, TaskLabel};
use super::schedule::{steps, Step};
use super::transformer::{
    embedding_params_per_rank, grad_accumulation_kernel, layer_params_per_rank, optimizer_kernels, LayerShape, Piece,
};
use crate::config::WorkloadSpec;

/// Position of a rank in the (tensor, data, stage) grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankCoord {
    /// Index in the tensor group.
    pub tensor: u32,
    /// Data-parallel replica.
    pub data: u32,
    /// Pipeline stage.
    pub stage: u32,
}

/// The rank layout of a workload.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Tensor degree.
    pub t: u32,
    /// Pipeline degree.
    pub p: u32,
    /// Data degree.
    pub d: u32,
}

impl Layout {
    /// Layout of a workload.
    pub fn of(w: &WorkloadSpec) -> Self {
        Layout {
            t: w.parallel.tensor,
            p: w.parallel.pipeline,
            d: w.parallel.data,
        }
    }
    /// Rank of a coordinate.
    pub fn rank(&self, c: RankCoord) -> u32 {
        c.tensor + self.t * (c.data + self.d * c.stage)
    }
    /// Coordinate of a rank.
    pub fn coord(&self, rank: u32) -> RankCoord {
        RankCoord {
            tensor: rank % self.t,
            data: (rank / self.t) % self.d,
            stage: rank / (self.t * self.d),
        }
    }
    /// Total ranks.
    pub fn ranks(&self) -> u32 {
        self.t * self.p * self.d
    }
}

/// Generates one training iteration, every rank with its tasks.
pub fn generate(w: &WorkloadSpec) -> TaskGraph {
    Generator::new(w, false).run()
}

/// Generates one training iteration with tasks only on tensor rank 0 of replica 0 of each stage.
/// All ranks run the same program, so with a contention-free network model the timeline of those
/// ranks, and every metric, equal the full simulation's, at 1/(t d) of the cost.
pub fn generate_representative(w: &WorkloadSpec) -> TaskGraph {
    Generator::new(w, true).run()
}

struct Generator<'a> {
    w: &'a WorkloadSpec,
    lay: Layout,
    shape: LayerShape,
    m: u32,
    v: u32,
    layers_per_chunk: u32,
    g: GraphBuilder,
    /// Tasks of the stage being generated, flushed to `g` in (rank, stream) order.
    buf: StageBuffer,
    /// Only one rank per stage gets tasks.
    representative: bool,
    /// The zero-length delay that makes the compute stream wait for a data read (created on first use).
    zero_delay: Option<u32>,
    /// (virtual stage boundary, microbatch, direction, data, tensor) -> transfer id
    /// Transfer id by (virtual stage boundary, microbatch, direction, data, tensor), dense; created
    /// by whichever of the send and the receive is generated first.
    transfers: Vec<u32>,
    /// Collective id of the tied-embedding gradient all-reduce between the first and the last
    /// stage, by (data, tensor), dense; created by the first stage.
    embedding_syncs: Vec<u32>,
}

const NONE_MB: u32 = u32::MAX;
const NO_LAYER: u16 = u16::MAX;

impl<'a> Generator<'a> {
    fn new(w: &'a WorkloadSpec, representative: bool) -> Self {
        let lay = Layout::of(w);
        let v = w.chunks();
        Generator {
            w,
            lay,
            shape: LayerShape::new(&w.model, w.batch.micro, w.parallel.tensor, w.parallel.sequence_parallel),
            m: w.microbatches() as u32,
            v,
            layers_per_chunk: w.model.layers / (lay.p * v),
            g: GraphBuilder::with_capacity(
                lay.ranks(),
                estimate_tasks(w) / if representative { (lay.t * lay.d) as usize } else { 1 },
            ),
            buf: StageBuffer::default(),
            representative,
            zero_delay: None,
            transfers: vec![u32::MAX; ((lay.p * v - 1) * w.microbatches() as u32 * 2 * lay.d * lay.t) as usize],
            embedding_syncs: vec![u32::MAX; (lay.d * lay.t) as usize],
        }
    }

    fn run(mut self) -> TaskGraph {
        for stage in 0..self.lay.p {
            self.stage(stage);
        }
        self.g.finish()
    }

    /// The ranks of a stage, grouped: tensor groups (one per data index) and data groups (one per
    /// tensor index). In representative mode only tensor rank 0 of replica 0 gets tasks, but every
    /// group still lists all its real ranks, so communication is priced for the real group.
    fn stage(&mut self, stage: u32) {
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
        self.buf.begin(ranks[0]);
        let ctx = StageCtx {
            stage,
            ranks,
            tensor_groups,
            data_groups,
        };

        let stage_params: u64 = (0..self.v).map(|c| self.chunk_params(stage, c)).sum();
        let mut prev_compute: Vec<Option<TaskId>> = vec![None; ctx.ranks.len()];
        if self.w.checkpoint.load {
            self.checkpoint_io(&ctx, stage_params, false, &mut prev_compute);
        }
        let program = steps(self.w.schedule, stage, lay.p, self.m, self.v);
        // The last backward of each chunk, where overlapped gradient reduction happens.
        let mut last_backward = vec![None; self.v as usize];
        for (i, st) in program.iter().enumerate() {
            if let Step::Backward { chunk, .. } = *st {
                last_backward[chunk as usize] = Some(i);
            }
        }
        let mut grad_reduces: Vec<Vec<TaskId>> = vec![Vec::new(); ctx.ranks.len()];
        for (i, st) in program.iter().enumerate() {
            match *st {
                Step::Forward { microbatch, chunk } => self.forward(&ctx, microbatch, chunk, &mut prev_compute),
                Step::Backward { microbatch, chunk } => {
                    let overlap = self.w.data_parallel.overlap && last_backward[chunk as usize] == Some(i);
                    self.backward(&ctx, microbatch, chunk, overlap, &mut prev_compute, &mut grad_reduces)
                }
            }
        }
        if !self.w.data_parallel.overlap && !self.zero3() {
            let op = if self.zero() >= 1 {
                CollectiveOp::ReduceScatter
            } else {
                CollectiveOp::AllReduce
            };
            self.grad_reduce(&ctx, op, stage_params, NO_LAYER, &prev_compute, &mut grad_reduces);
        }
        self.embedding_sync(&ctx, &grad_reduces, &mut prev_compute);
        // ZeRO shards the optimizer step over the data-parallel ranks
        let opt_params = if self.zero() >= 1 {
            stage_params.div_ceil(self.lay.d as u64)
        } else {
            stage_params
        };
        let op = self.g.op(Op {
            name: "optimizer".into(),
            kernels: optimizer_kernels(opt_params),
        });
        let label = TaskLabel {
            phase: Phase::Optimizer,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: NONE_MB,
        };
        let kinds = vec![TaskKind::Compute(op); ctx.ranks.len()];
        self.after_grad_reduces(&ctx, &kinds, label, &grad_reduces, &mut prev_compute);
        if matches!(self.zero(), 1 | 2) {
            // every rank updated 1/d of the weights: all-gather the 16-bit weights
            let pieces = vec![(Piece::Data(CollectiveOp::AllGather, 2 * stage_params), NO_LAYER)];
            self.emit(&ctx, pieces, Phase::Optimizer, NONE_MB, 0, &mut prev_compute);
        }
        if self.w.checkpoint.save {
            self.checkpoint_io(&ctx, stage_params, true, &mut prev_compute);
        }
        self.buf.flush(&mut self.g);
    }

    /// The input embedding (first stage) and the output layer (last stage) share one weight: after
    /// the backward passes, each (tensor, data) pair of them all-reduces its embedding gradient
    /// (V h / t parameters) after the data-parallel reduction and before the optimizer step, as
    /// Megatron-LM does. Nothing with one stage or without a vocabulary.
    fn embedding_sync(&mut self, ctx: &StageCtx, grad_reduces: &[Vec<TaskId>], prev: &mut [Option<TaskId>]) {
        let (lay, last) = (self.lay, self.lay.p - 1);
        if lay.p == 1 || self.w.model.vocab == 0 || (ctx.stage != 0 && ctx.stage != last) {
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
                self.embedding_syncs[slot] = self.g.collective(CollectiveOp::AllReduce, group, bytes);
            }
            kinds.push(TaskKind::Collective(self.embedding_syncs[slot]));
        }
        self.after_grad_reduces(ctx, &kinds, label, grad_reduces, prev);
    }

    /// One compute-stream task per rank of the stage (`kinds[i]` for rank i) that waits for that
    /// rank's data-parallel gradient reductions.
    fn after_grad_reduces(
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

    /// Checkpoint I/O of a stage, blocking the compute stream: replica 0's ranks write their shards
    /// (save), or read them and broadcast them to the other replicas (load). A shard is the
    /// Megatron checkpoint state of the rank's parameters (14 bytes each).
    fn checkpoint_io(&mut self, ctx: &StageCtx, params: u64, write: bool, prev: &mut [Option<TaskId>]) {
        let bytes = (crate::model::storage::CHECKPOINT_BYTES_PER_PARAM as u64) * params;
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
            let x = self.g.storage(r, bytes, write);
            prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Storage(x), label));
        }
        if !write && self.lay.d > 1 {
            self.blocking_collective(
                &ctx.ranks,
                &ctx.data_groups,
                CollectiveOp::Broadcast,
                bytes,
                label,
                prev,
            );
        }
    }

    /// Reads a microbatch's tokens or labels (b s int32) on the I/O stream, and makes the compute
    /// stream wait for it.
    fn data_read(&mut self, ctx: &StageCtx, mb: u32) {
        let bytes = 4 * self.w.batch.micro * self.w.model.seq_len;
        let label = TaskLabel {
            phase: Phase::Io,
            chunk: 0,
            layer: NO_LAYER,
            microbatch: mb,
        };
        let zero = match self.zero_delay {
            Some(z) => z,
            None => *self.zero_delay.insert(self.g.delay(crate::units::SimDuration::ZERO)),
        };
        for &r in &ctx.ranks {
            let x = self.g.storage(r, bytes, false);
            let read = self.buf.task(r, Stream::Io, TaskKind::Storage(x), label);
            let wait = self.buf.task(r, Stream::Compute, TaskKind::Delay(zero), label);
            self.buf.depend(read, wait);
        }
    }

    /// Parameters per tensor rank of one layer and of the (tied) embedding.
    fn param_counts(&self) -> (u64, u64) {
        let t = self.w.parallel.tensor;
        (
            layer_params_per_rank(&self.w.model, t),
            embedding_params_per_rank(&self.w.model, t),
        )
    }

    fn zero(&self) -> u8 {
        if self.lay.d > 1 {
            self.w.data_parallel.zero_stage
        } else {
            0
        }
    }

    /// ZeRO-3 / FSDP: weights are sharded, gathered before every use and freed after.
    fn zero3(&self) -> bool {
        self.zero() >= 3
    }

    /// `pieces` preceded, under ZeRO-3, by the all-gather of the 16-bit weights they use.
    fn gathered(&self, params: u64, pieces: Vec<Piece>) -> Vec<Piece> {
        if self.zero3() {
            std::iter::once(Piece::Data(CollectiveOp::AllGather, 2 * params))
                .chain(pieces)
                .collect()
        } else {
            pieces
        }
    }

    /// A backward pass's pieces with, without gradient-accumulation fusion, the kernel that adds
    /// this microbatch's weight gradients of `params` parameters into the buffer at the end of its
    /// last compute piece (the weight gradients are all computed by then; the input gradient's
    /// all-reduce may still follow).
    fn accumulated(&self, params: u64, mut pieces: Vec<Piece>) -> Vec<Piece> {
        if !self.w.data_parallel.gradient_accumulation_fusion {
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

    fn virtual_stage(&self, stage: u32, chunk: u32) -> u32 {
        chunk * self.lay.p + stage
    }

    fn chunk_params(&self, stage: u32, chunk: u32) -> u64 {
        let vs = self.virtual_stage(stage, chunk);
        let last = self.lay.p * self.v - 1;
        let mut params = self.layers_per_chunk as u64 * layer_params_per_rank(&self.w.model, self.w.parallel.tensor);
        if vs == 0 || vs == last {
            params += embedding_params_per_rank(&self.w.model, self.w.parallel.tensor);
        }
        params
    }

    fn forward(&mut self, ctx: &StageCtx, mb: u32, chunk: u32, prev: &mut [Option<TaskId>]) {
        let vs = self.virtual_stage(ctx.stage, chunk);
        let last = self.lay.p * self.v - 1;
        let first_layer = vs * self.layers_per_chunk;
        if vs > 0 {
            self.recv(ctx, vs - 1, mb, true, chunk, Phase::Forward);
        }
        if self.w.data_loading && (vs == 0 || vs == last) {
            self.data_read(ctx, mb);
        }
        let (layer_params, embedding_params) = self.param_counts();
        let mut pieces: Vec<(Piece, u16)> = Vec::new();
        if vs == 0 && self.w.model.vocab > 0 {
            let embedding = self.gathered(embedding_params, self.shape.embedding_forward());
            pieces.extend(embedding.into_iter().map(|p| (p, first_layer as u16)));
        }
        for l in 0..self.layers_per_chunk {
            let layer = self.gathered(layer_params, self.shape.forward());
            pieces.extend(layer.into_iter().map(|p| (p, (first_layer + l) as u16)));
        }
        if vs == last && self.w.model.vocab > 0 {
            let logits = self.gathered(embedding_params, self.shape.logits_forward());
            pieces.extend(
                logits
                    .into_iter()
                    .map(|p| (p, (first_layer + self.layers_per_chunk - 1) as u16)),
            );
        }
        self.emit(ctx, pieces, Phase::Forward, mb, chunk, prev);
        if vs < last {
            self.send(ctx, vs, mb, true, chunk, Phase::Forward, prev);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        ctx: &StageCtx,
        mb: u32,
        chunk: u32,
        overlap_grads: bool,
        prev: &mut [Option<TaskId>],
        grad_reduces: &mut [Vec<TaskId>],
    ) {
        let vs = self.virtual_stage(ctx.stage, chunk);
        let last = self.lay.p * self.v - 1;
        let first_layer = vs * self.layers_per_chunk;
        if vs < last {
            self.recv(ctx, vs, mb, false, chunk, Phase::Backward);
        }
        let (layer_params, embedding_params) = self.param_counts();
        if vs == last && self.w.model.vocab > 0 {
            let layer = (first_layer + self.layers_per_chunk - 1) as u16;
            let logits = self.accumulated(
                embedding_params,
                self.gathered(embedding_params, self.shape.logits_backward()),
            );
            let pieces = logits.into_iter().map(|p| (p, layer)).collect();
            self.emit(ctx, pieces, Phase::Backward, mb, chunk, prev);
        }
        for l in (0..self.layers_per_chunk).rev() {
            let layer = (first_layer + l) as u16;
            if self.w.recompute == crate::config::Recompute::Full {
                let recompute = self.gathered(layer_params, self.shape.forward());
                let pieces = recompute.into_iter().map(|p| (p, layer)).collect();
                self.emit(ctx, pieces, Phase::Recompute, mb, chunk, prev);
            }
            let backward = self.accumulated(
                layer_params,
                self.gathered(layer_params, self.shape.backward(self.w.recompute)),
            );
            let pieces = backward.into_iter().map(|p| (p, layer)).collect();
            self.emit(ctx, pieces, Phase::Backward, mb, chunk, prev);
            if self.zero3() {
                // FSDP reduce-scatters each layer's gradients after every backward pass
                self.grad_reduce(
                    ctx,
                    CollectiveOp::ReduceScatter,
                    layer_params,
                    layer,
                    prev,
                    grad_reduces,
                );
            } else if overlap_grads {
                let mut params = layer_params_per_rank(&self.w.model, self.w.parallel.tensor);
                if l == 0 && vs == 0 {
                    params += embedding_params_per_rank(&self.w.model, self.w.parallel.tensor);
                }
                if l == self.layers_per_chunk - 1 && vs == last {
                    params += embedding_params_per_rank(&self.w.model, self.w.parallel.tensor);
                }
                let op = if self.zero() >= 1 {
                    CollectiveOp::ReduceScatter
                } else {
                    CollectiveOp::AllReduce
                };
                self.grad_reduce(ctx, op, params, layer, prev, grad_reduces);
            }
        }
        if vs == 0 && self.w.model.vocab > 0 {
            let embedding = self.accumulated(
                embedding_params,
                self.gathered(embedding_params, self.shape.embedding_backward()),
            );
            let pieces = embedding.into_iter().map(|p| (p, first_layer as u16)).collect();
            self.emit(ctx, pieces, Phase::Backward, mb, chunk, prev);
            if self.zero3() {
                self.grad_reduce(
                    ctx,
                    CollectiveOp::ReduceScatter,
                    embedding_params,
                    first_layer as u16,
                    prev,
                    grad_reduces,
                );
            }
        }
        if vs > 0 {
            self.send(ctx, vs - 1, mb, false, chunk, Phase::Backward, prev);
        }
    }

    /// Emits pieces for every rank of the stage, merging adjacent compute pieces into one task.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        ctx: &StageCtx,
        pieces: Vec<(Piece, u16)>,
        phase: Phase,
        mb: u32,
        chunk: u32,
        prev: &mut [Option<TaskId>],
    ) {
        // adjacent compute pieces run back to back on the compute stream: merge them into one task
        let mut merged: Vec<(Piece, u16)> = Vec::with_capacity(pieces.len());
        for (piece, layer) in pieces {
            match (merged.last_mut(), piece) {
                (Some((Piece::Compute(_, into), _)), Piece::Compute(_, kernels)) => into.extend(kernels),
                (_, piece) => merged.push((piece, layer)),
            }
        }
        for (piece, layer) in merged {
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
                    });
                    for (i, &r) in ctx.ranks.iter().enumerate() {
                        prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Compute(op), label));
                    }
                }
                Piece::Data(op, bytes) => {
                    self.blocking_collective(&ctx.ranks, &ctx.data_groups, op, bytes, label, prev)
                }
                Piece::Tensor(op, bytes) => {
                    self.blocking_collective(&ctx.ranks, &ctx.tensor_groups, op, bytes, label, prev)
                }
            }
        }
    }

    /// One collective per group on the compute stream of each present member, which waits for it.
    fn blocking_collective(
        &mut self,
        ranks: &[u32],
        groups: &[(u32, Vec<usize>)],
        op: CollectiveOp,
        bytes: u64,
        label: TaskLabel,
        prev: &mut [Option<TaskId>],
    ) {
        for (group, members) in groups {
            let c = self.g.collective(op, *group, bytes);
            for &i in members {
                prev[i] = Some(self.buf.task(ranks[i], Stream::Compute, TaskKind::Collective(c), label));
            }
        }
    }

    /// Data-parallel reduction (all-reduce, or reduce-scatter under ZeRO) of `params` gradients on
    /// the data-parallel stream, after `prev`.
    #[allow(clippy::too_many_arguments)]
    fn grad_reduce(
        &mut self,
        ctx: &StageCtx,
        op: CollectiveOp,
        params: u64,
        layer: u16,
        prev: &[Option<TaskId>],
        out: &mut [Vec<TaskId>],
    ) {
        if self.lay.d == 1 {
            return;
        }
        let bytes = params * self.w.data_parallel.grad_dtype.bytes();
        let label = TaskLabel {
            phase: Phase::GradReduce,
            chunk: 0,
            layer,
            microbatch: NONE_MB,
        };
        for (group, members) in &ctx.data_groups {
            let c = self.g.collective(op, *group, bytes);
            for &i in members {
                let task = self
                    .buf
                    .task(ctx.ranks[i], Stream::DataParallel, TaskKind::Collective(c), label);
                if let Some(p) = prev[i] {
                    self.buf.depend(p, task);
                }
                out[i].push(task);
            }
        }
    }

    /// Transfer id for the boundary after virtual stage `boundary`, created on first use.
    fn transfer_id(&mut self, boundary: u32, mb: u32, forward: bool, data: u32, tensor: u32) -> u32 {
        let lay = self.lay;
        let key = ((((boundary * self.m + mb) * 2 + forward as u32) * lay.d + data) * lay.t + tensor) as usize;
        if self.transfers[key] != u32::MAX {
            return self.transfers[key];
        }
        let stage_of = |vs: u32| vs % lay.p;
        let (from, to) = if forward {
            (boundary, boundary + 1)
        } else {
            (boundary + 1, boundary)
        };
        let src = lay.rank(RankCoord {
            tensor,
            data,
            stage: stage_of(from),
        });
        let dst = lay.rank(RankCoord {
            tensor,
            data,
            stage: stage_of(to),
        });
        let x = self.g.transfer(src, dst, self.p2p_bytes());
        self.transfers[key] = x;
        x
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        ctx: &StageCtx,
        boundary: u32,
        mb: u32,
        forward: bool,
        chunk: u32,
        phase: Phase,
        prev: &[Option<TaskId>],
    ) {
        let label = TaskLabel {
            phase,
            chunk: chunk as u8,
            layer: NO_LAYER,
            microbatch: mb,
        };
        for (i, &r) in ctx.ranks.iter().enumerate() {
            let c = self.lay.coord(r);
            let x = self.transfer_id(boundary, mb, forward, c.data, c.tensor);
            let task = self.buf.task(r, Stream::PipelineSend, TaskKind::Send(x), label);
            if let Some(p) = prev[i] {
                self.buf.depend(p, task);
            }
        }
    }

    fn recv(&mut self, ctx: &StageCtx, boundary: u32, mb: u32, forward: bool, chunk: u32, phase: Phase) {
        let label = TaskLabel {
            phase,
            chunk: chunk as u8,
            layer: NO_LAYER,
            microbatch: mb,
        };
        for &r in &ctx.ranks {
            let c = self.lay.coord(r);
            let x = self.transfer_id(boundary, mb, forward, c.data, c.tensor);
            self.buf.task(r, Stream::Compute, TaskKind::Recv(x), label);
        }
        if self.scatter_gather() {
            // each tensor rank received 1/t of the activation: all-gather it over the tensor group
            for (group, members) in &ctx.tensor_groups {
                let c = self
                    .g
                    .collective(CollectiveOp::AllGather, *group, self.shape.allreduce_bytes());
                for &i in members {
                    self.buf
                        .task(ctx.ranks[i], Stream::Compute, TaskKind::Collective(c), label);
                }
            }
        }
    }

    /// Megatron's scatter/gather of pipeline sends (SC'21 section 4.1): with tensor parallelism, each
    /// tensor rank sends only its 1/t slice of the activation, and the receivers all-gather it.
    fn scatter_gather(&self) -> bool {
        self.w.parallel.scatter_gather && self.lay.t > 1
    }

    /// Bytes of one pipeline transfer: b s h activations, or 1/t of them with scatter/gather.
    fn p2p_bytes(&self) -> u64 {
        let full = self.shape.allreduce_bytes();
        if self.scatter_gather() {
            full / self.lay.t as u64
        } else {
            full
        }
    }
}

struct StageCtx {
    stage: u32,
    /// Ranks of the stage that get tasks.
    ranks: Vec<u32>,
    /// Each tensor group: its id (all real ranks) and the indices into `ranks` of its members present.
    tensor_groups: Vec<(u32, Vec<usize>)>,
    /// Each data-parallel group, likewise.
    data_groups: Vec<(u32, Vec<usize>)>,
}

/// An upper bound on the tasks of one iteration, to reserve memory once (capacity that is never
/// touched costs no physical memory). Per rank and model-chunk pass: a receive, a send, embedding
/// and logits pieces (3 each way), and per layer at most 4 forward, 4 recompute, 4 backward tasks and
/// a gradient reduction.
fn estimate_tasks(w: &WorkloadSpec) -> usize {
    let lay = Layout::of(w);
    let passes = w.microbatches() as usize * w.chunks() as usize;
    let layers = (w.model.layers / (lay.p * w.chunks())) as usize;
    let per_rank = passes * (2 * (2 + 3) + layers * 13) + layers * w.chunks() as usize + 2;
    lay.ranks() as usize * per_rank
}

/// The tasks of one stage, buffered per (rank, stream) so that the builder receives them in
/// stream order and needs no renumbering. Ids handed out are local to the stage until `flush`.
#[derive(Default)]
struct StageBuffer {
    per_stream: Vec<Vec<(u32, Stream, TaskKind, TaskLabel)>>,
    /// local id -> (stream slot, index in slot)
    ids: Vec<(u32, u32)>,
    edges: Vec<(TaskId, TaskId)>,
    /// The stage's lowest rank.
    first_rank: u32,
}

impl StageBuffer {
    /// Starts buffering a stage whose ranks start at `first_rank`.
    fn begin(&mut self, first_rank: u32) {
        self.first_rank = first_rank;
    }

    fn task(&mut self, rank: u32, stream: Stream, kind: TaskKind, label: TaskLabel) -> TaskId {
        let slot = ((rank - self.first_rank) as usize) * Stream::COUNT + stream as usize;
        if self.per_stream.len() <= slot {
            self.per_stream.resize_with(slot + 1, Vec::new);
        }
        self.ids.push((slot as u32, self.per_stream[slot].len() as u32));
        self.per_stream[slot].push((rank, stream, kind, label));
        (self.ids.len() - 1) as TaskId
    }

    fn depend(&mut self, before: TaskId, after: TaskId) {
        self.edges.push((before, after));
    }

    /// Appends the buffered tasks to `g` in (rank, stream) order.
    fn flush(&mut self, g: &mut GraphBuilder) {
        let mut slot_start = vec![0 as TaskId; self.per_stream.len()];
        for (slot, tasks) in self.per_stream.iter_mut().enumerate() {
            slot_start[slot] = g.len() as TaskId;
            for (rank, stream, kind, label) in tasks.drain(..) {
                g.task(rank, stream, kind, label);
            }
        }
        let final_id = |local: TaskId| {
            let (slot, index) = self.ids[local as usize];
            slot_start[slot as usize] + index
        };
        for &(a, b) in &self.edges {
            g.depend(final_id(a), final_id(b));
        }
        self.ids.clear();
        self.edges.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_workload, Document, Override};
    use crate::workload::graph::CollectiveOp;
    use crate::workload::Kernel;

    fn workload(sets: &[&str]) -> WorkloadSpec {
        let mut doc = Document::parse("gpt-5.9b", builtin_workload("gpt-5.9b").unwrap()).unwrap();
        for s in sets {
            doc.apply(&Override::parse(s).unwrap()).unwrap();
        }
        WorkloadSpec::from_document(&doc).unwrap()
    }

    /// t = 4, p = 2, m = 2: with scatter/gather every pipeline transfer carries b s h / t bytes
    /// (2048 x 3840 x 2 / 4) and each receive is followed by an all-gather of b s h over the tensor
    /// group; without it every tensor rank sends the whole b s h.
    #[test]
    fn scatter_gather_splits_pipeline_sends_across_the_tensor_group() {
        let base = [
            "workload.parallel.tensor=4",
            "workload.parallel.pipeline=2",
            "workload.parallel.data=1",
            "workload.batch.global=2",
        ];
        let bsh = 2048 * 3840 * 2;
        let on = generate(&workload(&base));
        assert!(on.transfers.iter().all(|x| x.bytes == bsh / 4));
        // 2 microbatches x (forward into stage 1 + backward into stage 0) x 4 tensor ranks
        assert_eq!(on.transfers.len(), 2 * 2 * 4);
        let gathers = on
            .collectives
            .iter()
            .filter(|c| c.op == CollectiveOp::AllGather)
            .count();
        assert_eq!(gathers, 2 * 2, "one all-gather per receive step per tensor group");
        let off = generate(&workload(
            &[&base[..], &["workload.parallel.scatter_gather=false"]].concat(),
        ));
        assert!(off.transfers.iter().all(|x| x.bytes == bsh));
        assert!(off.collectives.iter().all(|c| c.op != CollectiveOp::AllGather));
    }

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
    /// buffer: per microbatch and parameter, read the 2-byte gradient and read and write the buffer
    /// element (2 bytes for fp16, 4 for fp32). Rank 0 of p = 2, t = 1 holds 16 layers of
    /// 12 h^2 + 13 h parameters and the 51200 x 3840 embedding; m = 4 microbatches.
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
        assert_eq!(fp16 - fused, 4 * params * (2 + 2 * 2));
        let fp32 = rank0_stream_bytes(&generate(&workload(
            &[&base[..], &["workload.data_parallel.grad_dtype=fp32"]].concat(),
        )));
        assert_eq!(fp32 - fused, 4 * params * (2 + 2 * 4));
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
}
