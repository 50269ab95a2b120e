//! NCCL 2.21 and NVLink SHARP (NVLS) on the H100 presets, against published nccl-tests; the A100
//! presets' collectives unchanged.

use super::common::{clustersim, expect_input_error};
use clustersim::config::{Document, HardwareSpec, Override};
use clustersim::studies::collective::{published_busbw, sweep, SweepOp};

const GIB: u64 = 1 << 30;

fn hardware(preset: &str, sets: &[&str]) -> HardwareSpec {
    let mut doc = Document::parse(preset, clustersim::config::builtin_hardware(preset).unwrap()).unwrap();
    for s in sets {
        doc.apply(&Override::parse(s).unwrap()).unwrap();
    }
    HardwareSpec::from_document(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn busbw(hw: &HardwareSpec, op: SweepOp, gpus: u32, bytes: u64) -> f64 {
    sweep(hw, op, gpus, &[bytes]).unwrap()[0].busbw / 1e9
}

/// Every committed `clustersim collective` result on dgx-a100 (results/collective/*/busbw.csv, made
/// by scripts/regenerate-results.sh) comes out the same to the last digit: NCCL 2.21's table and
/// NVLS leave NCCL 2.8's model alone.
#[test]
fn a100_collective_times_are_unchanged() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/collective");
    let cases = [
        ("all-reduce-8", SweepOp::AllReduce, 8, None),
        ("all-gather-8", SweepOp::AllGather, 8, None),
        ("reduce-scatter-8", SweepOp::ReduceScatter, 8, None),
        ("all-reduce-64", SweepOp::AllReduce, 64, None),
        (
            "all-reduce-64-ring",
            SweepOp::AllReduce,
            64,
            Some("hardware.network.algorithm=ring"),
        ),
    ];
    for (dir, op, gpus, set) in cases {
        let hw = hardware("dgx-a100", &set.into_iter().collect::<Vec<_>>());
        let csv = std::fs::read_to_string(root.join(dir).join("busbw.csv")).unwrap();
        let rows: Vec<(u64, f64)> = csv
            .lines()
            .skip(1)
            .map(|l| {
                let mut f = l.split(',');
                (f.next().unwrap().parse().unwrap(), f.next().unwrap().parse().unwrap())
            })
            .collect();
        let sizes: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let points = sweep(&hw, op, gpus, &sizes).unwrap();
        assert_eq!(points.len(), rows.len());
        for (p, (bytes, time_s)) in points.iter().zip(rows) {
            assert_eq!(p.time_s, time_s, "{dir}, {bytes} B");
        }
    }
}

/// 8 x H100 all-reduce at 8 GiB against nccl-tests: ~480 GB/s busbw with NVLS, NCCL's default
/// (workloads/reference/nccl-tests.csv), ~370 without (NCCL_ALGO=RING: nccl issue 1455, nccl-tests
/// issue 212). NCCL 2.21's model predicts NVLS at 8 x 40 GB/s x 5/6 = 266.7 GB/s algbw, busbw x 2 x 7/8
/// = 466.7 (-2.8%), rings at 12 x 30 = 360 (-2.7%): both within 5%. The same on dgx-h200 (published
/// 480). All-gather over rings: 360 against ~370.
#[test]
fn h100_allreduce_busbw_with_and_without_nvls_matches_nccl_tests() {
    let h100 = hardware("dgx-h100", &[]);
    let published = published_busbw("dgx-h100", SweepOp::AllReduce, 8, 8).unwrap().0;
    assert_eq!(published, 480.0);
    let nvls = busbw(&h100, SweepOp::AllReduce, 8, 8 * GIB);
    assert!((nvls / published - 1.0).abs() < 0.05, "NVLS {nvls}");
    let ring = busbw(
        &hardware("dgx-h100", &["hardware.node.nvlink.sharp=false"]),
        SweepOp::AllReduce,
        8,
        8 * GIB,
    );
    assert!((ring / 370.0 - 1.0).abs() < 0.05, "ring {ring}");
    assert!(nvls > 1.25 * ring, "NVLS {nvls} vs ring {ring}");
    let h200 = busbw(&hardware("dgx-h200", &[]), SweepOp::AllReduce, 8, 8 * GIB);
    assert!((h200 / 480.0 - 1.0).abs() < 0.05, "H200 {h200}");
    let ag = busbw(&h100, SweepOp::AllGather, 8, 8 * GIB);
    let ag_published = published_busbw("dgx-h100", SweepOp::AllGather, 8, 8).unwrap().0;
    assert!((ag / ag_published - 1.0).abs() < 0.05, "all-gather {ag}");
}

/// `clustersim collective` names what NCCL's tuner runs: NVLS for a large all-reduce on one H100
/// node, rings when NVLink SHARP is switched off, NVLS tree across two nodes, rings on dgx-a100.
#[test]
fn collective_table_shows_nvls() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = clustersim(
            dir.path(),
            &[&["collective", "--sizes", "1GiB", "--no-output"][..], args].concat(),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // NVLS holds NCCL's 16 NVLS channels' SMs; a ring on one DGX H100 node 2 x 12 = 24 (occupancy.rs)
    assert!(run(&["--hardware", "dgx-h100"]).contains("NVLS/Simple, 16 SMs"));
    let off = run(&["--hardware", "dgx-h100", "--set", "hardware.node.nvlink.sharp=false"]);
    assert!(off.contains("Ring/Simple, 24 SMs") && !off.contains("NVLS"), "{off}");
    assert!(run(&["--hardware", "dgx-h100", "--gpus", "16"]).contains("NVLSTree/Simple"));
    assert!(run(&[]).contains("Ring/Simple"));
}

/// NVLink SHARP belongs to the NVSwitch: on a NIC it is an error naming the field.
#[test]
fn sharp_on_a_nic_is_an_error() {
    let hw = include_str!("../../hardware/dgx-h100.yaml").replace(
        "    efficiency: 0.96           # assumption: the HDR figure (24 of 25 GB/s, nccl issue 412)\n",
        "    efficiency: 0.96\n    sharp: true\n",
    );
    insta::assert_snapshot!(expect_input_error(
        &[("hw.yaml", &hw)],
        &["collective", "--hardware", "hw.yaml", "--no-output"]
    ));
}
