//! `clustersim plan`: which parallel configuration of a model on N GPUs fits and runs fastest,
//! and how long training takes.
//!
//! Every combination of tensor t (a divisor of N and of the heads, at most one node), context c
//! (with fused attention), pipeline p (a divisor of N/(t c) and of the layers), data d = N/(t c p),
//! expert e (for a mixture-of-experts model), microbatch b in {1, 2, 4, 8}, schedule (1F1B, or
//! interleaved with v in {2, 4}), recompute (none, selective, full), sequence parallelism (with
//! t > 1), ZeRO stage (0, 1 = distributed optimizer, 3 = FSDP) and precision (FP8 where the GPU has
//! it) is checked like a run's input ([`space`] says which axes apply and what is pruned); the valid
//! ones whose peak memory fits are simulated in parallel, one GPU per pipeline stage with the
//! analytic network model (exact for it, by symmetry), and ranked by throughput. [`check`] runs the
//! fastest again with the flow network model (contention on the fabric). [`table`] prints and
//! writes the ranking.

pub mod space;
pub mod table;

pub use space::{balanced_layers, candidates, Candidate};
pub use table::{csv, flow_order, table};

use crate::config::{load_run_config, DocumentKind, Override, RunConfig, Source};
use crate::error::{Error, Result};
use crate::studies::run::{check_tasks, run, RunOptions, DEFAULT_MAX_MEMORY, MAX_REPEATED_TASKS};
use crate::workload::generate::estimated_tasks;
use crate::workload::memory::memory;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
    /// TFLOP/s per GPU with the flow network model, for the candidates [`check`]ed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_tflops_per_gpu: Option<f64>,
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
    /// Fitting candidates not simulated because they cannot win ([`space::prune`]).
    pub pruned: usize,
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
    /// Fitting candidates not simulated because they cannot win ([`space::prune`]).
    pub pruned: usize,
}

/// Plans `gpus` GPUs for the workload and hardware sources, with extra overrides: the search,
/// every fitting candidate simulated, the ranking.
pub fn plan(hardware: &Source, workload: &Source, sets: &[Override], gpus: u64, tokens: Option<f64>) -> Result<Plan> {
    let found = search(hardware, workload, sets, gpus)?;
    let all: Vec<usize> = (0..found.fitting.len()).collect();
    check_work(&found, &all, tokens)?;
    let ranked = simulate(&found.fitting, &all, tokens)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    Ok(rank(ranked, found.valid, found.out_of_memory, found.pruned))
}

/// A split of one GPU, which every machine holds: what the plan's base configuration is read with
/// when the workload's own split does not fit the machine.
const SMALLEST_SPLIT: [&str; 9] = [
    "workload.parallel.tensor=1",
    "workload.parallel.context=1",
    "workload.parallel.pipeline=1",
    "workload.parallel.data=1",
    "workload.parallel.expert=1",
    "workload.parallel.interleave=1",
    "workload.parallel.layers_per_stage=~",
    "workload.schedule=1f1b",
    "workload.ep_comm_overlap=false",
];

/// Enumerates the candidates for `gpus` GPUs and keeps those that are valid and fit in memory;
/// an error where none is valid or none fits.
pub fn search(hardware: &Source, workload: &Source, sets: &[Override], gpus: u64) -> Result<Search> {
    // the search ranks with the analytic model (and `--check` runs the fastest with flows): another
    // model asked for would be silently replaced
    let model = sets
        .iter()
        .rev()
        .find(|o| o.target == DocumentKind::Hardware && o.path == ["network", "model"]);
    if let Some(o) = model.filter(|o| o.value.as_str() != Some("analytic")) {
        return Err(Error::Input(format!(
            "error: --set {}: plan ranks every candidate with the analytic network model; to see the flow model's times for the fastest, use --check K instead",
            o.original
        )));
    }
    let mut base = sets.to_vec();
    base.push(Override::parse("hardware.network.model=analytic")?);
    let base_cfg = match load_run_config(hardware, workload, &base) {
        Ok(cfg) => cfg,
        // the workload's own split may not fit the machine asked about (a preset's 64 GPUs on 2
        // nodes); every candidate replaces it, so the base (model, attention, machine) is read with
        // the smallest split instead, and the first error stands if that fails too
        Err(first) => {
            let mut smallest = base.clone();
            for s in SMALLEST_SPLIT {
                smallest.push(Override::parse(s)?);
            }
            load_run_config(hardware, workload, &smallest).map_err(|_| first)?
        }
    };
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
        .into_par_iter()
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
    let keep = space::prune(
        &fitting.iter().map(|(c, _)| c).collect::<Vec<_>>(),
        base_cfg.workload.batch.global,
    );
    let before = fitting.len();
    let fitting: Vec<_> = fitting
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(f, _)| f)
        .collect();
    Ok(Search {
        pruned: before - fitting.len(),
        fitting,
        valid,
        out_of_memory: too_big.len(),
    })
}

/// Refuses, before anything is simulated, to plan for absurd `tokens` or to simulate candidates
/// `ids` of which one would need more than a run's memory limit or which together would simulate
/// more than [`MAX_REPEATED_TASKS`] tasks (about 20 minutes).
pub fn check_work(found: &Search, ids: &[usize], tokens: Option<f64>) -> Result<()> {
    if let (Some(t), Some((_, cfg))) = (tokens, found.fitting.first()) {
        crate::studies::train::iterations(&cfg.workload, t)?;
    }
    let mut total = 0.0;
    for (c, cfg) in ids.iter().filter_map(|&i| found.fitting.get(i)) {
        let tasks = estimated_tasks(&cfg.workload, true);
        check_tasks(
            &format!("candidate {}", c.label()),
            tasks,
            DEFAULT_MAX_MEMORY,
            "shrink the batch",
        )?;
        total += tasks;
    }
    if total > MAX_REPEATED_TASKS {
        return Err(Error::Input(format!(
            "error: the plan would simulate {} candidates of about {total:.2e} tasks in all, more than {MAX_REPEATED_TASKS:.0e} (roughly 20 minutes); shrink the batch or split the plan with --shard K/N",
            ids.len()
        )));
    }
    Ok(())
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
                    flow_tflops_per_gpu: None,
                },
            ))
        })
        .collect()
}

/// Ranks simulated candidates (given in search order) fastest first, ties by label.
pub fn rank(mut ranked: Vec<Ranked>, valid: usize, out_of_memory: usize, pruned: usize) -> Plan {
    ranked.sort_by(|a, b| {
        b.tokens_per_s
            .total_cmp(&a.tokens_per_s)
            .then_with(|| a.candidate.label().cmp(&b.candidate.label()))
    });
    Plan {
        ranked,
        valid,
        out_of_memory,
        pruned,
    }
}

/// Runs the `k` fastest of a ranking again with the flow network model (max-min sharing on the
/// fabric, which the analytic model ranks without: oversubscribed uplinks, rails, NICs shared other
/// than by a data-parallel phase), one GPU per stage where that is exact and every rank elsewhere,
/// and records their TFLOP/s per GPU. The ranking stays the analytic one.
pub fn check(plan: &mut Plan, hardware: &Source, workload: &Source, sets: &[Override], k: usize) -> Result<()> {
    let configs: Vec<RunConfig> = plan
        .ranked
        .par_iter()
        .take(k)
        .map(|r| {
            let mut o = sets.to_vec();
            for s in r.candidate.overrides() {
                o.push(Override::parse(&s)?);
            }
            o.push(Override::parse("hardware.network.model=flow")?);
            load_run_config(hardware, workload, &o)
        })
        .collect::<Result<_>>()?;
    // one GPU per stage, or every rank where the ranks differ (the flow model may find more such)
    let tasks: f64 = configs
        .iter()
        .map(|cfg| {
            let representative = crate::workload::generate::asymmetry(&cfg.workload).is_none();
            estimated_tasks(&cfg.workload, representative)
        })
        .sum();
    if tasks > MAX_REPEATED_TASKS {
        return Err(Error::Input(format!(
            "error: --check {k}: the flow runs would simulate about {tasks:.2e} tasks, more than {MAX_REPEATED_TASKS:.0e} (roughly 20 minutes); check fewer"
        )));
    }
    let checked: Vec<Result<f64>> = configs
        .par_iter()
        .map(|cfg| Ok(run(cfg, &RunOptions::metrics_only(true))?.report.tflops_per_gpu))
        .collect();
    for (r, flow) in plan.ranked.iter_mut().zip(checked) {
        r.flow_tflops_per_gpu = Some(flow?);
    }
    Ok(())
}
