//! `clustersim cluster JOBS.yaml`: several training jobs on one machine, sharing its fabric.
//!
//! ```yaml
//! name: two-jobs
//! hardware: dgx-a100                 # preset or file
//! set: ["hardware.network.topology.oversubscription=2"]
//! jobs:
//!   - { name: a, workload: gpt-5.9b, set: ["workload.parallel.data=4"], placement: packed }
//!   - { name: b, workload: gpt-5.9b, start: 10 ms, placement: spread }
//!   - { name: c, workload: gpt-5.9b, placement: { nodes: [40, 41, 42, 43, 44, 45, 46, 47] } }
//!   - { name: d, workload: gpt-5.9b, placement: random }   # seeded by --seed
//! ```
//!
//! Each job gets whole nodes: its workload's t x p x d GPUs. Explicit node lists are placed first,
//! then `packed` jobs take the lowest free nodes in order, `spread` jobs interleave over the free
//! nodes (job k of K takes every K-th), and `random` jobs a seeded draw of the rest. Every job's
//! iteration is generated, its ranks renamed to the GPUs of its nodes, and all of them simulated in
//! one graph (flows of different jobs share links); each job is also simulated alone on the same
//! nodes, so that its slowdown is the fabric's doing.

use crate::config::NetworkModelKind;
use crate::config::{load_run_config, Document, Override, RunConfig, Source};
use crate::error::{Error, Result};
use crate::model::network::{FlowNetwork, SharedLinks};
use crate::sim::{network_for, simulate_on, SimOptions, SpanSink};
use crate::studies::run::{check_tasks, DEFAULT_MAX_MEMORY};
use crate::units::{SimDuration, SimTime};
use crate::workload::builder::GraphBuilder;
use crate::workload::graph::{Op, Stream, TaskKind, TaskLabel};
use crate::workload::{generate::estimated_tasks, TaskGraph, TaskId};
use serde::{Deserialize, Serialize};

/// A cluster study.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Name (output folder).
    pub name: String,
    /// Hardware file or preset.
    #[serde(default)]
    pub hardware: Option<String>,
    /// Hardware overrides.
    #[serde(default)]
    pub set: Vec<String>,
    /// The jobs.
    pub jobs: Vec<JobSpec>,
}

/// One job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Name.
    pub name: String,
    /// Workload file or preset.
    #[serde(default)]
    pub workload: Option<String>,
    /// Workload overrides.
    #[serde(default)]
    pub set: Vec<String>,
    /// GPUs it uses, if stated (must equal the workload's t x p x d).
    #[serde(default)]
    pub gpus: Option<u32>,
    /// When its iteration starts.
    #[serde(default)]
    pub start: SimDuration,
    /// Where it runs.
    #[serde(default)]
    pub placement: PlacementSpec,
}

/// Where a job runs.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(untagged, expecting = "expected packed, spread, random or {nodes: [...]}")]
pub enum PlacementSpec {
    /// A named policy.
    Policy(Policy),
    /// These nodes.
    Nodes {
        /// Node indices.
        nodes: Vec<u32>,
    },
    /// The default: packed.
    #[default]
    #[serde(skip_deserializing)]
    Default,
}

/// A placement policy.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The lowest free nodes, in order.
    Packed,
    /// Every K-th free node, interleaved with the other spread jobs.
    Spread,
    /// A seeded draw of the free nodes.
    Random,
}

/// One job's result.
#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    /// Name.
    pub name: String,
    /// Its nodes.
    pub nodes: Vec<u32>,
    /// GPUs.
    pub gpus: u32,
    /// Start, s.
    pub start_s: f64,
    /// Its iteration alone on the same nodes, s.
    pub alone_s: f64,
    /// Its iteration beside the other jobs, s (from its start to its last task).
    pub shared_s: f64,
    /// shared / alone.
    pub slowdown: f64,
}

/// Reads a spec file (job names must differ: they tell the jobs apart in every output).
pub fn load(path: &str) -> Result<(ClusterSpec, Document)> {
    let text = crate::config::read_limited(path)
        .map_err(|e| Error::Input(format!("error: {path}: cannot read cluster spec: {e}")))?;
    let doc = Document::parse(path, &text)?;
    let spec: ClusterSpec = doc.deserialize()?;
    if !crate::config::is_safe_name(&spec.name) {
        return Err(doc.field_error("name", crate::config::SAFE_NAME));
    }
    if spec.jobs.is_empty() || spec.jobs.len() > 64 {
        return Err(doc.field_error("jobs", format!("needs 1 to 64 jobs, not {}", spec.jobs.len())));
    }
    if let Some(j) = (1..spec.jobs.len()).find(|&j| spec.jobs[..j].iter().any(|a| a.name == spec.jobs[j].name)) {
        return Err(doc.field_error(&format!("jobs[{j}].name"), "another job has this name"));
    }
    Ok((spec, doc))
}

/// Each job's configuration (the cluster's hardware overrides, then the job's).
pub fn configs(spec: &ClusterSpec, doc: &Document) -> Result<Vec<RunConfig>> {
    let hardware = spec.hardware.clone().map_or(Source::Default, Source::Named);
    spec.jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let overrides = spec
                .set
                .iter()
                .chain(&job.set)
                .map(|s| Override::parse(s))
                .collect::<Result<Vec<_>>>()?;
            let workload = job.workload.clone().map_or(Source::Default, Source::Named);
            let cfg = load_run_config(&hardware, &workload, &overrides).map_err(|e| match e {
                Error::Input(m) => doc.field_error(&format!("jobs[{i}]"), m.trim_start_matches("error: ")),
                other => other,
            })?;
            let ranks = cfg.workload.gpus_needed() as u32;
            if job.gpus.is_some_and(|g| g != ranks) {
                return Err(doc.field_error(
                    &format!("jobs[{i}].gpus"),
                    format!("its workload runs on t x p x d = {ranks} GPUs"),
                ));
            }
            if ranks % cfg.hardware.node.gpus != 0 {
                return Err(doc.field_error(
                    &format!("jobs[{i}]"),
                    format!(
                        "uses {ranks} GPUs: jobs take whole nodes of {} GPUs",
                        cfg.hardware.node.gpus
                    ),
                ));
            }
            Ok(cfg)
        })
        .collect()
}

/// Refuses, before anything is built, jobs whose graphs (each held three times at once: generated,
/// in the shared simulation, in its own) would need more than a run's memory limit.
fn check_size(doc: &Document, cfgs: &[RunConfig]) -> Result<()> {
    let tasks: f64 = cfgs.iter().map(|c| estimated_tasks(&c.workload, false)).sum();
    let what = format!(
        "{}: the jobs (each built three times: alone, shared, generated)",
        doc.source
    );
    check_tasks(&what, 3.0 * tasks, DEFAULT_MAX_MEMORY, "shrink their batches or layers")
}

/// The nodes of every job (see the module doc for the order of placement).
pub fn place(spec: &ClusterSpec, doc: &Document, cfgs: &[RunConfig], seed: u64) -> Result<Vec<Vec<u32>>> {
    let machine = cfgs[0].hardware.nodes;
    let mut owner: Vec<Option<usize>> = vec![None; machine as usize];
    let mut placed: Vec<Vec<u32>> = vec![Vec::new(); spec.jobs.len()];
    let need = |i: usize| {
        let p = &cfgs[i].workload.parallel;
        p.tensor * p.pipeline * p.data / cfgs[i].hardware.node.gpus
    };
    for (i, job) in spec.jobs.iter().enumerate() {
        if let PlacementSpec::Nodes { nodes } = &job.placement {
            if nodes.len() as u32 != need(i) {
                return Err(doc.field_error(
                    &format!("jobs[{i}].placement.nodes"),
                    format!("lists {} nodes, the job needs {}", nodes.len(), need(i)),
                ));
            }
            for (k, &n) in nodes.iter().enumerate() {
                let at = format!("jobs[{i}].placement.nodes[{k}]");
                match owner.get(n as usize) {
                    None => return Err(doc.field_error(&at, format!("no such node: the machine has {machine}"))),
                    Some(Some(j)) => {
                        return Err(doc.field_error(&at, format!("node {n} is already job `{}`'s", spec.jobs[*j].name)))
                    }
                    Some(None) => owner[n as usize] = Some(i),
                }
            }
            placed[i] = nodes.clone();
        }
    }
    let free =
        |owner: &[Option<usize>]| -> Vec<u32> { (0..machine).filter(|&n| owner[n as usize].is_none()).collect() };
    let short = |i: usize, free: usize| {
        doc.field_error(
            &format!("jobs[{i}]"),
            format!(
                "needs {} nodes, only {free} of the machine's {machine} are free",
                need(i)
            ),
        )
    };
    let policy = |job: &JobSpec| match job.placement {
        PlacementSpec::Policy(p) => Some(p),
        PlacementSpec::Default => Some(Policy::Packed),
        PlacementSpec::Nodes { .. } => None,
    };
    for (i, job) in spec.jobs.iter().enumerate() {
        if policy(job) == Some(Policy::Packed) {
            let f = free(&owner);
            let nodes: Vec<u32> = f.iter().copied().take(need(i) as usize).collect();
            if (nodes.len() as u32) < need(i) {
                return Err(short(i, f.len()));
            }
            nodes.iter().for_each(|&n| owner[n as usize] = Some(i));
            placed[i] = nodes;
        }
    }
    let spread: Vec<usize> = (0..spec.jobs.len())
        .filter(|&i| policy(&spec.jobs[i]) == Some(Policy::Spread))
        .collect();
    let f = free(&owner);
    for (k, &i) in spread.iter().enumerate() {
        let nodes: Vec<u32> = f
            .iter()
            .copied()
            .skip(k)
            .step_by(spread.len())
            .take(need(i) as usize)
            .collect();
        if (nodes.len() as u32) < need(i) {
            return Err(short(i, f.len() / spread.len()));
        }
        nodes.iter().for_each(|&n| owner[n as usize] = Some(i));
        placed[i] = nodes;
    }
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    for (i, job) in spec.jobs.iter().enumerate() {
        if policy(job) == Some(Policy::Random) {
            let mut f = free(&owner);
            if (f.len() as u32) < need(i) {
                return Err(short(i, f.len()));
            }
            rand::seq::SliceRandom::shuffle(f.as_mut_slice(), &mut rng);
            let mut nodes: Vec<u32> = f[..need(i) as usize].to_vec();
            nodes.sort_unstable();
            nodes.iter().for_each(|&n| owner[n as usize] = Some(i));
            placed[i] = nodes;
        }
    }
    Ok(placed)
}

/// Copies `job`'s graph into `b` with rank r on GPU `gpus[r]`, every stream starting at `start`.
fn add_job(b: &mut GraphBuilder, job: &TaskGraph, gpus: &[u32], start: SimDuration) {
    // job id -> merged id, u32::MAX until first use
    let mut ops = vec![u32::MAX; job.ops.len()];
    let mut groups = vec![u32::MAX; job.groups.len()];
    let mut collectives = vec![u32::MAX; job.collectives.len()];
    let mut transfers = vec![u32::MAX; job.transfers.len()];
    fn once(slot: &mut u32, make: impl FnOnce() -> u32) -> u32 {
        if *slot == u32::MAX {
            *slot = make();
        }
        *slot
    }
    let mut new_id: Vec<TaskId> = Vec::with_capacity(job.len());
    let wait = (start > SimDuration::ZERO).then(|| b.delay(start));
    for r in 0..job.ranks {
        for s in 0..Stream::COUNT {
            let tasks = job.stream(r, s);
            if tasks.is_empty() {
                continue;
            }
            let stream = Stream::ALL[s];
            if let Some(w) = wait {
                let label = job.task_label[tasks.start as usize];
                b.task(gpus[r as usize], stream, TaskKind::Delay(w), label);
            }
            for t in tasks {
                let kind = match job.task_kind[t as usize] {
                    TaskKind::Compute(op) => TaskKind::Compute(once(&mut ops[op as usize], || {
                        let o = &job.ops[op as usize];
                        b.op(Op {
                            name: o.name.clone(),
                            kernels: o.kernels.clone(),
                            host_ops: o.host_ops,
                        })
                    })),
                    TaskKind::Collective(c) => TaskKind::Collective(once(&mut collectives[c as usize], || {
                        let coll = &job.collectives[c as usize];
                        let g = once(&mut groups[coll.group as usize], || {
                            b.group(
                                job.groups[coll.group as usize]
                                    .iter()
                                    .map(|&x| gpus[x as usize])
                                    .collect(),
                            )
                        });
                        let id = b.collective(coll.op, g, coll.bytes);
                        if coll.cross_stage {
                            b.mark_cross_stage(id);
                        }
                        id
                    })),
                    TaskKind::Send(x) | TaskKind::Recv(x) => {
                        let id = once(&mut transfers[x as usize], || {
                            let tr = &job.transfers[x as usize];
                            b.transfer(gpus[tr.src as usize], gpus[tr.dst as usize], tr.bytes)
                        });
                        match job.task_kind[t as usize] {
                            TaskKind::Send(_) => TaskKind::Send(id),
                            _ => TaskKind::Recv(id),
                        }
                    }
                    TaskKind::Delay(d) => TaskKind::Delay(b.delay(job.delays[d as usize])),
                    TaskKind::Storage(x) => {
                        let st = &job.storage[x as usize];
                        TaskKind::Storage(b.storage_by(gpus[st.rank as usize], st.bytes, st.write, st.every_replica))
                    }
                };
                let label: TaskLabel = job.task_label[t as usize];
                new_id.push(b.task(gpus[r as usize], stream, kind, label));
            }
        }
    }
    // job task ids are in (rank, stream) order, as new_id was filled
    for t in 0..job.len() as TaskId {
        for after in job.successors(t) {
            b.depend(new_id[t as usize], new_id[after as usize]);
        }
    }
}

/// The jobs' GPUs: each rank r of job i on GPU (node of r) x gpus per node + local index.
fn job_gpus(nodes: &[u32], gpn: u32, ranks: u32) -> Vec<u32> {
    (0..ranks).map(|r| nodes[(r / gpn) as usize] * gpn + r % gpn).collect()
}

/// Simulates `which` jobs together; returns each one's end (its last task), s, and the links
/// that flows of several of them crossed (flow model).
fn simulate_jobs(
    cfgs: &[RunConfig],
    graphs: &[TaskGraph],
    nodes: &[Vec<u32>],
    starts: &[SimDuration],
    which: &[usize],
    seed: u64,
) -> Result<(Vec<f64>, Vec<SharedLinks>)> {
    let hw = &cfgs[0].hardware;
    let gpn = hw.node.gpus;
    let top = which.iter().flat_map(|&i| nodes[i].iter()).max().map_or(1, |m| m + 1);
    let tasks: usize = which
        .iter()
        .map(|&i| graphs[i].len() + graphs[i].ranks as usize * Stream::COUNT)
        .sum();
    let mut b = GraphBuilder::with_capacity(top * gpn, tasks);
    for &i in which {
        add_job(
            &mut b,
            &graphs[i],
            &job_gpus(&nodes[i], gpn, graphs[i].ranks),
            starts[i],
        );
    }
    let merged = b.finish();
    let net: Box<dyn crate::model::network::NetworkModel> = if hw.network.model == NetworkModelKind::Flow {
        let mut tenant = vec![0u32; merged.ranks as usize];
        for &i in which {
            for g in job_gpus(&nodes[i], gpn, graphs[i].ranks) {
                tenant[g as usize] = i as u32;
            }
        }
        Box::new(FlowNetwork::new(hw, top).with_tenants(tenant))
    } else {
        network_for(&merged, hw).map_err(Error::Internal)?
    };
    let mut finish = FinishTimes(vec![SimTime::ZERO; merged.ranks as usize], &merged);
    let out = simulate_on(&merged, hw, net, SimOptions { seed }, &mut finish)?;
    let ends = which
        .iter()
        .map(|&i| {
            let gpus = job_gpus(&nodes[i], gpn, graphs[i].ranks);
            gpus.iter()
                .map(|&g| finish.0[g as usize])
                .max()
                .unwrap_or(SimTime::ZERO)
                .as_secs_f64()
        })
        .collect();
    Ok((ends, out.shared_links))
}

/// Records the last task end per rank.
struct FinishTimes<'g>(Vec<SimTime>, &'g TaskGraph);
impl SpanSink for FinishTimes<'_> {
    fn wants(&self, _rank: u32) -> bool {
        true
    }
    fn span(&mut self, task: TaskId, _start: SimTime, end: SimTime) {
        let r = self.1.task_rank[task as usize] as usize;
        self.0[r] = self.0[r].max(end);
    }
}

/// Links where jobs met: flows of all the named jobs crossed each of them.
#[derive(Debug, Clone, Serialize)]
pub struct Meeting {
    /// The jobs.
    pub jobs: Vec<String>,
    /// Link class.
    pub class: &'static str,
    /// Links of that class.
    pub links: u32,
}

/// What a cluster study found.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterResult {
    /// Per job.
    pub jobs: Vec<JobResult>,
    /// Where their flows shared links (flow model), by set of jobs and link class.
    pub shared_links: Vec<Meeting>,
}

/// Runs the study: every job alone on its nodes, then all together.
pub fn run(spec: &ClusterSpec, doc: &Document, seed: u64) -> Result<ClusterResult> {
    let cfgs = configs(spec, doc)?;
    check_size(doc, &cfgs)?;
    let nodes = place(spec, doc, &cfgs, seed)?;
    use rayon::prelude::*;
    let graphs: Vec<TaskGraph> = cfgs
        .par_iter()
        .map(|c| crate::workload::generate(&c.workload))
        .collect();
    let starts: Vec<SimDuration> = spec.jobs.iter().map(|j| j.start).collect();
    // all jobs together, and each alone, as independent simulations in parallel
    let all: Vec<usize> = (0..spec.jobs.len()).collect();
    let sets: Vec<Vec<usize>> = std::iter::once(all)
        .chain((0..spec.jobs.len()).map(|i| vec![i]))
        .collect();
    let ends = sets
        .par_iter()
        .map(|which| simulate_jobs(&cfgs, &graphs, &nodes, &starts, which, seed))
        .collect::<Result<Vec<_>>>()?;
    let shared = &ends[0].0;
    let mut out = Vec::new();
    for (i, job) in spec.jobs.iter().enumerate() {
        let alone = ends[i + 1].0[0] - job.start.as_secs_f64();
        let shared_s = shared[i] - job.start.as_secs_f64();
        out.push(JobResult {
            name: job.name.clone(),
            nodes: nodes[i].clone(),
            gpus: graphs[i].ranks,
            start_s: job.start.as_secs_f64(),
            alone_s: alone,
            shared_s,
            slowdown: shared_s / alone,
        });
    }
    let shared_links = ends[0]
        .1
        .iter()
        .map(|m| Meeting {
            jobs: m.tenants.iter().map(|&t| spec.jobs[t as usize].name.clone()).collect(),
            class: m.class,
            links: m.links,
        })
        .collect();
    Ok(ClusterResult {
        jobs: out,
        shared_links,
    })
}
