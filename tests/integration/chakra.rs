//! Chakra execution traces: ASTRA-sim's microbenchmarks and three Symbolic Tensor Graph GPT
//! iterations (tests/fixtures/chakra, copied from shared/reference/chakra with ASTRA-sim's
//! results), run in the ASTRA-sim-compatible mode (`network.model: astra`) and on clustersim's
//! own models; bad sets exit 2 naming the file, rank and node.

use super::common::{clustersim, clustersim_within};
use clustersim::workload::trace::chakra::proto::{AttributeProto, GlobalMetadata, Node, NodeType, Value};
use prost::Message;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chakra");

/// Runs the binary and returns the iteration time in ns.
fn iteration_ns(args: &[&str]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["run", "--no-output", "--format", "json"];
    all.extend_from_slice(args);
    let o = clustersim(dir.path(), &all);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["iteration_time_s"].as_f64().unwrap() * 1e9
}

/// The 16 microbenchmarks (4 collectives x 4, 8, 16 NPUs on ASTRA-sim's ring of 50 GiB/s and
/// 500 ns, and 8 NPUs on its HGX-H100 switch of 400 GiB/s and 936.25 ns), each within 5% of
/// ASTRA-sim (target), in fact within 0.1%. Hand check, all-gather of 1 MiB on the 8-NPU ring:
/// 4 chunks of 262 144 B, each 7 steps of (500 ns + 262 144 B / 53.687 B/ns + 10 ns endpoint
/// delay) = 4 x 7 x 5392.8 = 151 000 ns; ASTRA-sim 151 016. All-reduce adds per chunk the
/// reduction's pass through local memory, 3 (n-1)/n x 262 144 B / 1600 GB/s = 369 ns at n = 4:
/// 4 x (6 x 1730.7 + 369) = 43 011 ns; ASTRA-sim 43 000.
#[test]
fn microbenchmarks_match_astra_sim() {
    let csv = std::fs::read_to_string(format!("{FIXTURES}/astra-sim-microbenchmarks.csv")).unwrap();
    let mut checked = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (op, npus, network, astra_ns) = (f[0], f[1], f[2], f[4].parse::<f64>().unwrap());
        let hardware = if network.starts_with("HGX") {
            format!("{FIXTURES}/hardware/astra-hgx-h100.yaml")
        } else {
            format!("{FIXTURES}/hardware/astra-ring-{npus}.yaml")
        };
        let trace = format!("{FIXTURES}/microbenchmarks/{op}/{npus}npus_1MB/{op}");
        let ns = iteration_ns(&["--hardware", &hardware, "--trace", &trace]);
        let error = ns / astra_ns - 1.0;
        assert!(
            error.abs() < 0.002,
            "{op} on {npus} ({network}): {ns:.0} ns vs ASTRA-sim {astra_ns}"
        );
        checked += 1;
    }
    assert_eq!(checked, 16);
}

/// Each rank's finish in ns (its last task's end in the timeline), over the ranks: (min, max).
fn finish_range_ns(args: &[&str]) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["run", "--out", "o"];
    all.extend_from_slice(args);
    let o = clustersim(dir.path(), &all);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let timeline: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/timeline.json")).unwrap()).unwrap();
    let mut end_us: std::collections::BTreeMap<u64, f64> = Default::default();
    for e in timeline["traceEvents"].as_array().unwrap() {
        if e["ph"] == "X" {
            let end = e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap_or(0.0);
            let last = end_us.entry(e["pid"].as_u64().unwrap()).or_insert(0.0);
            *last = last.max(end);
        }
    }
    let ends = end_us.values().map(|us| us * 1e3);
    (ends.clone().fold(f64::MAX, f64::min), ends.fold(0.0, f64::max))
}

/// The three GPT iterations in the compatible mode (ASTRA-sim's reading: `num_ops` as operations,
/// sizes as bytes), against ASTRA-sim's earliest and latest rank to finish: with the roofline (300
/// TFLOP/s, 900 GB/s, reductions through the same 900 GB/s), and with 1 ns compute nodes
/// (ASTRA-sim's system file then names no local-mem-bw: reductions free). Target 10%. Measured
/// (README's Chakra table), since each rank issues its ready nodes as ASTRA-sim does (lowest node
/// id first, one compute and one collective or send at a time, receives free; the engine's pools):
/// every finish within 0.3%, clustersim early (the largest: the 8-rank set with 1 ns compute,
/// -0.28% on its first rank to finish, -0.25% on its last: about 5 us of 2.3 ms over a rank's 90
/// collectives, not traced further), the 32-rank set's within 0.03%. Asserted within 0.5%: the
/// fixed stream orders found by re-running (before the pools) missed by -18% to +42%.
#[test]
fn llm_sets_match_astra_sim_in_the_compatible_mode() {
    let csv = std::fs::read_to_string(format!("{FIXTURES}/astra-sim-llm.csv")).unwrap();
    let cases = [
        ("gpt_dp2_tp2_pp2", "astra-switch8"),
        ("gpt_dp4_tp2_pp2", "astra-switch8x2"),
        ("gpt_dp2_tp4_pp4_notpsp", "astra-switch8x4"),
    ];
    for (set, hardware) in cases {
        // ASTRA-sim's (min, max) finish over ranks
        let astra = |system: &str| -> (f64, f64) {
            let line = csv.lines().find(|l| l.starts_with(set) && l.contains(system)).unwrap();
            let f: Vec<f64> = line.split(',').skip(4).take(2).map(|x| x.parse().unwrap()).collect();
            (f[0], f[1])
        };
        let trace = format!("{FIXTURES}/llm/{set}/{set}");
        let groups = format!("{FIXTURES}/llm/{set}/{set}.json");
        let hw = format!("{FIXTURES}/hardware/{hardware}.yaml");
        let base = ["--hardware", &hw, "--trace", &trace, "--comm-groups", &groups];
        let unit_args = [
            "--chakra-compute",
            "1ns",
            "--set",
            "hardware.network.astra.local_memory_bandwidth=~",
        ];
        let roofline = finish_range_ns(&base);
        let unit = finish_range_ns(&[&base[..], &unit_args].concat());
        for (mode, ours, theirs) in [
            ("roofline", roofline, astra("sys_roofline_ring")),
            ("1 ns compute", unit, astra("sys_noroofline")),
        ] {
            for (what, a, b) in [("first", ours.0, theirs.0), ("last", ours.1, theirs.1)] {
                let error = a / b - 1.0;
                assert!(
                    error.abs() < 0.005,
                    "{set} {mode}: {what} rank done at {a:.0} ns, ASTRA-sim {b:.0} ns ({:+.2}%)",
                    error * 100.0
                );
            }
        }
        assert!(unit.1 < roofline.1, "{set}: compute takes time");
    }
}

/// On clustersim's own models: on DGX A100 nodes every group of these sets stays inside a node
/// but the pipeline's, so the flow model agrees with the contention-free one (49.726 ms both). On
/// 2-GPU nodes behind a 2:1 fabric the sets' groups of one GPU a node cross it: with one NIC for
/// both GPUs their traffic shares it, and the flow model takes 212.5 ms against 138.3 ms with a NIC
/// each on its own PCIe switch (+54%). The analytic model prices that sharing too (each ring at its share of the NIC when
/// every GPU of a node runs a group like it at once): 211.2 ms, within 1% of the flows.
#[test]
fn llm_sets_on_clustersims_models_show_contention() {
    let set = "gpt_dp4_tp2_pp2";
    let trace = format!("{FIXTURES}/llm/{set}/{set}");
    let groups = format!("{FIXTURES}/llm/{set}/{set}.json");
    let run = |extra: &[&str]| -> f64 {
        let base = [
            "--trace",
            &trace,
            "--comm-groups",
            &groups,
            "--chakra-ops",
            "macs",
            "--chakra-element-bytes",
            "2",
        ];
        iteration_ns(&[&base[..], extra].concat())
    };
    let (flow, analytic) = (
        run(&["--set", "hardware.network.model=flow"]),
        run(&["--set", "hardware.network.model=analytic"]),
    );
    assert!((flow / analytic - 1.0).abs() < 1e-5, "{flow} vs {analytic}");
    let small = |sets: &[&str]| {
        let mut args = vec![
            "--set",
            "hardware.node.gpus=2",
            "--set",
            "hardware.network.topology.oversubscription=2",
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        run(&args)
    };
    let own = small(&["hardware.node.nics=2", "hardware.node.gpus_per_pcie_switch=1"]);
    let shared = small(&["hardware.node.nics=1", "hardware.network.model=flow"]);
    assert!(shared > 1.4 * own, "{shared} vs {own}");
    let analytic = small(&["hardware.node.nics=1", "hardware.network.model=analytic"]);
    assert!((analytic / shared - 1.0).abs() < 0.02, "{analytic} vs {shared}");
}

fn attr(name: &str, value: Value) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        doc_string: String::new(),
        value: Some(value),
    }
}

fn node(id: u64, ty: NodeType, deps: &[u64], attrs: Vec<AttributeProto>) -> Node {
    Node {
        id,
        name: format!("n{id}"),
        r#type: ty as i32,
        data_deps: deps.to_vec(),
        attr: attrs,
        ..Default::default()
    }
}

fn all_reduce(id: u64, bytes: i64) -> Node {
    node(
        id,
        NodeType::CommColl,
        &[],
        vec![
            attr("comm_type", Value::Int64Val(0)),
            attr("comm_size", Value::Int64Val(bytes)),
        ],
    )
}

/// Writes `set.<rank>.et` files in `dir` from per-rank node lists.
fn write_set(dir: &std::path::Path, ranks: &[Vec<Node>]) {
    for (r, nodes) in ranks.iter().enumerate() {
        let mut buf = Vec::new();
        GlobalMetadata {
            version: "0.0.4".into(),
            attr: Vec::new(),
        }
        .encode_length_delimited(&mut buf)
        .unwrap();
        for n in nodes {
            n.encode_length_delimited(&mut buf).unwrap();
        }
        std::fs::write(dir.join(format!("set.{r}.et")), buf).unwrap();
    }
}

/// Runs `set` in a directory holding `ranks`, expecting exit 2; the message.
fn fails(ranks: &[Vec<Node>], damage: impl Fn(&std::path::Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), ranks);
    damage(dir.path());
    let o = clustersim_within(dir.path(), &["run", "--trace", "set", "--no-output"], 10);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_good_hand_written_set_runs() {
    let dir = tempfile::tempdir().unwrap();
    let compute = node(
        1,
        NodeType::Comp,
        &[],
        vec![
            attr("num_ops", Value::Int64Val(1 << 30)),
            attr("tensor_size", Value::Uint64Val(1 << 20)),
        ],
    );
    let mut reduce = all_reduce(2, 1 << 20);
    reduce.data_deps = vec![1];
    write_set(
        dir.path(),
        &[vec![compute.clone(), reduce.clone()], vec![reduce, compute]],
    );
    let o = clustersim(dir.path(), &["run", "--trace", "set", "--no-output"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn bad_sets_name_the_file_rank_and_node() {
    let ok = vec![all_reduce(1, 1024)];
    // a truncated record
    let e = fails(&[ok.clone(), ok.clone()], |d| {
        let p = d.join("set.1.et");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    });
    assert!(e.contains("set.1.et: rank 1: truncated record"), "{e}");
    // an unknown node type
    let mut odd = all_reduce(7, 1024);
    odd.r#type = 42;
    let e = fails(&[ok.clone(), vec![odd]], |_| {});
    assert!(e.contains("set.1.et: rank 1: node 7: unknown node type 42"), "{e}");
    // group members disagree on the collective
    let e = fails(&[ok.clone(), vec![all_reduce(1, 2048)]], |_| {});
    assert!(
        e.contains("set.1.et: rank 1: node 1: all-reduce of 2048") && e.contains("disagrees with"),
        "{e}"
    );
    // a send without a receive
    let send = node(
        3,
        NodeType::CommSend,
        &[],
        vec![
            attr("comm_dst", Value::Int32Val(1)),
            attr("comm_size", Value::Int64Val(64)),
            attr("comm_tag", Value::Int32Val(5)),
        ],
    );
    let e = fails(&[vec![send], vec![]], |_| {});
    assert!(
        e.contains("set.0.et: rank 0: node 3: send to rank 1 with tag 5 has no matching receive"),
        "{e}"
    );
    // a dependency on a missing node
    let mut waits = all_reduce(1, 1024);
    waits.data_deps = vec![99];
    let e = fails(&[ok.clone(), vec![waits]], |_| {});
    assert!(
        e.contains("set.1.et: rank 1: node 1: depends on node 99, which the file does not have"),
        "{e}"
    );
    // a collective on a group nobody defined
    let mut grouped = all_reduce(1, 1024);
    grouped.attr.push(attr("pg_name", Value::StringVal("3".into())));
    let e = fails(&[vec![grouped.clone()], vec![grouped]], |_| {});
    assert!(
        e.contains("rank 0: node 1: collective on group `pg_name` \"3\": give the groups with --comm-groups FILE"),
        "{e}"
    );
    // a collective one member never reaches
    let e = fails(&[ok, vec![]], |_| {});
    assert!(e.contains("has no counterpart on rank(s) [1]"), "{e}");
}

/// Two ranks reach the same two all-reduces (a, then b, in file order: one collective each), but
/// rank 1 gave b the lower node id: issued in ready order, lowest id first, rank 0 starts a and rank
/// 1 starts b, each waiting for the other (ASTRA-sim would hang). Exit 2, saying why.
#[test]
fn ranks_issuing_collectives_in_different_orders_deadlock() {
    let (a, b) = (all_reduce(1, 1024), all_reduce(2, 2048));
    let (mut a1, mut b1) = (a.clone(), b.clone());
    (a1.id, b1.id) = (2, 1);
    let e = fails(&[vec![a, b], vec![a1, b1]], |_| {});
    assert!(e.contains("the task graph deadlocked: 4 of 4 tasks never ran"), "{e}");
    assert!(
        e.contains("ranks may have started one group's collectives in different orders"),
        "{e}"
    );
    assert!(
        e.contains("rank 1 data-parallel comm stream: 0 of 2 tasks finished, 1 running, 1 ready"),
        "{e}"
    );
}

/// `trace export --format chakra` writes the generated workload as a Chakra set; running it gives
/// the generator's report.json and timeline.json byte for byte (the streams' order, kernels,
/// labels and workload travel as attributes ASTRA-sim ignores).
#[test]
fn exported_chakra_sets_run_like_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "--set",
        "workload.parallel.tensor=2",
        "--set",
        "workload.parallel.pipeline=4",
        "--set",
        "workload.parallel.data=8",
        "--set",
        "workload.batch.global=64",
        "--set",
        "workload.recompute=selective",
    ];
    let ok = |args: &[&str]| {
        let o = clustersim(dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ok(&[&["trace", "export", "--format", "chakra", "--out", "set"][..], &sets].concat());
    ok(&[&["run", "--out", "generated"][..], &sets].concat());
    ok(&[
        "run",
        "--trace",
        "set/gpt-5.9b",
        "--comm-groups",
        "set/gpt-5.9b.json",
        "--out",
        "traced",
    ]);
    for f in ["report.json", "timeline.json"] {
        let a = std::fs::read(dir.path().join("generated").join(f)).unwrap();
        let b = std::fs::read(dir.path().join("traced").join(f)).unwrap();
        assert!(a == b, "{f} differs after the Chakra round trip");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("set")).unwrap().count(),
        64 + 1,
        "64 rank files and the groups"
    );
}
