//! A pass as a tape: what a forward or backward pass of one microbatch through one model chunk
//! does, in order (receive, pieces, gradient reductions, send), built before any task is emitted,
//! so that it can be emitted as it stands ([`Generator::play`]) or interleaved with another pass's
//! (`combined`).

use super::{Generator, StageCtx, NO_LAYER};
use crate::ops::CollectiveOp;
use crate::workload::graph::{Phase, TaskId};
use crate::workload::transformer::{embedding_params_per_rank, Piece};

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

    /// What a forward pass of microbatch `mb` through `chunk` of `stage` does, in order.
    pub(super) fn forward_tape(&self, stage: u32, mb: u32, chunk: u32) -> Vec<Entry> {
        let vs = self.virtual_stage(stage, chunk);
        let last = self.lay.p * self.v - 1;
        let (first_layer, layers) = self.w.chunk_layers(vs);
        let mut tape = Vec::new();
        if vs > 0 {
            tape.push(Entry::Recv {
                boundary: vs - 1,
                forward: true,
                phase: Phase::Forward,
            });
        }
        if self.w.data_loading && (vs == 0 || vs == last) {
            tape.push(Entry::DataRead);
        }
        let (layer_params, embedding_params) = self.param_counts();
        let mut pieces: Vec<(Piece, u16)> = Vec::new();
        // the first forward of each chunk waits for its layers' weights, gathered after the last step
        let first_pass = self.w.data_parallel.overlap_param_gather && self.lay.d > 1 && mb == 0;
        if vs == 0 && self.w.model.vocab > 0 {
            if first_pass {
                pieces.push((Piece::AwaitGather(2 * embedding_params), first_layer as u16));
            }
            let embedding = self.gathered(embedding_params, false, self.shape.embedding_forward());
            pieces.extend(embedding.into_iter().map(|p| (p, first_layer as u16)));
        }
        for l in 0..layers {
            if first_pass {
                let bytes = self.gather_bytes(layer_params, true);
                pieces.push((Piece::AwaitGather(bytes), (first_layer + l) as u16));
            }
            let layer = self.gathered(layer_params, true, self.layer_forward(first_layer + l));
            pieces.extend(layer.into_iter().map(|p| (p, (first_layer + l) as u16)));
        }
        if vs == last && self.w.model.vocab > 0 {
            // the multi-token-prediction modules, after the last layer
            for k in 0..self.w.model.mtp_layers {
                let layer = self.w.model.layers + k;
                let module = self
                    .shape
                    .mtp_glue_forward()
                    .into_iter()
                    .chain(self.layer_forward(layer));
                pieces.extend(module.map(|p| (p, layer as u16)));
            }
            let top = (first_layer + layers + self.w.model.mtp_layers).max(1) - 1;
            // the output layer's own table: untied, or the tied copy on a last stage that is not the first
            if first_pass && (vs != 0 || !self.w.model.tied_embeddings) {
                pieces.push((Piece::AwaitGather(2 * embedding_params), top as u16));
            }
            // the output layer once for the next token and once per prediction module
            for _ in 0..=self.w.model.mtp_layers {
                let logits = self.gathered(embedding_params, false, self.shape.logits_forward());
                pieces.extend(logits.into_iter().map(|p| (p, top as u16)));
            }
        }
        if vs == last && self.w.model.vocab > 0 && self.lay.d > 1 {
            pieces.push((Piece::Data(CollectiveOp::AllReduce, 4), NO_LAYER));
        }
        tape.push(Entry::Pieces(pieces, Phase::Forward));
        if vs < last {
            tape.push(Entry::Send {
                boundary: vs,
                forward: true,
                phase: Phase::Forward,
            });
        }
        tape
    }

    /// What a backward pass of microbatch `mb` through `chunk` of `stage` does, in order: each
    /// layer's recomputation and backward, and its gradient reduction when `overlap_grads` (or
    /// under ZeRO-3).
    pub(super) fn backward_tape(&self, stage: u32, mb: u32, chunk: u32, overlap_grads: bool) -> Vec<Entry> {
        let vs = self.virtual_stage(stage, chunk);
        let last = self.lay.p * self.v - 1;
        let (first_layer, layers) = self.w.chunk_layers(vs);
        let mut tape = Vec::new();
        if vs < last {
            tape.push(Entry::Recv {
                boundary: vs,
                forward: false,
                phase: Phase::Backward,
            });
        }
        let (layer_params, embedding_params) = self.param_counts();
        let embedding_rank = embedding_params_per_rank(&self.w.model, self.w.parallel.tensor);
        // the output layer's gradients join the first gradient reduction of the last chunk, the
        // input embedding's the last one of the first chunk
        let mut output_grads = if vs == last { embedding_rank } else { 0 };
        let mtp = if vs == last { self.w.model.mtp_layers } else { 0 };
        if vs == last && self.w.model.vocab > 0 {
            let layer = ((first_layer + layers + mtp).max(1) - 1) as u16;
            for _ in 0..=mtp {
                let logits = self.accumulated(
                    embedding_params,
                    mb,
                    self.gathered(embedding_params, false, self.shape.logits_backward()),
                );
                tape.push(Entry::Pieces(
                    logits.into_iter().map(|p| (p, layer)).collect(),
                    Phase::Backward,
                ));
            }
        }
        // the prediction modules (global layers `layers` + k), then the chunk's layers, last first
        let modules = (0..mtp).rev().map(|k| (self.w.model.layers + k, true));
        for (l, module) in modules.chain((0..layers).rev().map(|l| (first_layer + l, false))) {
            let layer = l as u16;
            // a layer that is not recomputed kept its activations
            let recompute = match self.w.recompute {
                crate::config::Recompute::Full if !self.w.recomputes_layer(l) => crate::config::Recompute::None,
                r => r,
            };
            if recompute == crate::config::Recompute::Full {
                let mut recompute = self.gathered(layer_params, true, self.layer_forward(l));
                if module {
                    recompute.splice(0..0, self.shape.mtp_glue_forward());
                }
                tape.push(Entry::Pieces(
                    recompute.into_iter().map(|p| (p, layer)).collect(),
                    Phase::Recompute,
                ));
            }
            let (mut dense, experts) = self.layer_split(l);
            let mut pieces = self.gathered(layer_params, true, self.layer_backward(l, recompute));
            if module {
                pieces.extend(self.shape.mtp_glue_backward());
                dense += self.mtp_glue_per_rank();
            }
            let backward = self.accumulated(dense + experts, mb, pieces);
            tape.push(Entry::Pieces(
                backward.into_iter().map(|p| (p, layer)).collect(),
                Phase::Backward,
            ));
            if self.zero3() {
                // FSDP reduce-scatters each layer's gradients after every backward pass
                tape.push(Entry::GradReduce(CollectiveOp::ReduceScatter, (layer_params, 0), layer));
            } else if overlap_grads {
                let mut params = dense + std::mem::take(&mut output_grads);
                if l == first_layer && vs == 0 && !module {
                    params += embedding_rank;
                }
                tape.push(Entry::GradReduce(self.reduce_op(), (params, experts), layer));
            }
        }
        if vs == 0 && self.w.model.vocab > 0 {
            let embedding = self.accumulated(
                embedding_params,
                mb,
                self.gathered(embedding_params, false, self.shape.embedding_backward()),
            );
            tape.push(Entry::Pieces(
                embedding.into_iter().map(|p| (p, first_layer as u16)).collect(),
                Phase::Backward,
            ));
            if overlap_grads && !self.zero3() && layers + mtp == 0 {
                // a first chunk of the embedding alone
                tape.push(Entry::GradReduce(
                    self.reduce_op(),
                    (embedding_rank + output_grads, 0),
                    first_layer as u16,
                ));
            }
            if self.zero3() {
                tape.push(Entry::GradReduce(
                    CollectiveOp::ReduceScatter,
                    (embedding_params, 0),
                    first_layer as u16,
                ));
            }
        }
        if vs > 0 {
            tape.push(Entry::Send {
                boundary: vs - 1,
                forward: false,
                phase: Phase::Backward,
            });
        }
        tape
    }
}
