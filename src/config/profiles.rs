//! Software profiles: a framework release's defaults for the individual switches of a workload.
//!
//! `software: megatron-core-2024` stands for the switches that framework ran with. Written in a
//! workload file, it fills in the switches the file does not set (the file's own win). Given with
//! `--set workload.software=...`, it replaces the file's switches too (so a preset written for 2021
//! runs as the profile says), and only other `--set` switches win over it. Without `software`
//! nothing is filled in and every switch keeps its own default (the 2021 software, which is also
//! `megatron-2021`).
//!
//! The switches: the attention kernels (`attention`), the tensor-parallel communication overlapped
//! with GEMMs (`tp_comm_overlap`) or, in backward, with the weight gradients (`tp_async_allreduce`), sequence parallelism (`parallel.sequence_parallel`; with tensor
//! parallelism 1 it changes nothing), and the data-parallel side (`data_parallel.*`: overlapped
//! gradient reduce, gradient dtype, ZeRO stage, fused gradient accumulation, contiguous buffers,
//! overlapped parameter gather).

use super::Document;
use crate::error::Result;

/// A named profile: (name, what it stands for, its (YAML path, value) defaults).
type Profile = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The profiles, by name.
pub const PROFILES: &[Profile] = &[
    (
        "megatron-2021",
        "Megatron-LM v2.5 as the SC'21 paper ran it: separate attention kernels storing the s x s scores, local DDP with fp16 gradients reduced after the last backward, no sequence parallelism, no distributed optimizer",
        &[
            ("attention", "standard"),
            ("tp_comm_overlap", "false"),
            ("tp_async_allreduce", "false"),
            ("parallel.sequence_parallel", "false"),
            ("data_parallel.overlap", "false"),
            ("data_parallel.grad_dtype", "fp16"),
            ("data_parallel.zero_stage", "0"),
            ("data_parallel.gradient_accumulation_fusion", "false"),
            ("data_parallel.contiguous_buffer", "false"),
            ("data_parallel.overlap_param_gather", "false"),
        ],
    ),
    (
        "megatron-core-2024",
        "Megatron-Core r0.8 as its published H100 table ran: cuDNN fused attention through Transformer Engine, sequence parallelism with its collectives overlapped (--tp-comm-overlap), the distributed optimizer with fp32 gradients in contiguous buffers, fused accumulation, gradient reduce and parameter gather overlapped",
        &[
            ("attention", "cudnn"),
            ("tp_comm_overlap", "true"),
            ("tp_async_allreduce", "true"),
            ("parallel.sequence_parallel", "true"),
            ("data_parallel.overlap", "true"),
            ("data_parallel.grad_dtype", "fp32"),
            ("data_parallel.zero_stage", "1"),
            ("data_parallel.gradient_accumulation_fusion", "true"),
            ("data_parallel.contiguous_buffer", "true"),
            ("data_parallel.overlap_param_gather", "true"),
        ],
    ),
    (
        "fsdp-2024",
        "PyTorch FSDP2 as torchtitan ran it in 2024: FlashAttention, every block's weights gathered before use and its gradients reduce-scattered in fp32, overlapped with compute",
        &[
            ("attention", "flash"),
            ("tp_comm_overlap", "false"),
            ("tp_async_allreduce", "false"),
            ("parallel.sequence_parallel", "false"),
            ("data_parallel.overlap", "true"),
            ("data_parallel.grad_dtype", "fp32"),
            ("data_parallel.zero_stage", "3"),
            ("data_parallel.gradient_accumulation_fusion", "false"),
            ("data_parallel.contiguous_buffer", "false"),
            ("data_parallel.overlap_param_gather", "false"),
        ],
    ),
];

/// Fills in the switches of the document's `software` profile that it does not set itself; an
/// unknown profile is an error naming the value and the profiles there are.
pub fn expand(doc: &mut Document) -> Result<()> {
    let Some(given) = doc.value.get("software").cloned() else {
        return Ok(());
    };
    let names: Vec<&str> = PROFILES.iter().map(|p| p.0).collect();
    let profile = given.as_str().and_then(|name| PROFILES.iter().find(|p| p.0 == name));
    let Some((_, _, defaults)) = profile else {
        return Err(doc.field_error(
            "software",
            format!("unknown software profile; profiles are: {}", names.join(", ")),
        ));
    };
    let over_the_file = doc.is_overridden("software");
    for (path, value) in defaults.iter() {
        let replace = over_the_file && !doc.is_overridden(path);
        if replace || doc.value_at(path).is_none() {
            doc.set_default(
                path,
                serde_yaml::from_str(value).expect("profile values are YAML scalars"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_sets_the_same_switches() {
        let paths = |profile: &Profile| profile.2.iter().map(|(p, _)| *p).collect::<Vec<_>>();
        for profile in &PROFILES[1..] {
            assert_eq!(paths(profile), paths(&PROFILES[0]), "{}", profile.0);
        }
    }

    #[test]
    fn the_document_wins_over_the_profile() {
        let mut doc = Document::parse(
            "w.yaml",
            "software: megatron-core-2024\ndata_parallel: { zero_stage: 0 }\n",
        )
        .unwrap();
        expand(&mut doc).unwrap();
        assert_eq!(doc.value_at("data_parallel.zero_stage").as_deref(), Some("0"));
        assert_eq!(doc.value_at("data_parallel.grad_dtype").as_deref(), Some("\"fp32\""));
        assert_eq!(doc.value_at("attention").as_deref(), Some("\"cudnn\""));
        // given with --set, the profile replaces the file's switches; other --set switches win
        let mut doc = Document::parse("w.yaml", "data_parallel: { zero_stage: 0, overlap: false }\n").unwrap();
        for set in [
            "workload.software=megatron-core-2024",
            "workload.data_parallel.overlap=false",
        ] {
            doc.apply(&super::super::Override::parse(set).unwrap()).unwrap();
        }
        expand(&mut doc).unwrap();
        assert_eq!(doc.value_at("data_parallel.zero_stage").as_deref(), Some("1"));
        assert_eq!(doc.value_at("data_parallel.overlap").as_deref(), Some("false"));
    }
}
