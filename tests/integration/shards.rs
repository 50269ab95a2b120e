//! Sharded sweeps and plans: the merge of N shards writes the unsharded command's files byte for
//! byte, the split gives every shard a non-empty, disjoint slice covering every point, and bad
//! shards or shard sets are refused with exit code 2 naming the file or the missing shard.

use super::common::{clustersim, expect_input_error, expect_input_error_in};
use clustersim::studies::shard::slice::{assign, Shard};
use proptest::prelude::*;
use std::path::Path;

const DEMO: &str = include_str!("../../workloads/sweeps/shard-demo.yaml");

/// A small GPT (8 layers, hidden 1024, 16 heads, batch 16) planned on 4 GPUs: 540 candidates in
/// about 0.2 s.
const PLAN: [&str; 11] = [
    "plan",
    "--gpus",
    "4",
    "--set",
    "workload.model.layers=8",
    "--set",
    "workload.model.hidden=1024",
    "--set",
    "workload.model.heads=16",
    "--set",
    "workload.batch.global=16",
];

/// Runs the binary in `dir`, expecting success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = clustersim(dir, args);
    assert!(
        o.status.success(),
        "clustersim {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs `base` sharded N ways (`--shard K/N --out shards-N/K`) and merges into `merged-N`;
/// returns merge's stdout.
fn shard_and_merge(dir: &Path, base: &[&str], n: u32) -> String {
    for k in 0..n {
        let (shard, out) = (format!("{k}/{n}"), format!("shards-{n}/{k}"));
        ok(dir, &[base, &["--shard", &shard, "--out", &out]].concat());
    }
    let shard_dirs: Vec<String> = (0..n).map(|k| format!("shards-{n}/{k}")).collect();
    let mut args = vec!["merge"];
    args.extend(shard_dirs.iter().map(String::as_str));
    let out = format!("merged-{n}");
    args.extend(["--out", &out]);
    ok(dir, &args)
}

fn same_files(dir: &Path, a: &str, b: &str, files: &[&str]) {
    for f in files {
        let x = std::fs::read(dir.join(a).join(f)).unwrap();
        let y = std::fs::read(dir.join(b).join(f)).unwrap();
        assert!(x == y, "{a}/{f} and {b}/{f} differ");
    }
}

/// `sweep --shard K/N` for N = 1, 3, 4, 7, merged: the CSV, PNG and SVG of the unsharded sweep,
/// byte for byte (the demo's 30 points include 6 invalid ones, kept as rows with their error).
#[test]
fn merged_sweep_shards_are_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("demo.yaml"), DEMO).unwrap();
    let unsharded = ok(dir.path(), &["sweep", "demo.yaml", "--out", "whole"]);
    for n in [1, 3, 4, 7] {
        let merged = shard_and_merge(dir.path(), &["sweep", "demo.yaml"], n);
        same_files(
            dir.path(),
            "whole",
            &format!("merged-{n}"),
            &["shard-demo.csv", "shard-demo.png", "shard-demo.svg"],
        );
        // the summary too, but for the timing and the folder
        let tail = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .filter(|l| !l.contains("wrote"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(tail(&unsharded), tail(&merged));
    }
}

/// `plan --shard K/N` for N = 1, 3, 4, 7, merged: plan.csv byte for byte, the same printed ranking.
#[test]
fn merged_plan_shards_are_the_unsharded_plan() {
    let dir = tempfile::tempdir().unwrap();
    let unsharded = ok(dir.path(), &[&PLAN[..], &["--out", "whole"]].concat());
    let table = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .filter(|l| !l.contains("wrote"))
            .map(str::to_string)
            .collect()
    };
    for n in [1, 3, 4, 7] {
        let merged = shard_and_merge(dir.path(), &PLAN, n);
        same_files(dir.path(), "whole", &format!("merged-{n}"), &["plan.csv"]);
        assert_eq!(table(&unsharded), table(&merged));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For any costs and any N up to the number of points: every shard gets at least one point,
    /// no point is in two shards, every point is in one, and the loads differ by at most the
    /// largest cost (the last point given to the fullest shard went to the emptiest one then).
    #[test]
    fn every_shard_gets_a_disjoint_non_empty_slice(
        costs in proptest::collection::vec(0u64..1_000_000, 1..60),
        n_seed in 0usize..1000,
    ) {
        let n = (n_seed % costs.len()) as u32 + 1;
        let mut seen = vec![0u32; costs.len()];
        let mut loads = Vec::new();
        for k in 0..n {
            let ids = Shard { index: k, count: n }.points(&costs).unwrap();
            prop_assert!(!ids.is_empty(), "shard {k} of {n} is empty");
            for &i in &ids {
                seen[i] += 1;
            }
            loads.push(ids.iter().map(|&i| costs[i].max(1) as u128).sum::<u128>());
        }
        prop_assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
        let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
        prop_assert!(spread <= *costs.iter().max().unwrap().max(&1) as u128, "{loads:?}");
        prop_assert_eq!(assign(&costs, n), assign(&costs, n), "deterministic");
    }
}

/// The demo sweep's split by cost over 4 shards: 30 points, each in one shard, none empty.
#[test]
fn demo_sweep_split_covers_every_point() {
    let spec = clustersim::studies::sweep::SweepSpec::parse("demo.yaml", DEMO).unwrap();
    let costs = clustersim::studies::shard::sweep::costs(&spec).unwrap();
    assert_eq!(costs.len(), 30);
    let mut all: Vec<usize> = (0..4)
        .flat_map(|k| Shard { index: k, count: 4 }.points(&costs).unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
}

fn demo_error(args: &[&str]) -> String {
    expect_input_error(&[("demo.yaml", DEMO)], &[&["sweep", "demo.yaml"][..], args].concat())
}

#[test]
fn shard_index_out_of_range() {
    insta::assert_snapshot!(demo_error(&["--shard", "4/4"]));
}

#[test]
fn zero_shards() {
    insta::assert_snapshot!(demo_error(&["--shard", "0/0"]));
}

#[test]
fn shard_not_a_number() {
    insta::assert_snapshot!(demo_error(&["--shard", "x/3"]));
}

#[test]
fn more_shards_than_points() {
    insta::assert_snapshot!(demo_error(&["--shard", "0/31"]));
}

#[test]
fn plan_shard_without_output() {
    insta::assert_snapshot!(expect_input_error(
        &[],
        &[&PLAN[..], &["--shard", "0/2", "--no-output"]].concat()
    ));
}

/// A folder with shard K of N of the demo sweep in `name`/ for each (K, N, spec file) given.
fn shards(specs: &[(&str, &str)], runs: &[(u32, u32, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in specs {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    for (k, n, spec, out) in runs {
        ok(
            dir.path(),
            &["sweep", spec, "--shard", &format!("{k}/{n}"), "--out", out],
        );
    }
    dir
}

/// A folder with the demo spec and shard K of N of it in `name`/ for each (K, N, name).
fn demo_shards(runs: &[(u32, u32, &str)]) -> tempfile::TempDir {
    let runs: Vec<_> = runs.iter().map(|&(k, n, out)| (k, n, "demo.yaml", out)).collect();
    shards(&[("demo.yaml", DEMO)], &runs)
}

/// Merge's error output with the inputs hashes (which change with any preset) masked.
fn merge_error(dir: &Path, args: &[&str]) -> String {
    let text = expect_input_error_in(dir, &[&["merge"][..], args, &["--out", "merged"]].concat());
    assert!(!dir.join("merged").exists(), "a failed merge wrote its output folder");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("fnv1a-128:") {
        out += &rest[..at + "fnv1a-128:".len()];
        out += "[hash]";
        rest = &rest[(at + "fnv1a-128:".len() + 32).min(rest.len())..];
    }
    out + rest
}

#[test]
fn merge_with_a_shard_missing() {
    let dir = demo_shards(&[(0, 4, "s0"), (1, 4, "s1"), (3, 4, "s3")]);
    insta::assert_snapshot!(merge_error(dir.path(), &["s0", "s1", "s3"]));
}

#[test]
fn merge_with_a_shard_twice() {
    // shard 0 run twice, into two folders
    let dir = demo_shards(&[(0, 2, "s0"), (1, 2, "s1"), (0, 2, "again")]);
    insta::assert_snapshot!(merge_error(dir.path(), &["s0", "s1", "again"]));
}

#[test]
fn merge_shards_of_two_specs() {
    let other = DEMO.replace("values: [1, 2]", "values: [1, 4]");
    let dir = shards(
        &[("demo.yaml", DEMO), ("other.yaml", &other)],
        &[(0, 2, "demo.yaml", "a"), (1, 2, "other.yaml", "b")],
    );
    insta::assert_snapshot!(merge_error(dir.path(), &["a", "b"]));
}

#[test]
fn merge_shards_of_different_counts() {
    let dir = demo_shards(&[(0, 2, "a"), (1, 3, "b")]);
    insta::assert_snapshot!(merge_error(dir.path(), &["a", "b"]));
}

#[test]
fn merge_a_truncated_shard() {
    let dir = demo_shards(&[(0, 2, "s0"), (1, 2, "s1")]);
    let f = dir.path().join("s1/shard-1-of-2.json");
    let text = std::fs::read(&f).unwrap();
    std::fs::write(&f, &text[..100]).unwrap();
    insta::assert_snapshot!(merge_error(dir.path(), &["s0", "s1"]));
}

#[test]
fn merge_a_corrupt_shard() {
    let dir = demo_shards(&[(0, 2, "s0"), (1, 2, "s1")]);
    let f = dir.path().join("s1/shard-1-of-2.json");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("\"id\"", "\"identity\"", 1)).unwrap();
    insta::assert_snapshot!(merge_error(dir.path(), &["s0", "s1"]));
}

#[test]
fn merge_a_shard_with_rows_missing() {
    let dir = demo_shards(&[(0, 2, "s0"), (1, 2, "s1")]);
    let f = dir.path().join("s0/shard-0-of-2.json");
    let mut file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    file["study"]["sweep"]["rows"].as_array_mut().unwrap().pop();
    std::fs::write(&f, serde_json::to_string(&file).unwrap()).unwrap();
    insta::assert_snapshot!(merge_error(dir.path(), &["s0", "s1"]));
}

#[test]
fn merge_a_shard_of_another_version() {
    let dir = demo_shards(&[(0, 1, "s0")]);
    let f = dir.path().join("s0/shard-0-of-1.json");
    let text = std::fs::read_to_string(&f).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(&f, text.replace(&format!("\"{version}\""), "\"0.0.1\"")).unwrap();
    let message = merge_error(dir.path(), &["s0"]).replace(version, "[this version]");
    insta::assert_snapshot!(message);
}

#[test]
fn merge_a_folder_without_shards() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    insta::assert_snapshot!(merge_error(dir.path(), &["empty"]));
}

#[test]
fn a_shard_of_another_run_is_not_replaced() {
    // two different sweeps sharded into one folder: the second's shard 0 of 2 would overwrite the
    // first's; it is refused naming both runs, and the first's file stays as it was
    let other = DEMO.replace("values: [1, 2]", "values: [1, 4]");
    let dir = shards(
        &[("demo.yaml", DEMO), ("other.yaml", &other)],
        &[(0, 2, "demo.yaml", "d")],
    );
    let path = dir.path().join("d/shard-0-of-2.json");
    let before = std::fs::read(&path).unwrap();
    let text = expect_input_error_in(dir.path(), &["sweep", "other.yaml", "--shard", "0/2", "--out", "d"]);
    assert!(
        text.contains("shard-0-of-2.json")
            && text.contains("a shard file of another run is there")
            && text.contains("its own --out"),
        "{text}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // the same run's shard, rerun, replaces its own
    ok(dir.path(), &["sweep", "demo.yaml", "--shard", "0/2", "--out", "d"]);
}
