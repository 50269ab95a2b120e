//! `clustersim plan`: which parallel configuration of a model on N GPUs fits and runs fastest,
//! and how long training takes.
//!
//! Every combination of tensor t (a divisor of N and of the heads, at most one node), pipeline p (a
//! divisor of N/t and of the layers), data d = N/(t p), microbatch b in {1, 2, 4, 8}, schedule
//! (1F1B, or interleaved with v in {2, 4}), recompute (none, selective, full), sequence parallelism
//! (with t > 1) and ZeRO stage (0, 1 = distributed optimizer, 3 = FSDP) is checked like a run's input; the
//! valid ones whose peak memory fits are simulated in parallel, one GPU per pipeline stage with the
//! analytic network model (exact for it, by symmetry), and ranked by throughput.

use crate::config::{load_run_config, Override, Recompute, RunConfig, Source};
use crate::error::{Error, Result};
use crate::studies::run::{run, RunOptions};
use crate::workload::memory::memory;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One configuration of the search space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// Tensor degree.
    pub tensor: u32,
    /// Pipeline degree.
    pub pipeline: u32,
    /// Data degree.
    pub data: u32,
    /// Microbatch.
    pub micro: u64,
    /// Model chunks per GPU (1: 1F1B, more: interleaved).
    pub interleave: u32,
    /// Recompute mode.
    pub recompute: Recompute,
    /// Sequence parallelism.
    pub sequence_parallel: bool,
    /// ZeRO stage.
    pub zero_stage: u8,
    /// Layers per stage when balanced over GPUs of different speeds (heterogeneous machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_per_stage: Option<Vec<u32>>,
}

impl Candidate {
    /// The `--set` overrides that select this configuration.
    pub fn overrides(&self) -> Vec<String> {
        let schedule = if self.interleave > 1 { "interleaved" } else { "1f1b" };
        vec![
            format!("workload.parallel.tensor={}", self.tensor),
            format!("workload.parallel.pipeline={}", self.pipeline),
            format!("workload.parallel.data={}", self.data),
            format!("workload.parallel.interleave={}", self.interleave),
            format!("workload.parallel.sequence_parallel={}", self.sequence_parallel),
            format!("workload.batch.micro={}", self.micro),
            format!("workload.schedule={schedule}"),
            format!("workload.recompute={}", self.recompute.name()),
            format!("workload.data_parallel.zero_stage={}", self.zero_stage),
            "workload.gpus=~".to_string(),
        ]
        .into_iter()
        .chain(self.layers_per_stage.iter().map(|l| {
            let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
            format!("workload.parallel.layers_per_stage=[{}]", list.join(","))
        }))
        .collect()
    }
    /// Short description, e.g. `t8 p16 d8 b1 v1 full sp zero1`.
    pub fn label(&self) -> String {
        format!(
            "t{} p{} d{} b{} v{} {}{} zero{}",
            self.tensor,
            self.pipeline,
            self.data,
            self.micro,
            self.interleave,
            self.recompute.name(),
            if self.sequence_parallel { " sp" } else { "" },
            self.zero_stage
        ) + &self.layers_per_stage.as_ref().map_or(String::new(), |l| {
            let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
            format!(" layers {}", list.join("+"))
        })
    }
}

/// Layers per stage in proportion to each stage's GPU peak (largest remainders, at least one
/// each), for a split of `layers` over `p` stages of `per_stage` GPUs on a machine with node
/// groups; None when every stage has the same GPU.
pub fn balanced_layers(hw: &crate::config::HardwareSpec, layers: u32, p: u32, per_stage: u64) -> Option<Vec<u32>> {
    let groups = crate::config::groups::group_of_nodes(&hw.node_groups, hw.nodes);
    let models = hw.gpu_models();
    let speed: Vec<f64> = (0..p as u64)
        .map(|s| {
            let node = (s * per_stage / hw.node.gpus as u64) as usize;
            models[groups.get(node).copied().unwrap_or(0) as usize]
                .peak_flops
                .flops_per_s()
        })
        .collect();
    if speed.iter().all(|&x| x == speed[0]) || layers < p {
        return None;
    }
    let total: f64 = speed.iter().sum();
    let spare = (layers - p) as f64;
    let exact: Vec<f64> = speed.iter().map(|x| spare * x / total).collect();
    let mut out: Vec<u32> = exact.iter().map(|x| 1 + x.floor() as u32).collect();
    let mut order: Vec<usize> = (0..p as usize).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let mut left = layers - out.iter().sum::<u32>();
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    Some(out)
}

/// A simulated candidate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ranked {
    /// The configuration.
    pub candidate: Candidate,
    /// TFLOP/s per GPU (Megatron eq. 3).
    pub tflops_per_gpu: f64,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Iteration time, s.
    pub iteration_time_s: f64,
    /// Peak memory per GPU, bytes.
    pub peak_memory_bytes: f64,
    /// Bubble time / iteration time.
    pub bubble_fraction: f64,
    /// Days to train the requested tokens, if any.
    pub days: Option<f64>,
}

/// What the planner found.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Simulated candidates, fastest first.
    pub ranked: Vec<Ranked>,
    /// Candidates that are valid configurations.
    pub valid: usize,
    /// Valid candidates dropped for not fitting in memory.
    pub out_of_memory: usize,
}

fn divisors(n: u64) -> Vec<u64> {
    (1..=n).filter(|d| n % d == 0).collect()
}

/// Every candidate of the search space for `gpus` GPUs (validity is checked later).
pub fn candidates(cfg: &RunConfig, gpus: u64) -> Vec<Candidate> {
    let m = &cfg.workload.model;
    let mut out = Vec::new();
    for t in divisors(gpus)
        .into_iter()
        .filter(|t| *t <= cfg.hardware.node.gpus as u64 && m.heads % t == 0)
    {
        for p in divisors(gpus / t).into_iter().filter(|p| m.layers as u64 % p == 0) {
            let d = gpus / (t * p);
            for micro in [1u64, 2, 4, 8] {
                for interleave in [1u32, 2, 4] {
                    if interleave > 1 && p == 1 {
                        continue;
                    }
                    for recompute in [Recompute::None, Recompute::Selective, Recompute::Full] {
                        for sequence_parallel in [false, true] {
                            if sequence_parallel && t == 1 {
                                continue;
                            }
                            for zero_stage in [0u8, 1, 3] {
                                let c = Candidate {
                                    tensor: t as u32,
                                    pipeline: p as u32,
                                    data: d as u32,
                                    micro,
                                    interleave,
                                    recompute,
                                    sequence_parallel,
                                    zero_stage,
                                    layers_per_stage: None,
                                };
                                // on mixed GPUs, also the split that gives faster stages more layers
                                let balanced = (interleave == 1)
                                    .then(|| balanced_layers(&cfg.hardware, m.layers, p as u32, t * d))
                                    .flatten();
                                if let Some(layers) = balanced {
                                    out.push(Candidate {
                                        layers_per_stage: Some(layers),
                                        ..c.clone()
                                    });
                                }
                                out.push(c);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// The configurations worth simulating: every valid candidate that fits in memory.
#[derive(Clone, Debug)]
pub struct Search {
    /// Candidates that fit, with their configuration, in search order (their index is their id).
    pub fitting: Vec<(Candidate, RunConfig)>,
    /// Candidates that are valid configurations.
    pub valid: usize,
    /// Valid candidates dropped for not fitting in memory.
    pub out_of_memory: usize,
}

/// Plans `gpus` GPUs for the workload and hardware sources, with extra overrides: the search,
/// every fitting candidate simulated, the ranking.
pub fn plan(hardware: &Source, workload: &Source, sets: &[Override], gpus: u64, tokens: Option<f64>) -> Result<Plan> {
    let found = search(hardware, workload, sets, gpus)?;
    let all: Vec<usize> = (0..found.fitting.len()).collect();
    let ranked = simulate(&found.fitting, &all, tokens)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    Ok(rank(ranked, found.valid, found.out_of_memory))
}

/// Enumerates the candidates for `gpus` GPUs and keeps those that are valid and fit in memory;
/// an error where none is valid or none fits.
pub fn search(hardware: &Source, workload: &Source, sets: &[Override], gpus: u64) -> Result<Search> {
    let mut base = sets.to_vec();
    base.push(Override::parse("hardware.network.model=analytic")?);
    let base_cfg = load_run_config(hardware, workload, &base)?;
    if gpus == 0 {
        return Err(Error::Input("error: --gpus 0: a plan needs at least 1 GPU".into()));
    }
    if gpus > base_cfg.hardware.total_gpus() {
        return Err(Error::Input(format!(
            "error: --gpus {gpus}: {} has {} nodes x {} GPUs = {} GPUs",
            base_cfg.hardware.name,
            base_cfg.hardware.nodes,
            base_cfg.hardware.node.gpus,
            base_cfg.hardware.total_gpus()
        )));
    }
    // valid configurations, with their memory
    let configs: Vec<(Candidate, RunConfig)> = candidates(&base_cfg, gpus)
        .into_iter()
        .filter_map(|c| {
            let mut o = base.clone();
            for s in c.overrides() {
                o.push(Override::parse(&s).ok()?);
            }
            load_run_config(hardware, workload, &o).ok().map(|cfg| (c, cfg))
        })
        .collect();
    if configs.is_empty() {
        let m = &base_cfg.workload.model;
        return Err(Error::Input(format!(
            "error: --gpus {gpus}: no (tensor, pipeline, data) split of {gpus} GPUs is valid for {} ({} layers, {} heads, global batch {}): tensor must divide the heads and be at most {} (one node), pipeline must divide the layers, and the batch must divide over data x microbatch",
            base_cfg.workload.name, m.layers, m.heads, base_cfg.workload.batch.global, base_cfg.hardware.node.gpus
        )));
    }
    let gpu = &base_cfg.hardware.gpu;
    let mem = |cfg: &RunConfig| {
        memory(
            &cfg.workload,
            gpu.memory.as_f64(),
            gpu.memory_reserved.as_f64(),
            gpu.memory_fragmentation,
        )
    };
    let valid = configs.len();
    let (fitting, too_big): (Vec<_>, Vec<_>) = configs.into_iter().partition(|(_, cfg)| mem(cfg).fits);
    if fitting.is_empty() {
        let (c, cfg) = too_big
            .iter()
            .min_by(|a, b| mem(&a.1).peak_bytes_per_gpu.total_cmp(&mem(&b.1).peak_bytes_per_gpu))
            .expect("configs is not empty");
        let gib = |x: f64| x / (1u64 << 30) as f64;
        return Err(Error::Input(format!(
            "error: nothing fits: the smallest configuration ({}) needs {:.1} GiB per GPU, the GPU has {:.1} GiB; use more GPUs or a GPU with more memory",
            c.label(),
            gib(mem(cfg).peak_bytes_per_gpu),
            gib(gpu.memory.as_f64())
        )));
    }
    Ok(Search {
        fitting,
        valid,
        out_of_memory: too_big.len(),
    })
}

/// Simulates the fitting candidates with the given ids (indices into `fitting`), in parallel, one
/// GPU per stage; returns (id, result) in the order of `ids`, leaving out any that fails to run.
pub fn simulate(fitting: &[(Candidate, RunConfig)], ids: &[usize], tokens: Option<f64>) -> Vec<(usize, Ranked)> {
    ids.par_iter()
        .filter_map(|&id| {
            let (c, cfg) = fitting.get(id)?;
            let opts = RunOptions::metrics_only(true);
            let r = run(cfg, &opts).ok()?.report;
            Some((
                id,
                Ranked {
                    candidate: c.clone(),
                    tflops_per_gpu: r.tflops_per_gpu,
                    tokens_per_s: r.tokens_per_s,
                    iteration_time_s: r.iteration_time_s,
                    peak_memory_bytes: r.memory.as_ref().map_or(0.0, |m| m.peak_bytes_per_gpu),
                    bubble_fraction: r.bubble.fraction,
                    days: tokens.map(|t| t / r.tokens_per_s / 86_400.0),
                },
            ))
        })
        .collect()
}

/// Ranks simulated candidates (given in search order) fastest first, ties by label.
pub fn rank(mut ranked: Vec<Ranked>, valid: usize, out_of_memory: usize) -> Plan {
    ranked.sort_by(|a, b| {
        b.tokens_per_s
            .total_cmp(&a.tokens_per_s)
            .then_with(|| a.candidate.label().cmp(&b.candidate.label()))
    });
    Plan {
        ranked,
        valid,
        out_of_memory,
    }
}

/// The ranked table, top `k` rows.
pub fn table(plan: &Plan, k: usize) -> String {
    let mut s = format!(
        "{:>4}  {:<34} {:>10} {:>12} {:>10} {:>9} {:>8}",
        "rank", "configuration", "TFLOP/s", "iteration", "memory", "bubble", "days"
    );
    s.push('\n');
    for (i, r) in plan.ranked.iter().take(k).enumerate() {
        s += &format!(
            "{:>4}  {:<34} {:>10.1} {:>10.3} s {:>6.1} GiB {:>9.3} {:>8}\n",
            i + 1,
            r.candidate.label(),
            r.tflops_per_gpu,
            r.iteration_time_s,
            r.peak_memory_bytes / (1u64 << 30) as f64,
            r.bubble_fraction,
            r.days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into())
        );
    }
    s
}

/// CSV of every simulated candidate, fastest first.
pub fn csv(plan: &Plan) -> String {
    let mut s = String::from(
        "rank,tensor,pipeline,data,micro,interleave,recompute,sequence_parallel,zero_stage,tflops_per_gpu,tokens_per_s,iteration_time_s,peak_memory_bytes,bubble_fraction,days,layers_per_stage\n",
    );
    for (i, r) in plan.ranked.iter().enumerate() {
        let c = &r.candidate;
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            i + 1,
            c.tensor,
            c.pipeline,
            c.data,
            c.micro,
            c.interleave,
            c.recompute.name(),
            c.sequence_parallel,
            c.zero_stage,
            r.tflops_per_gpu,
            r.tokens_per_s,
            r.iteration_time_s,
            r.peak_memory_bytes,
            r.bubble_fraction,
            r.days.map(|d| d.to_string()).unwrap_or_default(),
            c.layers_per_stage.as_ref().map_or(String::new(), |l| {
                let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                list.join(";")
            })
        );
    }
    s
}
