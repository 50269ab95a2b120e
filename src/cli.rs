//! Command-line parsing (clap derive); parsing only, no behaviour.

use crate::report::timeline::TimelineRanks;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Discrete-event performance simulator for GPU clusters training large models.
#[derive(Debug, Parser)]
#[command(name = "clustersim", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `run` with built-in presets when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate one training iteration (default: GPT 5.9B on 64 A100s, p8 x d8, 1F1B).
    Run(RunArgs),
    /// Measure simulator speed: events per second and wall time on synthetic and large cases.
    Bench(BenchArgs),
    /// Sweep one collective over message sizes, like nccl-tests: time, algbw, busbw, CSV and plot.
    Collective(CollectiveArgs),
    /// Run a sweep spec (workloads/sweeps/*.yaml) in parallel: one CSV row per point and a plot.
    Sweep(SweepArgs),
    /// Reproduce Megatron-LM Figures 6, 7, 13, 14, 15 and the validation table into results/megatron/.
    Validate(ValidateArgs),
    /// Find the parallel configurations of a model on N GPUs that fit, ranked by throughput.
    Plan(PlanArgs),
    /// Workload traces: export a generated workload as a trace file.
    Trace(TraceArgs),
    /// A whole training run: iterations, checkpoints and failures as a seeded Monte Carlo.
    Train(TrainArgs),
    /// Several jobs on one machine, sharing its fabric: each job's iteration alone and shared.
    Cluster(ClusterArgs),
    /// Merge the shard files of a sharded sweep or plan (`--shard K/N`) into the unsharded outputs.
    Merge(MergeArgs),
}

/// Arguments of `merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Shard files, or folders holding shard-K-of-N.json files: all N shards of one run.
    #[arg(required = true, value_name = "DIR")]
    pub inputs: Vec<PathBuf>,
    /// Output folder (default: the unsharded command's, results/<sweep name>/ or results/plan-<workload>-<gpus>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Arguments of `cluster`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct ClusterArgs {
    /// The jobs spec (YAML).
    pub spec: String,
    /// Output folder (default: results/<spec name>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write no files, print only.
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
    /// Seed of random placements and of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The inputs most commands share: hardware, workload and `--set` overrides.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputArgs {
    /// Hardware YAML file or preset name (dgx-a100, dgx-h100, dgx-h200, dgx-b200, ideal). Default: dgx-a100.
    #[arg(long, value_name = "FILE")]
    pub hardware: Option<String>,
    /// Workload YAML file or preset name (gpt-5.9b, gpt-162b, gpt-175b, gpt-1t, llama3-8b, llama3-70b, llama3-405b,
    /// mixtral-8x7b, deepseek-v3, qwen3-30b-a3b, qwen3-235b-a22b). Default: gpt-5.9b.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<String>,
    /// Override a YAML field: workload.parallel.data=16, hardware.nodes=16, ... (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Arguments of `train`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Hardware, workload and overrides.
    #[command(flatten)]
    pub input: InputArgs,
    /// Tokens to train on, e.g. 300e9.
    #[arg(long)]
    pub tokens: f64,
    /// Work between checkpoints, e.g. "2 h" (default: Young/Daly's optimum).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Assume nothing fails.
    #[arg(long)]
    pub no_failures: bool,
    /// Take no checkpoints.
    #[arg(long)]
    pub no_checkpoints: bool,
    /// Monte Carlo trials.
    #[arg(long, default_value_t = 200)]
    pub trials: u32,
    /// Seed of the Monte Carlo.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (default: results/train-<workload>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only, write no files.
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
}

/// Arguments of `trace`.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TraceAction,
}

/// `trace` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TraceAction {
    /// Write a generated workload as a trace (JSON Lines, format version 1).
    Export(ExportArgs),
}

/// Arguments of `trace export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Hardware, workload and overrides.
    #[command(flatten)]
    pub input: InputArgs,
    /// Trace file to write (`--format chakra`: the folder for its `<name>.<rank>.et` files).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// `jsonl`: clustersim's trace format; `chakra`: a Chakra set ASTRA-sim reads, with the
    /// communicator groups as `<name>.json` (clustersim reads it back exactly).
    #[arg(long, value_enum, default_value_t = TraceFormat::Jsonl)]
    pub format: TraceFormat,
}

/// Trace formats `trace export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// clustersim's JSON Lines trace.
    Jsonl,
    /// A Chakra execution-trace set (protobuf, one file per rank).
    Chakra,
}

/// Arguments of `plan`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct PlanArgs {
    /// Hardware, workload and overrides.
    #[command(flatten)]
    pub input: InputArgs,
    /// GPUs to plan for.
    #[arg(long)]
    pub gpus: u64,
    /// Rows to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Tokens to train on (e.g. 300e9): adds the days to train.
    #[arg(long)]
    pub tokens: Option<f64>,
    /// Output folder for plan.csv (default: results/plan-<workload>-<gpus>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only, write no files.
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
    /// Simulate only shard K (from 0) of N of the candidates and write shard-K-of-N.json into the
    /// output folder, for `clustersim merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Run the K fastest again with the flow network model (contention on the fabric) and print
    /// their TFLOP/s beside the analytic ranking's.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub check: usize,
}

/// Arguments of `sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The sweep spec (YAML).
    pub spec: String,
    /// Output folder (default: results/<sweep name>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard K (from 0) of N of the points and write shard-K-of-N.json into the output
    /// folder, for `clustersim merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

/// Arguments of `validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "results/megatron")]
    pub out: PathBuf,
    /// Overrides applied to every run after the sweeps' own (sensitivity studies), e.g.
    /// `hardware.node.host_dispatch=5us`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Arguments of `collective`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct CollectiveArgs {
    /// The operation.
    #[arg(long, value_enum, default_value_t = crate::studies::collective::SweepOp::AllReduce)]
    pub op: crate::studies::collective::SweepOp,
    /// GPUs taking part: ranks 0..N, placed in node order.
    #[arg(long, default_value_t = 8)]
    pub gpus: u32,
    /// Sizes MIN:MAX, doubling (nccl-tests -b MIN -e MAX -f 2).
    #[arg(long, default_value = "1KiB:8GiB")]
    pub sizes: String,
    /// Hardware YAML file or preset name. Default: dgx-a100.
    #[arg(long, value_name = "FILE")]
    pub hardware: Option<String>,
    /// Override a hardware field: hardware.network.model=flow, ... (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output folder for busbw.csv and busbw.png/.svg (default: results/collective/<op>-<gpus>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only, write no files.
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
}

/// Output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A short human summary.
    Text,
    /// One JSON object (the content of report.json).
    Json,
}

/// Arguments of `run`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// Hardware, workload and overrides.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Output folder (default: results/<workload name>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write no files, print only.
    #[arg(long, conflicts_with = "out")]
    pub no_output: bool,
    /// Seed of the run's random number generator (default 1; with --config, the report's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Ranks recorded in timeline.json and the schedule plot.
    #[arg(long, value_enum, default_value_t = TimelineRanks::FirstReplica)]
    pub timeline: TimelineRanks,
    /// Run a trace instead of generating the workload: a clustersim trace (.jsonl, .yaml), or a
    /// Chakra set (the `PREFIX.<rank>.et` files ASTRA-sim takes, one of them, or their directory).
    #[arg(long, value_name = "FILE", conflicts_with = "workload")]
    pub trace: Option<String>,
    /// Chakra: the communicator groups, `{"<pg_name>": [ranks]}` (ASTRA-sim's --comm-group-configuration).
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub comm_groups: Option<String>,
    /// Chakra: what `num_ops` counts (Symbolic Tensor Graph writes multiply-accumulates).
    #[arg(long, value_enum, default_value_t = crate::workload::trace::chakra::OpsUnit::Flops, requires = "trace")]
    pub chakra_ops: crate::workload::trace::chakra::OpsUnit,
    /// Chakra: bytes per element of `comm_size` and `tensor_size` (1 reads them as bytes, as ASTRA-sim does).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64), requires = "trace")]
    pub chakra_element_bytes: u64,
    /// Chakra: price compute nodes without a duration by the compute model, or at 1 ns each (ASTRA-sim without roofline).
    #[arg(long, value_enum, default_value_t = crate::workload::trace::chakra::ComputePricing::Model, requires = "trace")]
    pub chakra_compute: crate::workload::trace::chakra::ComputePricing,
    /// Rerun the configuration (hardware, workload, seed) recorded in a report.json.
    #[arg(long, value_name = "REPORT", conflicts_with_all = ["trace"])]
    pub config: Option<String>,
    /// Refuse runs estimated to need more memory than this, e.g. "64 GiB" (default 16 GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Simulate one rank per pipeline stage, each standing for its symmetric copies (replicas and
    /// tensor ranks), where that is exact; otherwise every rank runs and the report says why.
    #[arg(long, conflicts_with = "trace")]
    pub representative: bool,
    /// Simulate the iteration with N seeds (seed, seed + 1, ...): the report gains the spread of
    /// the iteration time (p50/p90/p99/max), with iterations.csv and a histogram.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "trace")]
    pub iterations: u32,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            input: InputArgs::default(),
            format: Format::Text,
            out: None,
            no_output: false,
            seed: None,
            timeline: TimelineRanks::FirstReplica,
            trace: None,
            comm_groups: None,
            chakra_ops: Default::default(),
            chakra_element_bytes: 1,
            chakra_compute: Default::default(),
            config: None,
            max_memory: None,
            representative: false,
            iterations: 1,
        }
    }
}

/// Arguments of `bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// Which case: the engine on a synthetic load, a 4096-GPU collective, GPT-1T on 3072 GPUs, or all.
    #[arg(long, value_enum, default_value_t = BenchCase::All)]
    pub case: BenchCase,
    /// Repetitions of each case, 1 to 20 (the best is reported too).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// One JSON object per case instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Benchmark cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchCase {
    /// The event queue alone on a synthetic load.
    Engine,
    /// GPT-1T, t8 p64 d6 on 3072 GPUs of dgx-a100, batch 3072, microbatch 1, 1F1B: analytic and
    /// flow networks every rank, and flow representative.
    Gpt1t,
    /// GPT-1T t8 p64 d192 on 98 304 GPUs (12 288 DGX-H100 nodes, 4-level fat tree), flow network, representative.
    Scale,
    /// A 1 GiB ring all-reduce over 4096 GPUs with the flow model.
    Collective,
    /// Every case.
    All,
}
