//! Software profiles (`workload.software`): a framework release's switches in one word.

use super::common::{expect_input_error, report};

fn peak(r: &clustersim::report::Report) -> f64 {
    r.memory.as_ref().expect("memory is reported").peak_bytes_per_gpu
}

fn sets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `megatron-core-2024` on a 2021 preset (GPT 5.9B, t2 p2 d16 on H100s) runs exactly as the nine
/// switches it stands for written out: given with `--set`, it replaces the preset's own 2021
/// switches (`data_parallel: { overlap: false, grad_dtype: fp16 }`).
#[test]
fn a_profile_runs_as_the_switches_it_stands_for() {
    let split = [
        "workload.parallel.tensor=2",
        "workload.parallel.pipeline=2",
        "workload.parallel.data=16",
    ];
    let mut profile = sets(&split);
    profile.push("workload.software=megatron-core-2024".into());
    let mut explicit = sets(&split);
    explicit.extend(sets(&[
        "workload.attention=cudnn",
        "workload.tp_comm_overlap=true",
        "workload.parallel.sequence_parallel=true",
        "workload.data_parallel.overlap=true",
        "workload.data_parallel.grad_dtype=fp32",
        "workload.data_parallel.zero_stage=1",
        "workload.data_parallel.gradient_accumulation_fusion=true",
        "workload.data_parallel.contiguous_buffer=true",
        "workload.data_parallel.overlap_param_gather=true",
    ]));
    let (p, e) = (
        report("dgx-h100", "gpt-5.9b", &profile),
        report("dgx-h100", "gpt-5.9b", &explicit),
    );
    assert_eq!(p.iteration_time_s, e.iteration_time_s);
    assert_eq!(peak(&p), peak(&e));
    // and it is not the 2021 run: the overlaps and the distributed optimizer make it faster
    let plain = report("dgx-h100", "gpt-5.9b", &sets(&split));
    assert!(
        p.iteration_time_s < plain.iteration_time_s,
        "{} vs {}",
        p.iteration_time_s,
        plain.iteration_time_s
    );
}

/// `megatron-2021` is what every switch defaults to: the default run is unchanged by it.
#[test]
fn megatron_2021_is_the_defaults() {
    let plain = report("dgx-a100", "gpt-5.9b", &[]);
    let profiled = report("dgx-a100", "gpt-5.9b", &sets(&["workload.software=megatron-2021"]));
    assert_eq!(plain.iteration_time_s, profiled.iteration_time_s);
}

/// Other `--set` switches win over a profile given with `--set`: `fsdp-2024` with ZeRO-1 asked
/// for runs as ZeRO-1, not as the profile's ZeRO-3.
#[test]
fn set_switches_win_over_the_profile() {
    let base = [
        "workload.parallel.tensor=1",
        "workload.parallel.pipeline=1",
        "workload.parallel.data=64",
    ];
    let mut zero1 = sets(&base);
    zero1.extend(sets(&[
        "workload.software=fsdp-2024",
        "workload.data_parallel.zero_stage=1",
    ]));
    let mut fsdp = sets(&base);
    fsdp.push("workload.software=fsdp-2024".into());
    let (z1, z3) = (
        report("dgx-a100", "llama3-8b", &zero1),
        report("dgx-a100", "llama3-8b", &fsdp),
    );
    // ZeRO-3 shards the weights too: less memory per GPU than ZeRO-1
    assert!(peak(&z3) < peak(&z1), "{} vs {}", peak(&z3), peak(&z1));
}

#[test]
fn an_unknown_profile_is_refused_naming_the_profiles() {
    let out = expect_input_error(
        &[],
        &["run", "--no-output", "--set", "workload.software=megatron-core-2025"],
    );
    insta::assert_snapshot!(out);
}

/// The timeline names ZeRO-3's weight gathers as data-parallel all-gathers (they run over the
/// data-parallel group inside the forward and backward passes), not tensor-parallel ones.
#[test]
fn zero3_weight_gathers_are_labelled_data_parallel() {
    let timeline = crate::common::timeline_of(&[
        "--set",
        "workload.model.layers=2",
        "--set",
        "workload.parallel.tensor=1",
        "--set",
        "workload.parallel.pipeline=1",
        "--set",
        "workload.parallel.data=8",
        "--set",
        "workload.batch.global=8",
        "--set",
        "workload.data_parallel.zero_stage=3",
        "--set",
        "hardware.nodes=1",
    ]);
    assert!(
        timeline.contains("\"dp all-gather · forward mb0"),
        "no data-parallel gather span"
    );
    assert!(
        !timeline.contains("tp all-gather"),
        "a gather labelled tensor-parallel at tensor 1"
    );
}
