//! Builds the task graph of one Megatron-style training iteration from a validated workload.
//!
//! Ranks are laid out by [`Layout`]. Each stage's schedule is walked once and every step is emitted
//! for all t x d ranks of the stage, so collective and transfer ids are shared by construction.
//! The generator is split by concern: [`program`] expands the schedule into per-stage passes,
//! [`pipeline`] the send/receive between stages, [`reduction`] the data-parallel gradient
//! reduction, ZeRO and the embedding sync, [`io`] checkpoints and data loading, and [`buffer`]
//! hands the stage's tasks to the builder in stream order.
//! It must not know how long anything takes: that is the models' job.

mod buffer;
mod combined;
mod experts;
mod io;
mod pipeline;
mod program;
mod reduction;
mod ring;
mod tape;

use super::builder::GraphBuilder;
use super::context::Ring;
use super::expert_layout::ExpertLayout;
use super::graph::{TaskGraph, TaskId};
use super::layout::Layout;
use super::moe::MoeBlock;
use super::params::layer_params_split;
use super::transformer::{embedding_params_per_rank, layer_params_per_rank, LayerShape, Piece};
use crate::config::WorkloadSpec;
use crate::workload::replication::Replication;
use buffer::StageBuffer;

/// Generates one training iteration, every rank with its tasks.
pub fn generate(w: &WorkloadSpec) -> TaskGraph {
    Generator::new(w, false).run()
}

/// Why the ranks of a workload do not all run the same program, if they do not: then a
/// representative graph cannot stand for them. A skewed router without a capacity gives the
/// positions of an expert-parallel group different token counts.
/// With whole experts, expert-parallel groups that straddle tensor groups place their ranks
/// differently in them ([`ExpertLayout::blocks`]).
pub fn asymmetry(w: &WorkloadSpec) -> Option<String> {
    let moe = w.model.moe.as_ref()?;
    if moe.imbalance > 0.0 && moe.capacity_factor.is_none() && w.parallel.expert > 1 {
        return Some(
            "a skewed router (model.moe.imbalance) gives the ranks of an expert-parallel group different token counts"
                .to_string(),
        );
    }
    ExpertLayout::of(w).blocks().is_none().then(|| {
        "expert-parallel groups of whole experts (parallel.expert_tensor 1) that neither hold whole tensor groups nor sit inside one"
            .to_string()
    })
}

/// Generates one training iteration with tasks only on tensor rank 0 of replica 0 of each stage.
/// All ranks run the same program, so where the machine is symmetric too the timeline of those
/// ranks, and every metric, equal the full simulation's, at 1/(t d) of the cost; the graph carries
/// its [`Replication`] so that a contention model can price each communication with its copies.
pub fn generate_representative(w: &WorkloadSpec) -> TaskGraph {
    Generator::new(w, true).run()
}

struct Generator<'a> {
    w: &'a WorkloadSpec,
    lay: Layout,
    /// The expert layers' layout over the same ranks.
    expert_lay: ExpertLayout,
    shape: LayerShape,
    m: u32,
    v: u32,
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
    /// Collective ids of the optimizer's found-inf and gradient-norm all-reduces over each replica's
    /// model-parallel group, by (data, which), dense; created by the first stage.
    model_parallel_scalars: Vec<u32>,
    /// The mixture-of-experts block of each global layer (none for dense layers).
    moe: Vec<Option<MoeBlock>>,
    /// The context-parallel ring of every layer (none without context parallelism).
    ring: Option<Ring>,
    /// The last ring receive of each rank of the stage being generated, by index.
    ring_recv: Vec<Option<TaskId>>,
}

const NONE_MB: u32 = u32::MAX;

const NO_LAYER: u16 = u16::MAX;

impl<'a> Generator<'a> {
    fn new(w: &'a WorkloadSpec, representative: bool) -> Self {
        let lay = Layout::of(w);
        let v = w.chunks();
        let shape = rank_shape(w);
        let moe = (0..w.model.all_layers())
            .map(|l| {
                w.model
                    .moe_at(l)
                    .map(|m| MoeBlock::new(&shape, m, l, w.parallel.expert, w.parallel.expert_tensor_size()))
            })
            .collect();
        Generator {
            w,
            lay,
            expert_lay: ExpertLayout::of(w),
            shape,
            m: w.microbatches() as u32,
            v,
            g: GraphBuilder::with_capacity(lay.ranks(), estimated_tasks(w, representative) as usize),
            buf: StageBuffer::default(),
            representative,
            zero_delay: None,
            transfers: vec![u32::MAX; ((lay.p * v - 1) * w.microbatches() as u32 * 2 * lay.d * lay.t) as usize],
            embedding_syncs: vec![u32::MAX; (lay.d * lay.t) as usize],
            model_parallel_scalars: vec![u32::MAX; (lay.d * 2) as usize],
            moe,
            ring: Ring::new(&shape, w.parallel.context),
            ring_recv: Vec::new(),
        }
    }

    /// Parameters of global layer `layer` per rank: (dense, routed experts).
    fn layer_split(&self, layer: u32) -> (u64, u64) {
        let x = self.expert_lay;
        layer_params_split(&self.w.model, layer, self.lay.t, x.e, x.et)
    }

    /// The forward pass of global layer `layer`: the dense layer or the mixture-of-experts one
    /// (sized by the s / c tokens a context rank holds), with its attention core run as the
    /// context-parallel ring where there is one.
    fn layer_forward(&self, layer: u32) -> Vec<Piece> {
        let pieces = match &self.moe[layer as usize] {
            Some(block) => block.forward(),
            None => self.shape.forward(),
        };
        match &self.ring {
            Some(ring) => ring.forward(pieces),
            None => pieces,
        }
    }

    /// The backward pass of global layer `layer`, likewise.
    fn layer_backward(&self, layer: u32, recompute: crate::config::Recompute) -> Vec<Piece> {
        let pieces = match &self.moe[layer as usize] {
            Some(block) => block.backward(recompute),
            None => self.shape.backward(recompute),
        };
        match &self.ring {
            Some(ring) => ring.backward(pieces),
            None => pieces,
        }
    }

    fn run(mut self) -> TaskGraph {
        for stage in 0..self.lay.p {
            self.stage(stage);
        }
        let mut graph = self.g.finish();
        if self.representative {
            // asymmetry() sends the layouts without blocks to an every-rank run
            let (expert, tensor_block) = self.expert_lay.blocks().unwrap_or((self.expert_lay.e, self.lay.t));
            graph.replication = Some(Replication {
                layout: self.lay,
                expert,
                tensor_block,
            });
        }
        graph
    }

    /// Parameters per tensor rank of one layer and of the (tied) embedding.
    fn param_counts(&self) -> (u64, u64) {
        let t = self.w.parallel.tensor;
        (
            layer_params_per_rank(&self.w.model, t),
            embedding_params_per_rank(&self.w.model, t),
        )
    }

    /// The ZeRO stage, where there is a group to shard over (the data-parallel one, or with whole
    /// experts the routed experts' expert-data-parallel one, which can span tensor ranks alone).
    fn zero(&self) -> u8 {
        if self.lay.d > 1 || self.expert_lay.expert_data_size() > 1 {
            self.w.data_parallel.zero_stage
        } else {
            0
        }
    }

    /// The collective that reduces gradients over the data-parallel group: reduce-scatter into
    /// shards under ZeRO, all-reduce without.
    fn reduce_op(&self) -> crate::ops::CollectiveOp {
        if self.zero() >= 1 {
            crate::ops::CollectiveOp::ReduceScatter
        } else {
            crate::ops::CollectiveOp::AllReduce
        }
    }

    /// Parameters per rank of a multi-token-prediction module besides its layer: its projection
    /// split over the tensor ranks (the norms, 3 h, counted with it).
    fn mtp_glue_per_rank(&self) -> u64 {
        crate::workload::params::mtp_glue_params(&self.w.model) / self.lay.t as u64
    }

    /// ZeRO-3 / FSDP: weights are sharded, gathered before every use and freed after.
    fn zero3(&self) -> bool {
        self.zero() >= 3
    }

    fn virtual_stage(&self, stage: u32, chunk: u32) -> u32 {
        chunk * self.lay.p + stage
    }

    /// Parameters of a model chunk per rank: (dense, with the embeddings; routed experts).
    /// Bytes of a data-parallel all-gather of `params` weights: 16-bit, or 1 byte each for the
    /// blocks' linear layers when they are gathered in FP8 (`data_parallel.fp8_param_gather`).
    fn gather_bytes(&self, params: u64, linear_layers: bool) -> u64 {
        self.w.data_parallel.gather_bytes_per_param(linear_layers) * params
    }

    /// The embedding and output-layer weights a stage holds (every chunk's, per rank).
    fn stage_embedding_params(&self, stage: u32) -> u64 {
        let (m, last) = (&self.w.model, self.lay.p * self.v - 1);
        (0..self.v)
            .map(|c| embedding_tables(m, self.virtual_stage(stage, c), last))
            .sum::<u64>()
            * embedding_params_per_rank(m, self.w.parallel.tensor)
    }

    fn chunk_params(&self, stage: u32, chunk: u32) -> (u64, u64) {
        let vs = self.virtual_stage(stage, chunk);
        let last = self.lay.p * self.v - 1;
        let (first, layers) = self.w.chunk_layers(vs);
        let m = &self.w.model;
        // the multi-token-prediction modules' layers and projections live on the last chunk
        let mtp = if vs == last { m.mtp_layers } else { 0 };
        let (params, experts) = (first..first + layers)
            .chain(m.layers..m.layers + mtp)
            .map(|l| self.layer_split(l))
            .fold((0, 0), |(d, e), (ld, le)| (d + ld, e + le));
        let embeddings = embedding_tables(m, vs, last) * embedding_params_per_rank(m, self.w.parallel.tensor);
        (params + mtp as u64 * self.mtp_glue_per_rank() + embeddings, experts)
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
    /// Each expert-parallel group (mixture of experts with e > 1; empty otherwise), likewise.
    expert_groups: Vec<(u32, Vec<usize>)>,
    /// Each expert-data-parallel group (the data groups when e = 1), likewise.
    expert_data_groups: Vec<(u32, Vec<usize>)>,
    /// Each context-parallel ring (empty without context parallelism).
    context_groups: Vec<ring::RingGroup>,
}

/// An upper bound on the tasks of one iteration, to reserve memory once (capacity that is never
/// touched costs no physical memory) and to refuse absurd sizes before building anything: per rank
/// and model-chunk pass, a receive, a send, embedding and logits pieces (3 each way), and per layer at
/// most 4 forward, 4 recompute, 4 backward tasks and a gradient reduction; per stage a few dozen for
/// the reduction and optimizer. Floating point, so that absurd sizes are measured instead of
/// overflowing; `representative` counts one rank per stage.
pub fn estimated_tasks(w: &WorkloadSpec, representative: bool) -> f64 {
    let lay = Layout::of(w);
    let chunks = w.chunks() as f64;
    let passes = w.microbatches() as f64 * chunks;
    let layers = (0..lay.p * w.chunks())
        .map(|vs| w.chunk_layers(vs).1)
        .max()
        .unwrap_or(0) as f64;
    // a mixture-of-experts layer adds two all-to-alls and two compute pieces each way; a context
    // ring a send, a receive, a wait and a compute task per step, forward, recompute and backward
    let mut per_layer = if w.model.moe.is_some() { 13.0 + 12.0 } else { 13.0 };
    if w.parallel.context > 1 {
        per_layer += 12.0 * w.parallel.context as f64 + 4.0;
    }
    let per_rank = passes * (2.0 * (2.0 + 3.0) + layers * per_layer + 1.0) + layers * chunks + 32.0;
    let ranks = if representative {
        lay.p as f64
    } else {
        lay.ranks() as f64
    };
    ranks * per_rank
}

/// The shape of a layer for one microbatch on one rank of `w`: its kernels, precision and, with
/// context parallelism, the s / c tokens each rank holds of every sequence.
pub(crate) fn rank_shape(w: &WorkloadSpec) -> LayerShape {
    LayerShape {
        fp8: w.precision == crate::config::Precision::Fp8,
        fused_attention: w.attention.fused(),
        tp_overlap: w.tp_comm_overlap,
        tp_async: w.tp_async_allreduce,
        s: w.model.seq_len / w.parallel.context as u64,
        ..LayerShape::new(&w.model, w.batch.micro, w.parallel.tensor, w.parallel.sequence_parallel)
    }
}

/// Bytes of memory a simulation needs per task, measured on the GPT-1T bench case (47 M tasks in
/// 1.3 GB: 28 bytes) and rounded up.
pub const BYTES_PER_TASK: f64 = 32.0;

/// Embedding tables of virtual stage `vs` of `last + 1`: the input embedding on the first, the
/// output layer on the last; one table when they are tied and on the same stage. With
/// multi-token prediction an untied last stage that is not the first also holds a copy of the
/// input embedding (its modules embed the tokens ahead).
pub(crate) fn embedding_tables(model: &crate::config::ModelSpec, vs: u32, last: u32) -> u64 {
    let count = (vs == 0) as u64 + (vs == last) as u64;
    if model.tied_embeddings {
        count.min(1)
    } else {
        count + (model.mtp_layers > 0 && vs == last && vs != 0) as u64
    }
}

#[cfg(test)]
pub(super) mod test_support {
    use crate::config::{builtin_workload, Document, Override, WorkloadSpec};

    /// The default workload with `--set`-style overrides.
    pub fn workload(sets: &[&str]) -> WorkloadSpec {
        let mut doc = Document::parse("gpt-5.9b", builtin_workload("gpt-5.9b").unwrap()).unwrap();
        for s in sets {
            doc.apply(&Override::parse(s).unwrap()).unwrap();
        }
        WorkloadSpec::from_document(&doc).unwrap()
    }
}
