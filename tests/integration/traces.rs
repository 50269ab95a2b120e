//! Traces: export then run gives the generator's report byte for byte; bad traces are explained.

use super::common::{clustersim, expect_input_error};

fn ok(dir: &std::path::Path, args: &[&str]) {
    let o = clustersim(dir, args);
    assert!(o.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&o.stderr));
}

fn round_trip(sets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut set_args: Vec<&str> = Vec::new();
    for s in sets {
        set_args.extend(["--set", s]);
    }
    ok(
        dir.path(),
        &[&["trace", "export", "--out", "t.jsonl"][..], &set_args].concat(),
    );
    ok(dir.path(), &[&["run", "--out", "generated"][..], &set_args].concat());
    ok(dir.path(), &["run", "--trace", "t.jsonl", "--out", "traced"]);
    for f in ["report.json", "timeline.json"] {
        let a = std::fs::read(dir.path().join("generated").join(f)).unwrap();
        let b = std::fs::read(dir.path().join("traced").join(f)).unwrap();
        assert!(a == b, "{f} differs after the round trip");
    }
}

#[test]
fn round_trip_of_the_default_workload() {
    round_trip(&[]);
}

#[test]
fn round_trip_of_an_interleaved_tensor_parallel_workload() {
    round_trip(&[
        "workload.parallel.tensor=2",
        "workload.parallel.pipeline=4",
        "workload.parallel.data=8",
        "workload.schedule=interleaved",
        "workload.parallel.interleave=2",
        "workload.batch.global=64",
        "workload.recompute=selective",
    ]);
}

#[test]
fn round_trip_of_nccl_and_userbuffers_collectives_beside_gemms() {
    // the asynchronous backward all-reduces run by NCCL on the tensor stream (written with
    // `userbuffers: false`), and with tp_comm_overlap the reduce-scatters Transformer Engine's
    // userbuffers run there (the stream's default)
    round_trip(&[
        "workload.tp_async_allreduce=true",
        "workload.parallel.tensor=4",
        "workload.parallel.data=16",
    ]);
    round_trip(&[
        "workload.tp_comm_overlap=true",
        "workload.parallel.sequence_parallel=true",
        "workload.parallel.tensor=4",
        "workload.parallel.data=16",
    ]);
}

#[test]
fn round_trip_of_fused_attention_kernels() {
    for library in ["flash1", "flash", "cudnn"] {
        round_trip(&[
            &format!("workload.attention={library}"),
            "workload.parallel.tensor=2",
            "workload.parallel.data=16",
        ]);
    }
}

const HEADER: &str = r#"{"format":"clustersim-trace","version":1,"name":"bad","ranks":2}"#;
const OP: &str = r#"{"type":"op","id":0,"name":"matmul","kernels":[{"gemm":[1,1024,1024,1024]}]}"#;
const GROUP: &str = r#"{"type":"group","id":0,"ranks":[0,1]}"#;

fn fails(lines: &[&str]) -> String {
    let trace = lines.join("\n");
    expect_input_error(
        &[("bad.jsonl", &trace)],
        &["run", "--no-output", "--trace", "bad.jsonl"],
    )
}

#[test]
fn dependency_cycle() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        OP,
        r#"{"type":"task","id":1,"rank":0,"op":0,"deps":[2]}"#,
        r#"{"type":"task","id":2,"rank":1,"op":0,"deps":[1]}"#,
    ]));
}

#[test]
fn dependency_on_a_missing_task() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        OP,
        r#"{"type":"task","id":1,"rank":0,"op":0,"deps":[7]}"#
    ]));
}

#[test]
fn rank_outside_the_trace() {
    insta::assert_snapshot!(fails(&[HEADER, OP, r#"{"type":"task","id":1,"rank":5,"op":0}"#]));
}

#[test]
fn more_ranks_than_the_hardware_has() {
    insta::assert_snapshot!(fails(&[
        r#"{"format":"clustersim-trace","version":1,"name":"big","ranks":100000}"#,
        r#"{"type":"task","id":0,"rank":0,"delay_ns":1}"#
    ]));
}

#[test]
fn collective_members_disagree_on_size() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        GROUP,
        r#"{"type":"task","id":1,"rank":0,"collective":{"id":3,"op":"all-reduce","group":0,"bytes":1024}}"#,
        r#"{"type":"task","id":2,"rank":1,"collective":{"id":3,"op":"all-reduce","group":0,"bytes":2048}}"#,
    ]));
}

#[test]
fn collective_member_outside_its_group() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        r#"{"type":"group","id":0,"ranks":[0]}"#,
        r#"{"type":"task","id":1,"rank":1,"collective":{"id":3,"op":"all-reduce","group":0,"bytes":1024}}"#,
    ]));
}

#[test]
fn send_without_a_matching_receive() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        r#"{"type":"task","id":1,"rank":0,"stream":"send","send":{"peer":1,"bytes":4096,"tag":9}}"#
    ]));
}

#[test]
fn unknown_version() {
    insta::assert_snapshot!(fails(&[
        r#"{"format":"clustersim-trace","version":7,"name":"future","ranks":2}"#
    ]));
}

#[test]
fn malformed_record() {
    insta::assert_snapshot!(fails(&[
        HEADER,
        r#"{"type":"task","id":1,"rank":0,"op":0,"colour":"blue"}"#
    ]));
}

/// The example traces run as they are: workload-free reports, rates from the traces' kernels.
#[test]
fn example_traces_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/traces");
    let dir = tempfile::tempdir().unwrap();
    for f in ["moe-layer.yaml", "dlrm.yaml", "inference-decode.jsonl"] {
        let path = root.join(f);
        let o = clustersim(
            dir.path(),
            &[
                "run",
                "--no-output",
                "--format",
                "json",
                "--trace",
                path.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{f}: {}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(r["iteration_time_s"].as_f64().unwrap() > 0.0, "{f}");
        assert!(r["tflops_per_gpu"].as_f64().unwrap() > 0.0, "{f}");
        assert!(r.get("memory").is_none(), "{f}: no memory model without a workload");
        if f == "moe-layer.yaml" {
            // four all-to-alls of 32 MiB per GPU across two nodes block the compute stream
            assert!(r["breakdown"]["exposed_comm_s"].as_f64().unwrap() > 1e-3, "{r}");
        }
    }
}
