//! The workload description: a Megatron-style GPT training job and its parallel split.

use super::data_parallel::DataParallelSpec;
use super::software::{Attention, Precision, Recompute, Schedule};
use super::{Document, HardwareSpec, ModelSpec};
use crate::error::{Error, Result};
use serde::Deserialize;

/// One training job: model, batch, parallel split, schedule.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Name used for the output folder and reports.
    pub name: String,
    /// GPU count; optional, but when given it must equal tensor x pipeline x data.
    #[serde(default)]
    pub gpus: Option<u64>,
    /// Transformer shape.
    pub model: ModelSpec,
    /// Global and micro batch.
    pub batch: BatchSpec,
    /// Tensor, pipeline, data parallel degrees and interleaving.
    pub parallel: ParallelSpec,
    /// Pipeline schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Activation recomputation.
    #[serde(default)]
    pub recompute: Recompute,
    /// A software profile (`megatron-2021`, `megatron-core-2024`, `fsdp-2024`): its switches fill
    /// in whatever the document does not set (`config/profiles.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// With `recompute: full`, recompute only every n-th layer (those whose global index n
    /// divides); the others keep their activations. torchtitan's "selective layer" checkpointing
    /// is 2. 1 (the default): every layer.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub recompute_interval: u32,
    /// Overlap the sequence-parallel all-gathers and reduce-scatters with the GEMMs next to them
    /// (Megatron-Core's `--tp-comm-overlap` with Transformer Engine's userbuffers): each runs on
    /// its own stream beside its GEMM, and what follows waits for both.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tp_comm_overlap: bool,
    /// Megatron-LM's asynchronous tensor-parallel all-reduce (`--async-tensor-model-parallel-allreduce`,
    /// from late 2021; Megatron-Core's default): in the backward pass each column-parallel layer's
    /// input-gradient all-reduce (its reduce-scatter with sequence parallelism) runs on its own
    /// stream beside that layer's weight-gradient GEMM, and what follows waits for both.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tp_async_allreduce: bool,
    /// Overlap the expert-parallel all-to-alls with another microbatch's computation (Megatron-Core's
    /// `--overlap-moe-expert-parallel-comm`): 1F1B's steady state runs each forward together with
    /// the backward beside it, layer by layer, each pass's token dispatch and combine on their own
    /// stream while the other pass computes; one more warm-up forward makes the two independent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ep_comm_overlap: bool,
    /// Precision of the transformer blocks' linear layers: `bf16` (16-bit, the default) or `fp8`
    /// (FP8 GEMMs at the GPU's FP8 rate with casts of their inputs, as Transformer Engine runs them;
    /// attention scores and the output layer stay 16-bit).
    #[serde(default, skip_serializing_if = "Precision::is_16_bit")]
    pub precision: Precision,
    /// Attention kernels: `standard` (scores, softmax, dropout and context as separate kernels
    /// that store the s x s matrices, as in 2021), `flash` (FlashAttention-2: one fused kernel
    /// each way, no s x s activations, the scores recomputed in the backward kernel), `flash1`
    /// (the same at FlashAttention 1's speed) or `cudnn` (the same with cuDNN's kernels,
    /// Transformer Engine's choice on Hopper).
    #[serde(default, skip_serializing_if = "Attention::is_standard")]
    pub attention: Attention,
    /// Data-parallel gradient reduction.
    #[serde(default)]
    pub data_parallel: DataParallelSpec,
    /// Checkpoint I/O inside the simulated iteration (needs the hardware's `storage`).
    #[serde(default)]
    pub checkpoint: CheckpointSpec,
    /// Read each microbatch's tokens (first stage) and labels (last stage) from storage, prefetched
    /// on the I/O stream (needs the hardware's `storage`).
    #[serde(default)]
    pub data_loading: bool,
}

/// Checkpoint I/O in the iteration.
#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Load the checkpoint before the first step (replica 0 reads, then broadcasts to the others).
    #[serde(default)]
    pub load: bool,
    /// Save a checkpoint after the optimizer step (replica 0's ranks write their shards).
    #[serde(default)]
    pub save: bool,
}

/// Batch sizes in sequences.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Global batch B per iteration.
    pub global: u64,
    /// Microbatch b.
    pub micro: u64,
}

/// Parallel degrees.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSpec {
    /// Tensor (intra-layer) parallel degree t.
    pub tensor: u32,
    /// Pipeline stages p.
    pub pipeline: u32,
    /// Data-parallel replicas d.
    pub data: u32,
    /// Model chunks per device v (interleaved schedule only).
    #[serde(default = "one")]
    pub interleave: u32,
    /// Send 1/t of each pipeline activation per tensor rank and all-gather it on arrival
    /// (Megatron-LM's scatter/gather optimisation, on in its experiments).
    #[serde(default = "yes")]
    pub scatter_gather: bool,
    /// Shard LayerNorm/dropout activations along the sequence over the tensor group
    /// (reduce-scatter + all-gather in place of each all-reduce; Korthikanti et al. 2022).
    #[serde(default)]
    pub sequence_parallel: bool,
    /// Layers of each pipeline stage, when not split evenly (to balance stages on GPUs of
    /// different speeds, or to leave room for the embedding and the loss as Megatron-Core's
    /// `account_for_embedding_in_pipeline_split` does); p x v entries summing to `model.layers`, one
    /// per model chunk in virtual-stage order (chunk c of stage s is entry c p + s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_per_stage: Option<Vec<u32>>,
    /// Expert-parallel size e: the experts of each mixture-of-experts layer divided among e ranks
    /// of the data x context ranks (see [`super::moe`]); 1 (the default): every rank holds them all.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub expert: u32,
    /// Expert-tensor size: the ranks each routed expert is split over, `tensor` (the default: the
    /// dense layers' split) or 1 (Megatron-Core's `--expert-tensor-parallel-size 1`, "MoE parallel
    /// folding": whole experts, the expert-parallel groups carved out of tensor x data x context;
    /// see [`super::moe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_tensor: Option<u32>,
    /// Context-parallel size c: each sequence split over c ranks that run ring attention (see
    /// [`super::context`]); 1 (the default): every rank holds whole sequences.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub context: u32,
}

impl ParallelSpec {
    /// Expert-tensor size: `expert_tensor`, or `tensor` when it is not set.
    pub fn expert_tensor_size(&self) -> u32 {
        self.expert_tensor.unwrap_or(self.tensor)
    }
}

fn yes() -> bool {
    true
}

pub(crate) fn is_one(v: &u32) -> bool {
    *v == 1
}

fn one() -> u32 {
    1
}

impl WorkloadSpec {
    /// Deserializes and checks the split; errors name the YAML path, the value and the rule.
    pub fn from_document(doc: &Document) -> Result<WorkloadSpec> {
        let mut doc = doc.clone();
        super::profiles::expand(&mut doc)?;
        let doc = &doc;
        let spec: WorkloadSpec = doc.deserialize()?;
        spec.validate(doc)?;
        Ok(spec)
    }

    /// tensor x context x pipeline x data.
    pub fn gpus_needed(&self) -> u64 {
        (self.parallel.tensor as u64)
            .saturating_mul(self.parallel.context as u64)
            .saturating_mul(self.parallel.pipeline as u64)
            .saturating_mul(self.parallel.data as u64)
    }

    /// Microbatches per pipeline per iteration, m = B / (b d).
    pub fn microbatches(&self) -> u64 {
        self.batch.global / self.batch.micro.saturating_mul(self.parallel.data as u64)
    }

    /// The layers of virtual stage `vs` (chunk x p + stage): (first layer, count).
    pub fn chunk_layers(&self, vs: u32) -> (u32, u32) {
        match &self.parallel.layers_per_stage {
            Some(list) => (list[..vs as usize].iter().sum(), list[vs as usize]),
            None => {
                let per = self.model.layers / (self.parallel.pipeline * self.chunks());
                (vs * per, per)
            }
        }
    }

    /// Whether global layer `layer` is recomputed before its backward pass.
    pub fn recomputes_layer(&self, layer: u32) -> bool {
        self.recompute == Recompute::Full && layer % self.recompute_interval.max(1) == 0
    }

    /// Model chunks per device: v for the interleaved schedule, 1 otherwise.
    pub fn chunks(&self) -> u32 {
        match self.schedule {
            Schedule::Interleaved => self.parallel.interleave,
            _ => 1,
        }
    }

    fn validate(&self, doc: &Document) -> Result<()> {
        if !super::is_safe_name(&self.name) {
            return Err(doc.field_error("name", super::SAFE_NAME));
        }
        if self.recompute_interval == 0 {
            return Err(doc.field_error("recompute_interval", "must be at least 1 (1: every layer)"));
        }
        if self.tp_comm_overlap && self.parallel.tensor > 1 && !self.parallel.sequence_parallel {
            return Err(doc.field_error(
                "tp_comm_overlap",
                "overlaps sequence parallelism's all-gathers and reduce-scatters: it needs `parallel.sequence_parallel: true`",
            ));
        }
        if self.recompute_interval > 1 && self.recompute != Recompute::Full {
            return Err(doc.field_error(
                "recompute_interval",
                "recomputes every n-th layer fully: it needs `recompute: full`",
            ));
        }
        let (m, b, p) = (&self.model, &self.batch, &self.parallel);
        for (path, v) in [
            ("model.layers", m.layers as u64),
            ("model.hidden", m.hidden),
            ("model.heads", m.heads),
            ("model.seq_len", m.seq_len),
            ("batch.global", b.global),
            ("batch.micro", b.micro),
            ("parallel.tensor", p.tensor as u64),
            ("parallel.pipeline", p.pipeline as u64),
            ("parallel.data", p.data as u64),
            ("parallel.interleave", p.interleave as u64),
        ] {
            if v == 0 {
                return Err(doc.field_error(path, "must be at least 1"));
            }
        }
        super::ranges::check_workload(self, doc)?;
        super::moe::check(self, doc)?;
        super::mla::check(self, doc)?;
        super::context::check(self, doc)?;
        if let Some(gpus) = self.gpus {
            if gpus != self.gpus_needed() {
                return Err(doc.field_error(
                    "gpus",
                    format!(
                        "{} GPUs, not {gpus}; change the split or the GPU count",
                        super::context::split_product(self)
                    ),
                ));
            }
        }
        self.data_parallel.validate(doc, self.precision)?;
        if m.mla.is_none() && m.head_dim.is_none() && m.hidden % m.heads != 0 {
            return Err(doc.field_error(
                "model.hidden",
                format!("must be divisible by model.heads ({})", m.heads),
            ));
        }
        if m.heads % p.tensor as u64 != 0 {
            return Err(doc.field_error(
                "parallel.tensor",
                format!(
                    "model.heads ({}) is not divisible by tensor ({}): each tensor rank needs whole heads",
                    m.heads, p.tensor
                ),
            ));
        }
        let kv = m.kv_heads();
        if kv == 0 || m.heads % kv != 0 {
            return Err(doc.field_error("model.kv_heads", format!("must divide model.heads ({})", m.heads)));
        }
        if kv % p.tensor as u64 != 0 {
            return Err(doc.field_error(
                "parallel.tensor",
                format!("model.kv_heads ({kv}) is not divisible by tensor ({}): each tensor rank needs whole key/value heads", p.tensor),
            ));
        }
        if m.ffn() == 0 || m.ffn() % p.tensor as u64 != 0 {
            return Err(doc.field_error(
                "model.ffn_hidden",
                format!("must be a positive multiple of tensor ({})", p.tensor),
            ));
        }
        if self.schedule != Schedule::Interleaved && p.interleave != 1 {
            return Err(doc.field_error(
                "parallel.interleave",
                format!(
                    "interleave > 1 needs schedule: interleaved (schedule is {})",
                    self.schedule.name()
                ),
            ));
        }
        let stages = p.pipeline * self.chunks();
        if let Some(list) = &p.layers_per_stage {
            let total: u32 = list.iter().sum();
            // the first and the last model chunk may hold no layer: they hold the embedding and the
            // output layer (Megatron-Core's pipeline layouts, e.g. DeepSeek-V3's "Et|(tt|)*30mL")
            let inner_zero = list.len() > 2 && list[1..list.len() - 1].contains(&0);
            let ends_zero = m.vocab == 0 && (list.first() == Some(&0) || list.last() == Some(&0));
            if list.len() as u32 != stages || total != m.layers || inner_zero || ends_zero {
                return Err(doc.field_error(
                    "parallel.layers_per_stage",
                    format!(
                        "needs pipeline x interleave = {} x {} = {stages} entries summing to model.layers = {}, each \
                         positive but the first and the last, which may be 0 (they hold the embedding and the output layer)",
                        p.pipeline,
                        self.chunks(),
                        m.layers
                    ),
                ));
            }
        } else if m.layers % stages != 0 {
            let path = if self.chunks() > 1 {
                "parallel.interleave"
            } else {
                "parallel.pipeline"
            };
            return Err(doc.field_error(
                path,
                format!(
                    "model.layers ({}) cannot be split evenly over pipeline x interleave = {} x {} = {stages} model chunks",
                    m.layers,
                    p.pipeline,
                    self.chunks()
                ),
            ));
        }
        if b.global % (b.micro * p.data as u64) != 0 {
            return Err(doc.field_error(
                "batch.global",
                format!(
                    "global batch {} is not divisible by micro x data = {} x {} = {}",
                    b.global,
                    b.micro,
                    p.data,
                    b.micro * p.data as u64
                ),
            ));
        }
        if self.schedule == Schedule::Interleaved && self.microbatches() % p.pipeline as u64 != 0 {
            return Err(doc.field_error(
                "batch.global",
                format!(
                    "the interleaved schedule needs microbatches per pipeline (B / (b x d) = {}) to be a multiple of pipeline ({})",
                    self.microbatches(),
                    p.pipeline
                ),
            ));
        }
        Ok(())
    }
}

/// Checks that the job fits on the machine: enough GPUs, and storage when it does I/O.
pub fn check_fits_hardware(w: &WorkloadSpec, w_doc: &Document, hw: &HardwareSpec, hw_doc: &Document) -> Result<()> {
    if (w.checkpoint.load || w.checkpoint.save || w.data_loading) && hw.storage.is_none() {
        let path = if w.data_loading { "data_loading" } else { "checkpoint" };
        return Err(w_doc.field_error(
            path,
            format!(
                "needs storage, but {} has no `storage` section",
                hw_doc.origin("storage")
            ),
        ));
    }
    if w.gpus_needed() > hw.total_gpus() {
        return Err(Error::Input(format!(
            "error: {}: the workload needs {} GPUs, but {}: `nodes` = {} nodes x {} GPUs = {} GPUs \
             (--set hardware.nodes={} would fit it)",
            w_doc.origin("parallel"),
            super::context::split_product(w),
            hw_doc.origin("nodes"),
            hw.nodes,
            hw.node.gpus,
            hw.total_gpus(),
            w.gpus_needed().div_ceil(hw.node.gpus as u64)
        )));
    }
    // a workload field that needs a figure some GPU model of the machine lacks
    let needs = |wanted: bool, field: &str, lacks: fn(&super::GpuSpec) -> bool, why: &str| -> Result<()> {
        match hw.gpu_models().into_iter().find(|g| wanted && lacks(g)) {
            Some(g) => Err(w_doc.field_error(
                field,
                format!("{why}, but the {} of {} has none", g.model, hw_doc.origin("gpu")),
            )),
            None => Ok(()),
        }
    };
    needs(
        w.precision == Precision::Fp8,
        "precision",
        |g| g.fp8_flops.is_none(),
        "FP8 needs FP8 tensor cores (`gpu.fp8_flops`)",
    )?;
    needs(
        w.attention == Attention::Flash1,
        "attention",
        |g| g.flash1_attention_efficiency.is_none(),
        "FlashAttention 1 needs a measured speed (`gpu.flash1_attention_efficiency`)",
    )?;
    if !hw.node_groups.is_empty() {
        // every stage inside one group of GPUs
        let group = super::groups::group_of_nodes(&hw.node_groups, hw.nodes);
        let per_stage = w.gpus_needed() / w.parallel.pipeline as u64;
        for stage in 0..w.parallel.pipeline as u64 {
            let first = (stage * per_stage / hw.node.gpus as u64) as usize;
            let last = (((stage + 1) * per_stage - 1) / hw.node.gpus as u64) as usize;
            if group[first..=last].iter().any(|&g| g != group[first]) {
                return Err(w_doc.field_error(
                    "parallel.pipeline",
                    format!(
                        "stage {stage} runs on nodes {first} to {last}, which span GPU groups of {}: a stage must sit in one `node_groups` entry",
                        hw_doc.origin("node_groups")
                    ),
                ));
            }
        }
    }
    Ok(())
}
