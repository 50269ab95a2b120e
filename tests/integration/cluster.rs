//! `clustersim cluster`: several jobs on one fabric.

use super::common::{clustersim, report};

/// Two data-parallel jobs of 4 nodes each (t8 d4) on 8 DGX A100 nodes whose rail-optimized leaves
/// join 4 nodes each (radix 5 at 4:1, four switch levels): a job's gradient ring stays on its
/// leaves when packed, and crosses the 4:1 uplinks, beside the other job's, when spread.
const MACHINE: &str = r#"set: ["hardware.nodes=8", "hardware.network.topology.radix=5", "hardware.network.topology.oversubscription=4", "hardware.network.topology.levels=4"]"#;
const JOB: &str = r#"["workload.model.layers=4", "workload.parallel.tensor=8", "workload.parallel.pipeline=1", "workload.parallel.data=4", "workload.batch.global=16"]"#;

fn spec(name: &str, placements: [&str; 2]) -> String {
    format!(
        "name: {name}\nhardware: dgx-a100\n{MACHINE}\njobs:\n  - {{ name: a, workload: gpt-5.9b, set: {JOB}, placement: {} }}\n  - {{ name: b, workload: gpt-5.9b, set: {JOB}, placement: {} }}\n",
        placements[0], placements[1]
    )
}

fn cluster(text: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jobs.yaml"), text).unwrap();
    let o = clustersim(dir.path(), &["cluster", "jobs.yaml", "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(dir.path().join("out/cluster.json")).unwrap()).unwrap()
}

fn jobs(result: &serde_json::Value) -> serde_json::Value {
    result["jobs"].clone()
}

#[test]
fn packed_jobs_on_their_own_leaves_run_as_alone_and_as_run_does() {
    let result = cluster(&spec("packed", ["packed", "packed"]));
    // each job's flows stay on its own leaves and NICs
    assert_eq!(result["shared_links"], serde_json::json!([]));
    let jobs = jobs(&result);
    let sets: Vec<String> = [
        "hardware.nodes=8",
        "hardware.network.topology.radix=5",
        "hardware.network.topology.oversubscription=4",
        "hardware.network.topology.levels=4",
        "workload.model.layers=4",
        "workload.parallel.tensor=8",
        "workload.parallel.pipeline=1",
        "workload.parallel.data=4",
        "workload.batch.global=16",
    ]
    .map(String::from)
    .to_vec();
    let alone_run = report("dgx-a100", "gpt-5.9b", &sets).iteration_time_s;
    for job in jobs.as_array().unwrap() {
        // no link shared: the same time beside the other job as alone, and as `run` on nodes 0-3
        assert_eq!(job["shared_s"], job["alone_s"], "{job}");
        assert_eq!(job["slowdown"], 1.0);
        assert!(
            (job["alone_s"].as_f64().unwrap() - alone_run).abs() < 1e-12,
            "{job} vs {alone_run}"
        );
    }
    assert_eq!(jobs[0]["nodes"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(jobs[1]["nodes"], serde_json::json!([4, 5, 6, 7]));
}

#[test]
fn spread_jobs_slow_each_other_on_an_oversubscribed_fabric() {
    let result = cluster(&spec("spread", ["spread", "spread"]));
    // where they met: the leaf uplinks both rings cross: 4 rails x 2 leaf groups x up and down.
    // Four rails, not eight: each data-parallel ring holds one GPU per node, and NCCL 2.8 puts the
    // rings of GPUs 2j and 2j+1 (one PCIe switch) both on NIC 2j
    let met = &result["shared_links"][0];
    assert_eq!(met["jobs"], serde_json::json!(["a", "b"]));
    assert_eq!(met["class"], "leaf uplink");
    assert_eq!(met["links"], 16);
    let jobs = jobs(&result);
    assert_eq!(jobs[0]["nodes"], serde_json::json!([0, 2, 4, 6]));
    assert_eq!(jobs[1]["nodes"], serde_json::json!([1, 3, 5, 7]));
    for job in jobs.as_array().unwrap() {
        // each ring crosses the 4:1 uplinks, each of which then carries both jobs' flows
        assert!(job["slowdown"].as_f64().unwrap() > 1.05, "{job}");
    }
}

#[test]
fn explicit_nodes_and_start_times() {
    let text = spec("explicit", ["{ nodes: [4, 5, 6, 7] }", "packed"]).replace("name: b,", "name: b, start: 1 s,");
    let jobs = jobs(&cluster(&text));
    assert_eq!(jobs[0]["nodes"], serde_json::json!([4, 5, 6, 7]));
    assert_eq!(jobs[1]["nodes"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(jobs[1]["start_s"], 1.0);
    // b starts after a has finished: neither waits for the other
    assert_eq!(jobs[1]["slowdown"], 1.0);
}

#[test]
fn bad_cluster_specs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: String, needle: &str| {
        std::fs::write(dir.path().join("jobs.yaml"), &text).unwrap();
        let o = clustersim(dir.path(), &["cluster", "jobs.yaml", "--no-output"]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    check(
        spec("x", ["{ nodes: [0, 1, 2, 3] }", "{ nodes: [3, 4, 5, 6] }"]),
        "jobs[1].placement.nodes[0]` = 3: node 3 is already job `a`'s",
    );
    check(
        spec("x", ["{ nodes: [0, 1, 2, 99] }", "packed"]),
        "jobs[0].placement.nodes[3]",
    );
    check(
        spec("x", ["packed", "packed"]).replace("workload.parallel.data=4", "workload.parallel.data=8"),
        "needs 8 nodes",
    );
    check(
        spec("x", ["packed", "packed"]).replace("name: a,", "name: a, gpus: 16,"),
        "jobs[0].gpus",
    );
    check(
        spec("x", ["packed", "packed"]).replace("name: a,", "name: a, colour: red,"),
        "unknown key",
    );
}
