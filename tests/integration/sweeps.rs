//! Sweep specs: errors in the spec are fatal and clear; invalid points are reported per row.

use super::common::{clustersim, expect_input_error};
use clustersim::studies::sweep::{run_sweep, SweepSpec};

fn spec_error(yaml: &str) -> String {
    expect_input_error(&[("s.yaml", yaml)], &["sweep", "s.yaml"])
}

#[test]
fn unknown_axis_key() {
    insta::assert_snapshot!(spec_error(
        "name: s\naxes:\n  - key: workload.parallel.pipelines\n    values: [2, 4]\n"
    ));
}

#[test]
fn empty_axis() {
    insta::assert_snapshot!(spec_error(
        "name: s\naxes:\n  - key: workload.parallel.pipeline\n    values: []\n"
    ));
}

#[test]
fn zipped_axes_of_different_lengths() {
    insta::assert_snapshot!(spec_error(
        "name: s\naxes:\n  - zip:\n      workload.parallel.pipeline: [2, 4, 8]\n      workload.parallel.data: [32, 16]\n"
    ));
}

#[test]
fn axis_with_both_forms() {
    insta::assert_snapshot!(spec_error("name: s\naxes:\n  - key: workload.parallel.pipeline\n"));
}

/// The cartesian product runs every point; a point that is not a valid configuration (pipeline 5
/// does not divide 32 layers; 3 x 8 = 24 GPUs is fine on its own) becomes a row with an error,
/// and the rest still run. Rows come out in point order whatever the thread timing.
#[test]
fn invalid_points_are_reported_per_row() {
    let spec = SweepSpec::parse(
        "inline",
        "name: s\nset: [\"workload.batch.global=64\"]\naxes:\n  - key: workload.parallel.data\n    values: [1, 2]\n  - key: workload.parallel.pipeline\n    values: [4, 5, 8]\nmetrics: [tflops_per_gpu]\n",
    )
    .unwrap();
    let result = run_sweep(&spec, false).unwrap();
    assert_eq!(result.rows.len(), 6);
    let errors: Vec<bool> = result.rows.iter().map(|r| r.error.is_some()).collect();
    assert_eq!(errors, vec![false, true, false, false, true, false]);
    assert!(
        result.rows[1].error.as_ref().unwrap().contains("parallel.pipeline"),
        "{:?}",
        result.rows[1].error
    );
    let csv = clustersim::studies::sweep::execute::csv(&result);
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("workload.parallel.data,workload.parallel.pipeline,tflops_per_gpu,error"));
}

/// `clustersim sweep` writes the CSV and the plot; the same spec twice gives identical files.
#[test]
fn sweep_command_writes_csv_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: tiny\nset: [\"workload.batch.global=16\"]\naxes:\n  - zip:\n      workload.parallel.pipeline: [2, 4]\n      workload.parallel.data: [32, 16]\nplot: { file: tiny, x: [workload.parallel.pipeline], y: tflops_per_gpu }\n";
    std::fs::write(dir.path().join("tiny.yaml"), yaml).unwrap();
    for out in ["a", "b"] {
        let o = clustersim(dir.path(), &["sweep", "tiny.yaml", "--out", out]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["tiny.csv", "tiny.png", "tiny.svg"] {
        let a = std::fs::read(dir.path().join("a").join(f)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(f)).unwrap();
        assert!(a == b, "{f} differs");
    }
}
