//! Metrics of one simulated iteration, with their definitions (mirrored in the README).

use crate::config::RunConfig;
use crate::ops::KernelKind;
use crate::sim::{RankTime, SimOutcome};
use crate::workload::layout::Layout;
use crate::workload::transformer::{megatron_flops_per_iteration, model_flops_per_iteration, total_params};
use serde::Serialize;

/// Mean seconds per GPU spent in each state during the iteration.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TimeBreakdown {
    /// Running kernels.
    pub compute_s: f64,
    /// Communication in flight while no kernel ran.
    pub exposed_comm_s: f64,
    /// Communication hidden behind kernels (not part of the sum to the iteration time).
    pub overlapped_comm_s: f64,
    /// Kernel time lost to the SMs that communication kernels held beside them (part of
    /// `compute_s`; omitted when none, as on machines without an NCCL model).
    #[serde(skip_serializing_if = "is_zero")]
    pub sm_contention_s: f64,
    /// Waiting at a collective for the other members.
    pub sync_wait_s: f64,
    /// Storage I/O (checkpoints, data loading) with nothing else running.
    pub io_s: f64,
    /// Idle on a pipeline: waiting for work from other stages, or for the iteration to end.
    pub bubble_s: f64,
    /// Idle without a pipeline (pipeline = 1): waiting for the slowest rank.
    pub idle_s: f64,
    /// Compute time the GPU spent waiting for its host to launch the kernels (part of
    /// `compute_s`; omitted when none, as on machines without `node.host_dispatch`).
    #[serde(skip_serializing_if = "is_zero")]
    pub host_wait_s: f64,
    /// The kernel time by kind of kernel (each op's time split as its kernels' uncontended times
    /// are; with `sm_contention_s` and `host_wait_s`, it sums to `compute_s`).
    pub kernels: KernelTimes,
}

/// Mean seconds per GPU that each kind of kernel ran.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct KernelTimes {
    /// Matrix multiplies (16-bit or FP8, batched or not).
    pub gemm_s: f64,
    /// Fused attention kernels.
    pub attention_s: f64,
    /// Memory-bound kernels: element-wise, norms, softmax, casts, optimizer passes.
    pub memory_bound_s: f64,
    /// Kernels of known work but unknown shape, and measured kernels of traces.
    pub other_s: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl TimeBreakdown {
    fn of(times: &[&RankTime], pipelined: bool) -> Self {
        let n = times.len().max(1) as f64;
        let mean = |f: fn(&RankTime) -> u64| times.iter().map(|t| f(t) as f64 * 1e-9).sum::<f64>() / n;
        let idle = mean(|t| t.idle.0);
        TimeBreakdown {
            compute_s: mean(|t| t.compute.0),
            exposed_comm_s: mean(|t| t.exposed_comm.0),
            overlapped_comm_s: mean(|t| t.overlapped_comm.0),
            sm_contention_s: mean(|t| t.sm_contention.0),
            sync_wait_s: mean(|t| t.sync_wait.0),
            io_s: mean(|t| t.io.0),
            bubble_s: if pipelined { idle } else { 0.0 },
            idle_s: if pipelined { 0.0 } else { idle },
            host_wait_s: mean(|t| t.host_wait.0),
            kernels: {
                let kind = |k: KernelKind| times.iter().map(|t| t.by_kind_ns[k.index()] * 1e-9).sum::<f64>() / n;
                KernelTimes {
                    gemm_s: kind(KernelKind::Gemm),
                    attention_s: kind(KernelKind::Attention),
                    memory_bound_s: kind(KernelKind::MemoryBound),
                    other_s: kind(KernelKind::Other),
                }
            },
        }
    }
}

/// One pipeline stage: its bubble and time breakdown (mean over the stage's GPUs).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageReport {
    /// Stage index.
    pub stage: u32,
    /// Bubble seconds.
    pub bubble_s: f64,
    /// Bubble time / iteration time.
    pub fraction: f64,
    /// Bubble time / (iteration time - bubble time), Megatron's (p-1)/m.
    pub ratio: f64,
    /// Time breakdown.
    pub breakdown: TimeBreakdown,
}

/// Pipeline bubble summary.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BubbleReport {
    /// Mean over stages of bubble time / iteration time.
    pub fraction: f64,
    /// fraction / (1 - fraction): bubble time / ideal busy time, Megatron's (p-1)/m.
    pub ratio: f64,
    /// Per stage.
    pub per_stage: Vec<StageReport>,
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// The parallel configuration that ran.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ParallelReport {
    /// Tensor degree.
    pub tensor: u32,
    /// Pipeline degree.
    pub pipeline: u32,
    /// Data degree.
    pub data: u32,
    /// Context-parallel size (left out when 1).
    #[serde(skip_serializing_if = "is_one")]
    pub context: u32,
    /// Model chunks per device.
    pub interleave: u32,
    /// Schedule name.
    pub schedule: &'static str,
    /// Recompute mode.
    pub recompute: &'static str,
    /// Global batch.
    pub global_batch: u64,
    /// Microbatch.
    pub microbatch: u64,
    /// Microbatches per pipeline, m.
    pub microbatches: u64,
}

/// Everything `run` reports; serialized as report.json (stable field order, no wall-clock times).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Workload name.
    pub name: String,
    /// Hardware name.
    pub hardware: String,
    /// Network model that produced the result.
    pub network_model: &'static str,
    /// Compute model.
    pub compute_model: &'static str,
    /// RNG seed.
    pub seed: u64,
    /// The memory limit the run was checked against before it was built (`--max-memory`), bytes.
    pub max_memory_bytes: u64,
    /// GPUs used.
    pub gpus: u64,
    /// Parameters, Megatron eq. 2.
    pub parameters: f64,
    /// The split.
    pub parallel: ParallelReport,
    /// Simulated time of one iteration.
    pub iteration_time_s: f64,
    /// Megatron's metric: F (eq. 3) / (iteration time x GPUs), in TFLOP/s.
    pub tflops_per_gpu: f64,
    /// Model FLOPs utilisation: model FLOPs without recompute / time / (GPUs x peak).
    pub mfu: f64,
    /// Sequences per second.
    pub samples_per_s: f64,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Pipeline bubble.
    pub bubble: BubbleReport,
    /// Mean per GPU over all GPUs.
    pub breakdown: TimeBreakdown,
    /// Memory per GPU and the out-of-memory verdict (not known for traces without a workload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::workload::memory::MemoryReport>,
    /// Events the engine processed.
    pub events: u64,
    /// The ranks others waited for longest at collectives (arriving last), at most 5, with the
    /// waiting time they caused (summed over the members that waited), s.
    pub sync_wait_caused_by: Vec<RankWait>,
    /// With `run --iterations N` (N > 1): the spread of the iteration time over seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<crate::report::spread::IterationStats>,
    /// Ranks whose tasks were simulated: every rank, or one per pipeline stage in a
    /// representative run, where each stands for its symmetric copies.
    pub ranks_simulated: u64,
    /// Ranks the simulated ones stand for (all GPUs of the run).
    pub ranks_represented: u64,
    /// Why a representative run was asked for but every rank ran (the machine or the compute
    /// model is not symmetric for it), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_rank_because: Option<String>,
    /// The whole resolved configuration that ran (after `--set`), so that
    /// `clustersim run --config report.json` reruns it to the identical report.
    pub config: ConfigRecord,
}

/// Waiting at collectives that one rank caused by arriving last.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RankWait {
    /// The rank.
    pub rank: u32,
    /// Seconds other members spent waiting for it.
    pub seconds: f64,
}

impl RankWait {
    /// The `n` ranks with the most waiting caused (ties by rank), those above 1 ns.
    pub fn top(waited_on: &[f64], n: usize) -> Vec<RankWait> {
        let mut v: Vec<RankWait> = waited_on
            .iter()
            .enumerate()
            .filter(|(_, &s)| s > 1e-9)
            .map(|(r, &s)| RankWait {
                rank: r as u32,
                seconds: s,
            })
            .collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.rank.cmp(&b.rank)));
        v.truncate(n);
        v
    }
}

/// What ran: the hardware and the workload (none for a trace without one). A trace run's file is
/// not recorded here: the report of `run --trace` of an exported workload must stay byte-identical
/// to the report of `run` (the trace format's round trip).
#[derive(Clone, Debug, Serialize)]
pub struct ConfigRecord {
    /// The hardware description as it ran.
    pub hardware: crate::config::HardwareSpec,
    /// The workload as it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::config::WorkloadSpec>,
}

/// Equal when they serialize alike (the specs themselves have no equality).
impl PartialEq for ConfigRecord {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_string(self).ok() == serde_json::to_string(other).ok()
    }
}

/// What a report describes: a generated workload (model metrics by Megatron's formulas) or a
/// trace without one (rates from the trace's own kernel FLOPs).
pub enum Subject<'a> {
    /// A workload spec.
    Workload(&'a crate::config::WorkloadSpec),
    /// A trace: its name, ranks and the FLOPs of all its kernels.
    Trace {
        /// Name.
        name: &'a str,
        /// Ranks.
        ranks: u32,
        /// Kernel FLOPs per iteration, all ranks together.
        flops: f64,
    },
}

impl Report {
    /// Derives all metrics from a configuration and a finished simulation.
    pub fn new(cfg: &RunConfig, out: &SimOutcome, seed: u64) -> Report {
        Report::build(&cfg.hardware, Subject::Workload(&cfg.workload), out, seed)
    }

    /// The report's own invariants: every headline number finite, MFU at most `mfu_ceiling` (1 for
    /// 16-bit training; FP8 GEMMs may beat the 16-bit peak MFU is counted against, up to the ratio of
    /// the peaks; infinite where the compute model is ideal, where the clock's nanosecond rounding may
    /// shave a hair off, or for traces), the breakdown summing to the iteration time. A broken one is
    /// an internal error, never a published number.
    pub fn check(&self, mfu_ceiling: f64) -> crate::error::Result<()> {
        let b = &self.breakdown;
        let numbers = [
            self.iteration_time_s,
            self.tflops_per_gpu,
            self.mfu,
            self.samples_per_s,
            self.tokens_per_s,
            self.bubble.fraction,
            self.bubble.ratio,
            b.compute_s,
            b.exposed_comm_s,
            b.bubble_s,
        ];
        let sum = b.compute_s + b.exposed_comm_s + b.io_s + b.sync_wait_s + b.bubble_s + b.idle_s;
        let broken = if numbers.iter().any(|v| !v.is_finite()) {
            Some("a metric is not a finite number".to_string())
        } else if self.mfu > mfu_ceiling + 1e-9 {
            Some(format!("MFU {} exceeds {mfu_ceiling}", self.mfu))
        } else if (sum - self.iteration_time_s).abs() > 1e-6 * self.iteration_time_s.max(1e-9) + 1e-9 {
            Some(format!(
                "the breakdown sums to {sum} s, the iteration takes {} s",
                self.iteration_time_s
            ))
        } else {
            None
        };
        debug_assert!(broken.is_none(), "{broken:?}");
        match broken {
            Some(why) => Err(crate::error::Error::Internal(format!("report of {}: {why}", self.name))),
            None => Ok(()),
        }
    }

    /// Derives all metrics for a subject simulated on `hw`.
    pub fn build(hw: &crate::config::HardwareSpec, subject: Subject<'_>, out: &SimOutcome, seed: u64) -> Report {
        let lay = match subject {
            Subject::Workload(w) => Layout::of(w),
            Subject::Trace { ranks, .. } => Layout::plain(ranks, 1, 1),
        };
        let gpus = lay.ranks() as u64;
        let t = out.makespan.as_secs_f64();
        let pipelined = lay.p > 1;
        let per_stage: Vec<StageReport> = (0..lay.p)
            .map(|stage| {
                let ranks = (0..lay.t * lay.d).map(|i| (stage * lay.t * lay.d + i) as usize);
                let times: Vec<&RankTime> = ranks.filter(|&r| out.active[r]).map(|r| &out.rank_time[r]).collect();
                let breakdown = TimeBreakdown::of(&times, pipelined);
                let bubble = breakdown.bubble_s;
                StageReport {
                    stage,
                    bubble_s: bubble,
                    fraction: safe_div(bubble, t),
                    ratio: safe_div(bubble, t - bubble),
                    breakdown,
                }
            })
            .collect();
        let fraction = per_stage.iter().map(|s| s.fraction).sum::<f64>() / lay.p as f64;
        let all: Vec<&RankTime> = out
            .rank_time
            .iter()
            .zip(&out.active)
            .filter(|(_, a)| **a)
            .map(|(t, _)| t)
            .collect();
        let peak = hw.gpu.peak_flops.flops_per_s();
        let compute_model = match hw.gpu.compute {
            crate::config::ComputeModelKind::Roofline => "roofline",
            crate::config::ComputeModelKind::Ideal => "ideal",
        };
        let (name, parameters, parallel, tflops, mfu, samples, tokens, memory) = match subject {
            Subject::Workload(w) => {
                let samples = w.batch.global as f64;
                (
                    w.name.clone(),
                    total_params(&w.model),
                    ParallelReport {
                        tensor: lay.t,
                        pipeline: lay.p,
                        data: w.parallel.data,
                        context: w.parallel.context,
                        interleave: w.chunks(),
                        schedule: w.schedule.name(),
                        recompute: w.recompute.name(),
                        global_batch: w.batch.global,
                        microbatch: w.batch.micro,
                        microbatches: w.microbatches(),
                    },
                    safe_div(megatron_flops_per_iteration(&w.model, w.batch.global), t * gpus as f64) / 1e12,
                    safe_div(
                        model_flops_per_iteration(&w.model, w.batch.global),
                        t * gpus as f64 * peak,
                    ),
                    samples,
                    samples * w.model.seq_len as f64,
                    Some(crate::workload::memory::memory(
                        w,
                        hw.gpu.memory.as_f64(),
                        hw.gpu.memory_reserved.as_f64(),
                        hw.gpu.memory_fragmentation,
                    )),
                )
            }
            Subject::Trace { name, ranks, flops } => (
                name.to_string(),
                0.0,
                ParallelReport {
                    tensor: 1,
                    pipeline: 1,
                    data: ranks,
                    context: 1,
                    interleave: 1,
                    schedule: "trace",
                    recompute: "trace",
                    global_batch: 0,
                    microbatch: 0,
                    microbatches: 0,
                },
                safe_div(flops, t * gpus as f64) / 1e12,
                safe_div(flops, t * gpus as f64 * peak),
                0.0,
                0.0,
                None,
            ),
        };
        Report {
            name,
            hardware: hw.name.clone(),
            network_model: out.network_model,
            compute_model,
            seed,
            max_memory_bytes: 0,
            gpus,
            parameters,
            parallel,
            iteration_time_s: t,
            tflops_per_gpu: tflops,
            mfu,
            samples_per_s: safe_div(samples, t),
            tokens_per_s: safe_div(tokens, t),
            bubble: BubbleReport {
                fraction,
                ratio: safe_div(fraction, 1.0 - fraction),
                per_stage,
            },
            breakdown: TimeBreakdown::of(&all, pipelined),
            memory,
            events: out.events,
            sync_wait_caused_by: RankWait::top(&out.waited_on, 5),
            iterations: None,
            ranks_simulated: out.active.iter().filter(|&&a| a).count() as u64,
            ranks_represented: gpus,
            every_rank_because: None,
            config: ConfigRecord {
                hardware: hw.clone(),
                workload: match subject {
                    Subject::Workload(w) => Some(w.clone()),
                    Subject::Trace { .. } => None,
                },
            },
        }
    }
}

fn safe_div(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
