//! Bad input: a clear message naming the file, the YAML path and the value; exit code 2; no panic.
//! Each case is a snapshot of stderr and the exit code.

use super::common::expect_input_error;

/// Runs `clustersim run ARGS` in a folder holding `files`, returns "exit N\n<stderr>".
fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    expect_input_error(files, &[&["run", "--no-output"][..], args].concat())
}

/// `fails` for the default workload run interleaved with 2 chunks per stage, and `set`.
fn fails_interleaved(set: &str) -> String {
    fails(
        &[],
        &[
            "--set",
            "workload.schedule=interleaved",
            "--set",
            "workload.parallel.interleave=2",
            "--set",
            set,
        ],
    )
}

const HW: &str = include_str!("../../hardware/dgx-a100.yaml");
const WL: &str = include_str!("../../workloads/gpt-5.9b.yaml");

#[test]
fn malformed_yaml() {
    insta::assert_snapshot!(fails(
        &[("bad.yaml", "name: x\nmodel: { layers: 4, hidden: [1, 2\n")],
        &["--workload", "bad.yaml"]
    ));
}

#[test]
fn unknown_key_with_suggestion() {
    let wl = WL.replace("hidden: 3840", "hiden: 3840");
    insta::assert_snapshot!(fails(&[("w.yaml", &wl)], &["--workload", "w.yaml"]));
}

#[test]
fn zero_bandwidth() {
    let hw = HW.replace("bandwidth: 300 GB/s", "bandwidth: 0 GB/s");
    insta::assert_snapshot!(fails(&[("hw.yaml", &hw)], &["--hardware", "hw.yaml"]));
}

#[test]
fn negative_bandwidth() {
    let hw = HW.replace("bandwidth: 200 Gb/s", "bandwidth: -200 Gb/s");
    insta::assert_snapshot!(fails(&[("hw.yaml", &hw)], &["--hardware", "hw.yaml"]));
}

#[test]
fn unparseable_unit() {
    let hw = HW.replace("bandwidth: 200 Gb/s", "bandwidth: 200 Gbps/s");
    insta::assert_snapshot!(fails(&[("hw.yaml", &hw)], &["--hardware", "hw.yaml"]));
}

#[test]
fn split_does_not_match_gpu_count() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.gpus=32"]));
}

#[test]
fn heads_not_divisible_by_tensor() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.parallel.tensor=3"]));
}

#[test]
fn layers_not_divisible_by_pipeline_times_interleave() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.parallel.pipeline=5"]));
}

#[test]
fn layers_per_stage_needs_an_entry_per_model_chunk() {
    // interleave 2 over pipeline 8: 16 model chunks, so 8 entries (one per stage) are refused
    insta::assert_snapshot!(fails_interleaved(
        "workload.parallel.layers_per_stage=[4, 4, 4, 4, 4, 4, 4, 4]"
    ));
}

#[test]
fn batch_not_divisible_by_micro_times_data() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.batch.global=500"]));
}

#[test]
fn interleaved_needs_microbatches_multiple_of_pipeline() {
    // B = 96, b = 1, d = 8: m = 12 microbatches, not a multiple of p = 8
    insta::assert_snapshot!(fails_interleaved("workload.batch.global=96"));
}

#[test]
fn more_gpus_than_the_hardware_has() {
    insta::assert_snapshot!(fails(&[], &["--set", "hardware.nodes=4"]));
}

#[test]
fn missing_file() {
    insta::assert_snapshot!(fails(&[], &["--workload", "no-such-workload.yaml"]));
}

#[test]
fn unknown_set_key() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.model.hiden=4096"]));
}

#[test]
fn set_key_without_document_prefix() {
    insta::assert_snapshot!(fails(&[], &["--set", "nodes=16"]));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.model.layers=many"]));
}

/// A negative number on the command line is read as the option's value (not as an unknown flag),
/// so the error names the option.
#[test]
fn negative_command_line_numbers_name_their_option() {
    for (args, option) in [
        (&["collective", "--gpus", "-8", "--no-output"][..], "--gpus"),
        (&["plan", "--gpus", "-16", "--no-output"][..], "--gpus"),
        (&["run", "--seed", "-1", "--no-output"][..], "--seed"),
    ] {
        let e = expect_input_error(&[], args);
        assert!(e.contains(&format!("for '{option} <")) && e.contains("'-"), "{e}");
    }
}

/// A `--set` that creates a section the machine lacks is named when the section is incomplete.
#[test]
fn a_set_that_creates_an_incomplete_section_is_named() {
    insta::assert_snapshot!(fails(
        &[],
        &[
            "--hardware",
            "ideal",
            "--set",
            "hardware.network.nccl.sm_contention=false"
        ]
    ));
}

/// A negative count: the field, the value and the accepted range in words, not Rust's `u64`.
#[test]
fn negative_count() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.batch.global=-512"]));
}

#[test]
fn unknown_schedule() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.schedule=zigzag"]));
}

/// `clustersim run` of the Mixtral preset on DGX-H100 with one override.
fn moe_fails(set: &str) -> String {
    preset_fails("mixtral-8x7b", &[set])
}

/// `clustersim run` of workload preset `workload` on DGX-H100 with overrides.
fn preset_fails(workload: &str, sets: &[&str]) -> String {
    let mut args = vec!["--workload", workload, "--hardware", "dgx-h100"];
    for s in sets {
        args.extend(["--set", s]);
    }
    fails(&[], &args)
}

#[test]
fn experts_not_divisible_by_expert_parallel_size() {
    insta::assert_snapshot!(moe_fails("workload.parallel.expert=3"));
}

#[test]
fn top_k_above_the_experts() {
    insta::assert_snapshot!(moe_fails("workload.model.moe.top_k=9"));
}

#[test]
fn top_k_zero() {
    insta::assert_snapshot!(moe_fails("workload.model.moe.top_k=0"));
}

#[test]
fn expert_parallel_size_not_dividing_data() {
    // 8 experts over 8 ranks, but data 12 cannot be cut into expert-parallel groups of 8
    insta::assert_snapshot!(moe_fails("workload.parallel.data=12"));
}

#[test]
fn expert_tensor_neither_one_nor_tensor() {
    // Mixtral's preset runs tensor 1: the experts are whole (1) or split as the dense layers (1)
    insta::assert_snapshot!(moe_fails("workload.parallel.expert_tensor=2"));
}

#[test]
fn whole_experts_expert_size_not_dividing_tensor_x_data() {
    // t 2 d 6 (48 GPUs at p 4), whole experts: the 12 ranks of a stage cannot be cut into
    // expert-parallel groups of 8
    let sets = [
        "workload.parallel.tensor=2",
        "workload.parallel.sequence_parallel=true",
        "workload.parallel.data=6",
        "workload.batch.global=240",
        "workload.parallel.expert_tensor=1",
    ];
    insta::assert_snapshot!(preset_fails("mixtral-8x7b", &sets));
}

#[test]
fn whole_experts_without_experts() {
    let sets = ["workload.parallel.tensor=2", "workload.parallel.expert_tensor=1"];
    insta::assert_snapshot!(llama_fails(&sets));
}

#[test]
fn capacity_factor_not_positive() {
    insta::assert_snapshot!(moe_fails("workload.model.moe.capacity_factor=0"));
}

/// `clustersim run` of the Llama 3 8B preset on DGX-H100 with overrides.
fn llama_fails(sets: &[&str]) -> String {
    preset_fails("llama3-8b", sets)
}

#[test]
fn context_size_not_cutting_the_sequence_into_two_chunks_per_rank() {
    // 8192 tokens cannot be cut into 2 x 3 = 6 equal chunks
    insta::assert_snapshot!(llama_fails(&["workload.parallel.context=3"]));
}

#[test]
fn context_parallelism_with_the_2021_attention_kernels() {
    insta::assert_snapshot!(fails(&[], &["--set", "workload.parallel.context=2"]));
}

#[test]
fn expert_parallel_size_not_dividing_data_x_context() {
    // Megatron-Core carves the expert-parallel groups of 8 out of data x context = 3 x 2 = 6 ranks
    // (t1 c2 p4 d3: 24 GPUs): they cannot be cut
    insta::assert_snapshot!(preset_fails(
        "mixtral-8x7b",
        &["workload.parallel.context=2", "workload.parallel.data=3"]
    ));
}

#[test]
fn context_size_zero() {
    insta::assert_snapshot!(llama_fails(&["workload.parallel.context=0"]));
}

#[test]
fn context_parallel_split_larger_than_the_machine() {
    // t2 x c4 x p1 x d32 = 256 GPUs on 8 DGX-H100 nodes (64 GPUs)
    insta::assert_snapshot!(llama_fails(&["workload.parallel.context=4", "hardware.nodes=8"]));
}

/// `clustersim run` of the DeepSeek-V3 preset on DGX-H100 with overrides.
fn deepseek_fails(sets: &[&str]) -> String {
    preset_fails("deepseek-v3", sets)
}

#[test]
fn mla_latent_of_zero_width() {
    insta::assert_snapshot!(deepseek_fails(&["workload.model.mla.kv_lora_rank=0"]));
}

#[test]
fn mla_head_dim_of_zero_width() {
    insta::assert_snapshot!(deepseek_fails(&["workload.model.mla.v_head_dim=0"]));
}

#[test]
fn mla_with_fewer_key_value_heads() {
    // grouped-query attention does not apply: MLA gives every head its own keys and values
    insta::assert_snapshot!(deepseek_fails(&["workload.model.kv_heads=8"]));
}

#[test]
fn mla_with_a_head_dimension_of_its_own() {
    // MLA's head widths are its own (qk_nope_head_dim, qk_rope_head_dim, v_head_dim)
    insta::assert_snapshot!(deepseek_fails(&["workload.model.head_dim=128"]));
}

#[test]
fn head_dimension_of_zero() {
    insta::assert_snapshot!(preset_fails("llama3-8b", &["workload.model.head_dim=0"]));
}

#[test]
fn mla_with_biases() {
    insta::assert_snapshot!(deepseek_fails(&["workload.model.bias=true"]));
}

#[test]
fn mla_heads_not_divisible_by_tensor() {
    // 128 heads over 256 tensor ranks (which divide the experts' width 2048; sequence parallelism
    // on, as experts with tensor parallelism need)
    insta::assert_snapshot!(deepseek_fails(&[
        "workload.parallel.tensor=256",
        "workload.parallel.sequence_parallel=true"
    ]));
}

#[test]
fn first_dense_layers_leaving_no_moe_layer() {
    insta::assert_snapshot!(deepseek_fails(&["workload.model.moe.first_dense_layers=61"]));
}

#[test]
fn expert_all_to_all_overlap_without_experts() {
    insta::assert_snapshot!(preset_fails("gpt-5.9b", &["workload.ep_comm_overlap=true"]));
}

#[test]
fn expert_all_to_all_overlap_with_a_plain_pipeline() {
    // Megatron-Core combines a forward with a backward only with interleaving or without a pipeline
    insta::assert_snapshot!(preset_fails(
        "qwen3-30b-a3b",
        &[
            "workload.ep_comm_overlap=true",
            "workload.parallel.pipeline=2",
            "workload.parallel.data=8",
            "workload.parallel.expert=8"
        ]
    ));
}

#[test]
fn expert_all_to_all_overlap_with_full_recompute() {
    insta::assert_snapshot!(preset_fails(
        "qwen3-30b-a3b",
        &["workload.ep_comm_overlap=true", "workload.recompute=full"]
    ));
}

#[test]
fn multi_token_prediction_without_a_vocabulary() {
    insta::assert_snapshot!(deepseek_fails(&[
        "workload.model.mtp_layers=1",
        "workload.model.vocab=0"
    ]));
}

#[test]
fn an_empty_model_chunk_in_the_middle() {
    insta::assert_snapshot!(preset_fails(
        "gpt-5.9b",
        &["workload.parallel.layers_per_stage=[8, 0, 8, 16, 0, 0, 0, 0]"]
    ));
}

/// `2.10` unquoted is YAML's number 2.1: the message says to quote the version.
#[test]
fn nccl_version_written_as_a_number() {
    insta::assert_snapshot!(fails(&[], &["--set", "hardware.network.nccl.version=2.10"]));
}

/// `2.8` unquoted is a number, which names no NCCL release; the error says to quote it.
#[test]
fn nccl_version_2_8_written_as_a_number() {
    insta::assert_snapshot!(fails(&[], &["--set", "hardware.network.nccl.version=2.8"]));
}
