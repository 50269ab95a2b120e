//! Hostile input (issue 13's reproducers): every case exits 2 with a clear message, within 10 s, with
//! no panic, no abort and no file outside the output folder.

use super::common::expect_input_error;

macro_rules! refused {
    ($name:ident, [$($file:expr),*], [$($arg:expr),*]) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(expect_input_error(&[$($file),*], &[$($arg),*]));
        }
    };
}

const ONE_DELAY_TRACE: &str = r#"{"format":"clustersim-trace","version":1,"name":"huge","ranks":1000000000}
{"type":"task","id":0,"rank":0,"delay_ns":1}
"#;
const TWO_MAX_DELAYS: &str = r#"{"format":"clustersim-trace","version":1,"name":"long","ranks":1}
{"type":"task","id":0,"rank":0,"delay_ns":18446744073709551615}
{"type":"task","id":1,"rank":0,"delay_ns":18446744073709551615}
"#;
const STORAGE_TRACE: &str = r#"{"format":"clustersim-trace","version":1,"name":"io","ranks":1}
{"type":"task","id":0,"rank":0,"stream":"io","storage":{"bytes":1000,"write":true}}
"#;
const DUPLICATE_MEMBER: &str = r#"{"format":"clustersim-trace","version":1,"name":"dup","ranks":2}
{"type":"group","id":0,"ranks":[0,0]}
{"type":"task","id":0,"rank":0,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":8}}
"#;
const DEADLOCK: &str = r#"{"format":"clustersim-trace","version":1,"name":"stuck","ranks":2}
{"type":"group","id":0,"ranks":[0,1]}
{"type":"task","id":0,"rank":0,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":8}}
{"type":"task","id":1,"rank":1,"recv":{"peer":0,"tag":5}}
{"type":"task","id":2,"rank":1,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":8}}
{"type":"task","id":3,"rank":0,"stream":"send","send":{"peer":1,"bytes":8,"tag":5},"deps":[0]}
"#;

refused!(
    batch_of_u64_max,
    [],
    [
        "run",
        "--no-output",
        "--set",
        "workload.parallel.data=1",
        "--set",
        "workload.batch.global=18446744073709551615"
    ]
);
refused!(
    batch_of_a_trillion,
    [],
    ["run", "--no-output", "--set", "workload.batch.global=1099511627776"]
);
refused!(
    two_billion_layers,
    [],
    ["run", "--no-output", "--set", "workload.model.layers=2147483648"]
);
refused!(
    four_billion_gpus_per_node,
    [],
    [
        "run",
        "--no-output",
        "--set",
        "hardware.node.gpus=4294967295",
        "--set",
        "workload.parallel.data=1"
    ]
);
refused!(
    trace_of_a_billion_ranks,
    [("t.jsonl", ONE_DELAY_TRACE)],
    ["run", "--no-output", "--trace", "t.jsonl"]
);
refused!(
    four_billion_trials,
    [],
    ["train", "--no-output", "--tokens", "1e9", "--trials", "4000000000"]
);
refused!(
    zero_trials,
    [],
    ["train", "--no-output", "--tokens", "1e9", "--trials", "0"]
);
refused!(absurd_token_count, [], ["train", "--no-output", "--tokens", "1e300"]);
refused!(
    failures_faster_than_any_checkpoint_interval,
    [],
    [
        "train",
        "--no-output",
        "--workload",
        "gpt-175b",
        "--tokens",
        "300e9",
        "--set",
        "hardware.failures.gpu_mtbf=1 min"
    ]
);
refused!(
    workload_name_escaping_results,
    [],
    ["run", "--set", "workload.name=../../x"]
);
refused!(workload_name_absolute, [], ["run", "--set", "workload.name=/tmp/x"]);
refused!(workload_name_empty, [], ["run", "--set", "workload.name="]);
refused!(
    sweep_name_escaping,
    [(
        "s.yaml",
        "name: ../../x\naxes: [{ key: workload.batch.global, values: [64] }]\n"
    )],
    ["sweep", "s.yaml"]
);
refused!(sweep_plot_file_absolute, [("s.yaml", "name: s\naxes: [{ key: workload.batch.global, values: [64] }]\nplot: { file: /tmp/p, x: [workload.batch.global], y: tflops_per_gpu }\n")], ["sweep", "s.yaml"]);
refused!(out_is_a_file, [("f", "x")], ["run", "--out", "f"]);
refused!(out_under_proc, [], ["run", "--out", "/proc/x"]);
refused!(trace_export_into_a_folder, [], ["trace", "export", "--out", "."]);
refused!(
    plan_out_is_a_file_fails_before_planning,
    [("f", "x")],
    ["plan", "--gpus", "1024", "--workload", "gpt-175b", "--out", "f"]
);
refused!(
    nic_bandwidth_of_1e_300,
    [],
    ["run", "--no-output", "--set", "hardware.node.nic.bandwidth=1e-300 B/s"]
);
refused!(
    peak_of_1e_300,
    [],
    ["run", "--no-output", "--set", "hardware.gpu.peak_flops=1e-300 FLOP/s"]
);
refused!(
    kernel_overhead_of_1e10_hours,
    [],
    ["run", "--no-output", "--set", "hardware.gpu.kernel_overhead=1e10 h"]
);
refused!(
    hidden_of_a_trillion,
    [],
    ["run", "--no-output", "--set", "workload.model.hidden=1099511627776"]
);
refused!(
    nvlink_latency_of_1e7_hours,
    [],
    ["run", "--no-output", "--set", "hardware.node.nvlink.latency=1e7 h"]
);
refused!(
    vocab_of_2_to_62,
    [],
    [
        "run",
        "--no-output",
        "--set",
        "workload.model.vocab=4611686018427387904"
    ]
);
refused!(
    ideal_peak_beyond_the_clock,
    [],
    [
        "run",
        "--no-output",
        "--hardware",
        "ideal",
        "--set",
        "hardware.gpu.peak_flops=4294967295 TFLOP/s"
    ]
);
refused!(
    two_maximal_delays,
    [("t.jsonl", TWO_MAX_DELAYS)],
    ["run", "--no-output", "--trace", "t.jsonl"]
);
refused!(
    storage_task_without_storage,
    [("t.jsonl", STORAGE_TRACE)],
    ["run", "--no-output", "--trace", "t.jsonl", "--hardware", "ideal"]
);
refused!(
    write_bandwidth_of_1e_300,
    [],
    [
        "train",
        "--no-output",
        "--tokens",
        "1e9",
        "--set",
        "hardware.storage.write_bandwidth=1e-300 B/s"
    ]
);
refused!(
    unknown_sweep_metric,
    [(
        "s.yaml",
        "name: s\naxes: [{ key: workload.batch.global, values: [64] }]\nmetrics: [speed]\n"
    )],
    ["sweep", "s.yaml", "--out", "o"]
);
refused!(
    enum_value_not_listed,
    [],
    ["run", "--no-output", "--set", "workload.recompute=true"]
);
refused!(
    duplicate_group_member,
    [("t.jsonl", DUPLICATE_MEMBER)],
    ["run", "--no-output", "--trace", "t.jsonl"]
);
refused!(plan_of_zero_gpus, [], ["plan", "--gpus", "0", "--no-output"]);
refused!(
    deadlocked_trace,
    [("t.jsonl", DEADLOCK)],
    ["run", "--no-output", "--trace", "t.jsonl"]
);
refused!(
    workload_from_dev_zero,
    [],
    ["run", "--no-output", "--workload", "/dev/zero"]
);
refused!(
    sweep_of_ten_billion_points,
    [("s.yaml", &ten_axes())],
    ["sweep", "s.yaml", "--out", "o"]
);

fn ten_axes() -> String {
    let values = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]";
    let mut s = String::from("name: big\naxes:\n");
    for _ in 0..10 {
        s += &format!("  - {{ key: workload.batch.global, values: {values} }}\n");
    }
    s
}

/// Two processes writing one output folder at once: both succeed and leave complete files (each
/// writes its own temporary, then renames; the last rename wins). 20 pairs of `run` and 20 of
/// `collective`.
#[test]
fn concurrent_runs_share_an_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_clustersim");
    let cases: [&[&str]; 2] = [
        &[
            "run",
            "--out",
            "out",
            "--set",
            "workload.batch.global=64",
            "--timeline",
            "none",
        ],
        &["collective", "--gpus", "8", "--sizes", "1KiB:64KiB", "--out", "out"],
    ];
    for args in cases {
        for _ in 0..20 {
            let spawn = || {
                std::process::Command::new(bin)
                    .args(args)
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let (a, b) = (spawn(), spawn());
            for child in [a, b] {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let out = dir.path().join("out");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["iteration_time_s"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(out.join("busbw.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 7, "header and 1 KiB .. 64 KiB");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
