//! The host-dispatch model (`node.host_dispatch`), on hand-written traces of measured kernels.

use super::common::clustersim;

/// Runs a one-rank YAML trace on the ideal machine with a host dispatch cost; returns the
/// iteration time in microseconds.
fn iteration_us(tasks: &str, dispatch: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let trace = format!(
        "format: clustersim-trace\nversion: 1\nname: host\nranks: 1\nops:\n\
         \x20 - {{ id: 0, name: short, host_ops: 20, kernels: [{{ measured: 1000 }}, {{ measured: 1000 }}, {{ measured: 1000 }}, {{ measured: 1000 }}] }}\n\
         \x20 - {{ id: 1, name: gemm, host_ops: 2, kernels: [{{ measured: 1000000 }}] }}\n\
         tasks:\n{tasks}"
    );
    std::fs::write(dir.path().join("t.yaml"), trace).unwrap();
    let set = format!("hardware.node.host_dispatch={dispatch}");
    let o = clustersim(
        dir.path(),
        &[
            "run",
            "--trace",
            "t.yaml",
            "--hardware",
            "ideal",
            "--set",
            &set,
            "--no-output",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    report["iteration_time_s"].as_f64().unwrap() * 1e6
}

const STEPS: &str = concat!(
    "  - { id: 0, rank: 0, op: 0, phase: forward, microbatch: 0 }\n",
    "  - { id: 1, rank: 0, op: 1, phase: forward, microbatch: 0 }\n",
    "  - { id: 2, rank: 0, op: 0, phase: forward, microbatch: 1 }\n",
);

#[test]
fn short_kernels_wait_for_the_host_and_each_step_starts_after_the_gpu() {
    // Without a host: 4 x 1 us + 1000 us + 4 x 1 us = 1008 us.
    assert!((iteration_us(STEPS, "0 us") - 1008.0).abs() < 1e-6);
    // Host at 10 us per operation:
    // - task 0 (20 operations, 4 kernels of 1 us): its first kernel is dispatched after 20/4
    //   operations = 50 us, its last after all 20 = 200 us, then runs 1 us: ends at 201 us;
    // - task 1 (2 operations, one 1000 us kernel), same step: the host, free at 200 us, dispatches
    //   it by 220 us; it runs 220 .. 1220 us (the GEMM hides nothing: it starts late);
    // - task 2, a new microbatch: Megatron's timers synchronise, so the host starts it when the GPU
    //   is free (1220 us), and it again ends 201 us later: 1421 us.
    assert!((iteration_us(STEPS, "10 us") - 1421.0).abs() < 1e-6);
}

#[test]
fn backward_operations_cost_half_and_long_kernels_hide_the_host() {
    // a backward task of 20 operations at 5 us (half of 10): first kernel after 25 us, all
    // dispatched at 100 us, ends at 101 us
    let backward = "  - { id: 0, rank: 0, op: 0, phase: backward, microbatch: 0 }\n";
    assert!((iteration_us(backward, "10 us") - 101.0).abs() < 1e-6);
    // within a step the host runs ahead of a long kernel: the GEMM (dispatched at 20 us) runs
    // 20 .. 1020 us while the host dispatches the short task by 1020 us (200 us of operations,
    // from 20 us): the short task ends at max(1020 + 4, 220 + 1) = 1024 us
    let ahead = concat!(
        "  - { id: 0, rank: 0, op: 1, phase: forward, microbatch: 0 }\n",
        "  - { id: 1, rank: 0, op: 0, phase: forward, microbatch: 0 }\n",
    );
    assert!((iteration_us(ahead, "10 us") - 1024.0).abs() < 1e-6);
}
