//! A mutation fuzzer over everything that reads input: the shipped YAML files (hardware, workloads,
//! sweep specs, traces) mutated line by line, random `--set` overrides and unit strings, fed through
//! the library (units, config, `--set`, trace reader, sweep spec) and, for configurations that
//! validate and are small, through a whole simulation. Every case must end in an input error or a
//! report whose invariants hold: finite numbers, MFU at most 1 on non-ideal hardware, the time
//! breakdown summing to the iteration time. Nothing may panic.
//!
//! `cargo test --release` runs a bounded, seeded sample (a few seconds). The long run is
//!
//! ```text
//! FUZZ_CASES=1000000 FUZZ_RUNS=10000 cargo test --release --test integration fuzz_long -- --ignored --nocapture
//! ```
//!
//! `FUZZ_CASES` parsing-level cases in process, then `FUZZ_RUNS` whole runs of small mutated
//! workloads, each in its own `clustersim` process under a 10 s timeout so that a hang is caught.

use clustersim::config::{builtin_hardware, builtin_workload, Document, HardwareSpec, Override, WorkloadSpec};
use clustersim::studies::run::{run, RunOptions};
use clustersim::studies::sweep::SweepSpec;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "8",
    "64",
    "1e300",
    "1e-300",
    "-1e300",
    "NaN",
    "inf",
    ".inf",
    "18446744073709551615",
    "4294967296",
    "2147483648",
    "1099511627776",
    "0.5",
    "1.5",
    "\"\"",
    "~",
    "[]",
    "{}",
    "true",
    "x",
];
const UNITS: &[&str] = &[
    "B/s", "Gb/s", "GB/s", "TB/s", "GiB", "MB", "s", "ms", "us", "ns", "h", "min", "TFLOP/s", "", "%",
];
const KEYS: &[&str] = &[
    "hardware.nodes",
    "hardware.gpu.peak_flops",
    "hardware.gpu.memory",
    "hardware.gpu.memory_bandwidth",
    "hardware.gpu.memory_efficiency",
    "hardware.gpu.sms",
    "hardware.gpu.gemm_efficiency",
    "hardware.gpu.kernel_overhead",
    "hardware.gpu.jitter",
    "hardware.node.gpus",
    "hardware.node.nics",
    "hardware.node.nvlink.bandwidth",
    "hardware.node.nvlink.latency",
    "hardware.node.nic.bandwidth",
    "hardware.network.model",
    "hardware.network.algorithm",
    "hardware.network.topology.radix",
    "hardware.network.topology.oversubscription",
    "hardware.network.nccl.channels",
    "hardware.network.nccl.launch",
    "hardware.storage.write_bandwidth",
    "workload.name",
    "workload.model.layers",
    "workload.model.hidden",
    "workload.model.heads",
    "workload.model.seq_len",
    "workload.model.vocab",
    "workload.batch.global",
    "workload.batch.micro",
    "workload.parallel.tensor",
    "workload.parallel.pipeline",
    "workload.parallel.data",
    "workload.parallel.interleave",
    "workload.schedule",
    "workload.recompute",
    "workload.data_parallel.zero_stage",
    "workload.data_parallel.grad_dtype",
    "hardware.gpu.slowdown",
    "hardware.network.degraded",
    "hardware.node_groups",
    "hardware.node.host_dispatch",
    "hardware.gpu.fp8_flops",
    "workload.precision",
    "workload.parallel.layers_per_stage",
    "workload.model.kv_heads",
    "workload.model.head_dim",
    "workload.model.qk_norm",
    "workload.ep_comm_overlap",
    "workload.model.mtp_layers",
    "workload.model.ffn_hidden",
    "workload.model.mlp",
    "workload.model.norm",
    "workload.model.tied_embeddings",
    "workload.model.moe",
    "workload.parallel.expert",
    "workload.parallel.expert_tensor",
    "workload.model.moe.imbalance",
    "workload.software",
    "workload.parallel.context",
    "workload.model.mla",
    "workload.model.moe.first_dense_layers",
    "hardware.node.nvlink.sharp",
    "hardware.network.nccl.version",
];

/// A random value: a number, maybe with a unit, or a word.
fn value(rng: &mut ChaCha8Rng) -> String {
    let n = NUMBERS[rng.random_range(0..NUMBERS.len())];
    if rng.random_range(0..2) == 0 {
        format!("{n} {}", UNITS[rng.random_range(0..UNITS.len())])
    } else {
        n.to_string()
    }
}

/// A value that a key plausibly takes (so that many whole runs get past validation), or, one time
/// in three, any value.
fn plausible(key: &str, rng: &mut ChaCha8Rng) -> String {
    let choices: &[&str] = match key.rsplit('.').next().unwrap_or("") {
        "tensor" | "pipeline" | "data" | "interleave" | "micro" => &["1", "2", "4", "8"],
        "global" => &["8", "16", "32", "64"],
        "layers" => &["4", "8", "16", "32"],
        "hidden" => &["1024", "2048", "3840"],
        "heads" => &["8", "16", "32"],
        "schedule" => &["gpipe", "1f1b", "interleaved"],
        "recompute" => &["none", "selective", "full"],
        "model" => &["flow", "analytic", "ideal"],
        "algorithm" => &["auto", "ring", "tree", "hierarchical"],
        "zero_stage" => &["0", "1", "2", "3"],
        "grad_dtype" => &["fp16", "fp32"],
        "bandwidth" | "memory_bandwidth" | "write_bandwidth" => &["100 Gb/s", "25 GB/s", "1 TB/s"],
        "latency" | "kernel_overhead" | "launch" => &["0 s", "1 us", "10 us"],
        "nodes" => &["8", "16", "64"],
        "slowdown" => &[
            "[{ranks: [3], factor: 2}]",
            "[{nodes: [1], factor: 1.5}]",
            "[{fraction: 0.1, factor: 3}]",
            "[{ranks: [99999], factor: 2}]",
            "[{nodes: [0], factor: 0}]",
            "[]",
        ],
        "degraded" => &[
            "[{node: 0, nic: 0, factor: 0.5}]",
            "[{node: 1, nic: 3, down: true}]",
            "[{rail: 2, factor: 0.25}]",
            "[{leaf: 1, factor: 0.5}]",
            "[{leaf: 0, down: true}]",
            "[{node: 0, nic: 0}]",
        ],
        "node_groups" => &[
            "[{count: 1, gpu: dgx-h100}]",
            "[{count: 4, gpu: ideal}]",
            "[{count: 0, gpu: dgx-h100}]",
            "[{count: 1, gpu: nothing}]",
        ],
        "host_dispatch" => &["0 s", "7 us", "1 ms"],
        "fp8_flops" => &["1979 TFLOP/s", "0 TFLOP/s"],
        "precision" => &["bf16", "fp8"],
        "layers_per_stage" => &["[1, 3]", "[2, 2]", "[4]", "[0, 4]", "[]"],
        "kv_heads" => &["1", "2", "8", "3"],
        "head_dim" => &["128", "64", "0", "1"],
        "mtp_layers" => &["0", "1", "2", "17"],
        "qk_norm" | "ep_comm_overlap" => &["true", "false"],
        "ffn_hidden" => &["4096", "14336", "1"],
        "mlp" => &["gelu", "swiglu"],
        "norm" => &["layernorm", "rmsnorm"],
        "tied_embeddings" => &["true", "false"],
        "moe" => &[
            "{experts: 8, top_k: 2}",
            "{experts: 4, top_k: 1, capacity_factor: 1.25, shared_experts: 1, every_n_layers: 2}",
            "{experts: 8, top_k: 2, imbalance: 1, seed: 3}",
            "{experts: 2, top_k: 3}",
            "{experts: 0, top_k: 0, capacity_factor: -1}",
        ],
        "expert" => &["1", "2", "4", "8", "3"],
        "expert_tensor" => &["1", "2", "4", "0"],
        "imbalance" => &["0", "0.5", "2", "-1", "1e9"],
        "context" => &["1", "2", "4", "3", "0"],
        "mla" => &[
            "{q_lora_rank: 64, kv_lora_rank: 32, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16}",
            "{q_lora_rank: 0, kv_lora_rank: 32, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16}",
            "{q_lora_rank: 1, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 1, v_head_dim: 1}",
        ],
        "first_dense_layers" => &["0", "1", "3", "100"],
        "sharp" => &["true", "false"],
        "version" => &["\"2.8\"", "\"2.10\"", "\"2.21\"", "\"9.9\""],
        "software" => &[
            "megatron-2021",
            "megatron-core-2024",
            "fsdp-2024",
            "pytorch-2019",
            "[1, 2]",
        ],
        _ => &[],
    };
    if choices.is_empty() || rng.random_range(0..3) == 0 {
        value(rng)
    } else {
        choices[rng.random_range(0..choices.len())].to_string()
    }
}

/// The text with one to three random line-level mutations.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..4) {
        if lines.is_empty() {
            break;
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..5) {
            // replace the value after the first colon
            0 => {
                if let Some((key, _)) = lines[i].split_once(':') {
                    lines[i] = format!("{key}: {}", value(rng));
                }
            }
            // replace one number anywhere in the line
            1 => {
                let line = &lines[i];
                let start = line.find(|c: char| c.is_ascii_digit());
                if let Some(s) = start {
                    let end = line[s..]
                        .find(|c: char| !c.is_ascii_digit() && c != '.')
                        .map_or(line.len(), |e| s + e);
                    lines[i] = format!("{}{}{}", &line[..s], value(rng), &line[end..]);
                }
            }
            2 => {
                lines.remove(i);
            }
            3 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            _ => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = rng.random_range(0..bytes.len());
                    bytes[j] = b"{}[]:,-#\"' 0x"[rng.random_range(0..13)];
                }
                lines[i] = String::from_utf8_lossy(&bytes).to_string();
            }
        }
    }
    lines.join("\n") + "\n"
}

/// The invariants every report must keep.
fn check_report(r: &clustersim::report::Report, ideal: bool, what: &str) {
    let b = &r.breakdown;
    for (name, v) in [
        ("iteration_time_s", r.iteration_time_s),
        ("tflops_per_gpu", r.tflops_per_gpu),
        ("mfu", r.mfu),
        ("samples_per_s", r.samples_per_s),
        ("bubble.fraction", r.bubble.fraction),
    ] {
        assert!(v.is_finite(), "{what}: {name} = {v}");
    }
    if !ideal {
        assert!(r.mfu <= 1.0 + 1e-9, "{what}: MFU {}", r.mfu);
    }
    let sum = b.compute_s + b.exposed_comm_s + b.io_s + b.sync_wait_s + b.bubble_s + b.idle_s;
    assert!(
        (sum - r.iteration_time_s).abs() <= 1e-6 * r.iteration_time_s.max(1e-9) + 1e-9,
        "{what}: breakdown sums to {sum}, iteration {}",
        r.iteration_time_s
    );
    // the compute splits into kinds of kernel, SMs lost to communication and waits for the host
    // (each task's booking rounds to the nanosecond)
    let k = &b.kernels;
    let parts = k.gemm_s + k.attention_s + k.memory_bound_s + k.other_s + b.sm_contention_s + b.host_wait_s;
    assert!(
        (parts - b.compute_s).abs() <= 1e-4 * b.compute_s + 1e-6,
        "{what}: compute {} splits into {parts}",
        b.compute_s
    );
}

/// One parsing-level case (and, when it validates and is small, a whole run in process). Returns
/// whether a simulation ran.
fn one_case(rng: &mut ChaCha8Rng, simulate: bool) -> bool {
    let hw_text = builtin_hardware(["dgx-a100", "dgx-h100", "ideal"][rng.random_range(0..3)]).unwrap();
    let wl_text = builtin_workload("gpt-5.9b").unwrap();
    match rng.random_range(0..6) {
        // units
        0 => {
            let v = value(rng);
            let _ = clustersim::units::parse_bandwidth(&v);
            let _ = clustersim::units::parse_bytes(&v);
            let _ = clustersim::units::parse_duration(&v);
            let _ = clustersim::units::parse_flop_rate(&v);
            false
        }
        // a sweep spec
        1 => {
            let spec = include_str!("../../workloads/sweeps/megatron-fig14.yaml");
            let _ = SweepSpec::parse("fuzz.yaml", &mutate(spec, rng));
            false
        }
        // a trace
        2 => {
            let trace = include_str!("../../workloads/traces/moe-layer.yaml");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.yaml");
            std::fs::write(&path, mutate(trace, rng)).unwrap();
            let _ = clustersim::workload::trace::read(path.to_str().unwrap());
            false
        }
        // mutated YAML or random --set, then maybe a run
        _ => {
            let (mut hw_text, mut wl_text) = (hw_text.to_string(), wl_text.to_string());
            if rng.random_range(0..2) == 0 {
                hw_text = mutate(&hw_text, rng);
            } else {
                wl_text = mutate(&wl_text, rng);
            }
            let (Ok(mut hw_doc), Ok(mut wl_doc)) = (Document::parse("hw", &hw_text), Document::parse("wl", &wl_text))
            else {
                return false;
            };
            if rng.random_range(0..2) == 0 {
                let _ = wl_doc.apply(&Override::parse("workload.batch.global=64").unwrap());
            }
            for _ in 0..rng.random_range(0..3) {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                if let Ok(o) = Override::parse(&format!("{key}={}", plausible(key, rng))) {
                    let _ = if key.starts_with("hardware.") {
                        hw_doc.apply(&o)
                    } else {
                        wl_doc.apply(&o)
                    };
                }
            }
            let (Ok(hardware), Ok(workload)) = (
                HardwareSpec::from_document(&hw_doc),
                WorkloadSpec::from_document(&wl_doc),
            ) else {
                return false;
            };
            let small = clustersim::workload::generate::estimated_tasks(&workload, false) < 1_000_000.0;
            if !(simulate && small && workload.gpus_needed() <= hardware.total_gpus()) {
                return false;
            }
            let ideal = hardware.gpu.compute == clustersim::config::ComputeModelKind::Ideal;
            let cfg = clustersim::config::RunConfig { hardware, workload };
            if let Ok(res) = run(&cfg, &RunOptions::metrics_only(false)) {
                check_report(&res.report, ideal, "fuzzed run");
            }
            true
        }
    }
}

/// The bounded sample in the normal test run: 5000 seeded cases, whole runs included.
#[test]
fn fuzz_bounded() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut runs = 0;
    for _ in 0..5000 {
        runs += one_case(&mut rng, true) as usize;
    }
    eprintln!("fuzz_bounded: 5000 cases, {runs} whole runs");
    assert!(runs > 120, "the sample should reach the simulation ({runs} runs)");
}

/// The long run (see the module docs): parsing-level cases in process, then whole runs in processes.
#[test]
#[ignore]
fn fuzz_long() {
    let cases: u64 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: u64 = std::env::var("FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let start = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for i in 0..cases {
        one_case(&mut rng, false);
        if i % 100_000 == 0 {
            eprintln!("{i} parsing cases, {:.0} s", start.elapsed().as_secs_f64());
        }
    }
    eprintln!(
        "{cases} parsing cases: 0 panics, {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut refused, mut ran) = (0u64, 0u64);
    for i in 0..runs {
        let mut sets: Vec<String> = vec!["--set".into(), "workload.batch.global=16".into()];
        for _ in 0..rng.random_range(1..4) {
            let key = KEYS[rng.random_range(0..KEYS.len())];
            sets.push("--set".into());
            sets.push(format!("{key}={}", plausible(key, &mut rng)));
        }
        let mut args: Vec<&str> = vec!["run", "--no-output", "--format", "json"];
        args.extend(sets.iter().map(String::as_str));
        let out = super::common::clustersim_within(dir.path(), &args, 10);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        match out.status.code() {
            Some(0) => ran += 1,
            Some(2) => refused += 1,
            other => panic!("{args:?}: exit {other:?}: {stderr}"),
        }
        if i % 1000 == 0 {
            eprintln!(
                "{i} whole runs ({ran} ran, {refused} refused), {:.0} s",
                start.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "{runs} whole runs: {ran} ran, {refused} refused (exit 2), 0 panics, 0 aborts, 0 hangs; {:.0} s in all",
        start.elapsed().as_secs_f64()
    );
}
