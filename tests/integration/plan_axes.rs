//! The planner's new axes: context rings and FP8 where they apply and nowhere else, the GPU count
//! t x c x p x d of every candidate, expert sizes that divide both the experts and data x context,
//! and the pruning of context rings that cannot win.

use clustersim::config::{load_run_config, Override, Precision, Source};
use clustersim::studies::plan::space::{prune, Candidate};
use clustersim::studies::plan::{candidates, search};

fn space(hw: &str, wl: &str, gpus: u64) -> Vec<Candidate> {
    let base = load_run_config(&Source::Named(hw.into()), &Source::Named(wl.into()), &[]).unwrap();
    candidates(&base, gpus)
}

fn gpus_of(c: &Candidate) -> u64 {
    c.tensor as u64 * c.context as u64 * c.pipeline as u64 * c.data as u64
}

/// GPT-175B on DGX A100s: 2021 attention (no ring), no experts, no FP8 tensor cores, so the search
/// is the one from before the axes: every candidate has c = 1, e = 1, bf16.
#[test]
fn gpt_175b_on_a100_gets_no_new_axes() {
    let all = space("dgx-a100", "gpt-175b", 1024);
    assert!(all.len() > 1000, "{}", all.len());
    for c in &all {
        assert_eq!(
            (c.context, c.expert, c.precision),
            (1, 1, Precision::Bf16),
            "{}",
            c.label()
        );
        assert_eq!(gpus_of(c), 1024, "{}", c.label());
    }
}

/// Llama 3 70B on DGX H100s: FlashAttention allows rings (sequence 8192 in 2c chunks), H100 has
/// FP8; rings only with microbatch 1 (b sequences on c ranks tie at best with b/2 on c/2).
#[test]
fn llama3_70b_on_h100_gets_context_and_fp8() {
    let all = space("dgx-h100", "llama3-70b", 1024);
    assert!(all.iter().any(|c| c.context > 1));
    assert!(all.iter().any(|c| c.precision == Precision::Fp8));
    assert!(all.iter().any(|c| c.context > 1 && c.precision == Precision::Fp8));
    for c in &all {
        assert_eq!(gpus_of(c), 1024, "{}", c.label());
        assert_eq!(c.expert, 1, "a dense model: {}", c.label());
        if c.context > 1 {
            assert_eq!(8192 % (2 * c.context as u64), 0, "{}", c.label());
            assert_eq!(c.micro, 1, "{}", c.label());
        }
    }
    // the context sizes dividing N / t = 1024 / 8 = 128 GPUs with at least 1024 of the 8192 tokens
    // a rank: 1, 2, 4, 8
    let mut rings: Vec<u32> = all.iter().filter(|c| c.tensor == 8).map(|c| c.context).collect();
    rings.sort_unstable();
    rings.dedup();
    assert_eq!(rings, vec![1, 2, 4, 8]);
}

/// The same model with the 2021 attention kernels: no ring can run on them.
#[test]
fn standard_attention_gets_no_context() {
    let base = load_run_config(
        &Source::Named("dgx-h100".into()),
        &Source::Named("llama3-70b".into()),
        &[Override::parse("workload.attention=standard").unwrap()],
    )
    .unwrap();
    let all = candidates(&base, 1024);
    assert!(all.iter().all(|c| c.context == 1));
    assert!(all.iter().any(|c| c.precision == Precision::Fp8));
}

/// Mixtral 8x7B (8 experts, FlashAttention, sequence 4096) on 64 H100s: rings of c = 2 and 4
/// (4096 in 2c chunks, s / c at least 1024 tokens; c = 8 would leave 512); expert sizes divide the 8
/// experts and d x c, the ranks Megatron-Core carves its expert-parallel groups from; no ZeRO-3,
/// sequence parallelism with t > 1.
#[test]
fn moe_expert_sizes_divide_experts_and_data_x_context() {
    let all = space("dgx-h100", "mixtral-8x7b", 64);
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v.dedup();
        v
    };
    assert_eq!(sorted(all.iter().map(|c| c.expert).collect()), vec![1, 2, 4, 8]);
    assert_eq!(sorted(all.iter().map(|c| c.context).collect()), vec![1, 2, 4]);
    for c in &all {
        assert_eq!(8 % c.expert, 0, "{}", c.label());
        // experts split over t come out of d x c; whole experts (t > 1) out of t x d x c
        match c.expert_tensor {
            0 => assert_eq!((c.data * c.context) % c.expert, 0, "{}", c.label()),
            _ => assert!(
                c.tensor > 1 && (c.tensor * c.data * c.context) % c.expert == 0,
                "{}",
                c.label()
            ),
        }
        assert_eq!(gpus_of(c), 64, "{}", c.label());
        assert_ne!(c.zero_stage, 3, "{}", c.label());
        assert!(c.tensor == 1 || c.sequence_parallel, "{}", c.label());
    }
    // t1 c1 p1 d64: e in {1, 2, 4, 8}; t8 c1 p8 d1: e = 1 only; t8 c2 p4 d1: e in {1, 2}, the
    // experts split over the two context ranks of the one replica
    let at = |t, c, p, whole: bool| {
        sorted(
            all.iter()
                .filter(|x| x.tensor == t && x.context == c && x.pipeline == p && (x.expert_tensor == 1) == whole)
                .map(|x| x.expert)
                .collect(),
        )
    };
    assert_eq!(at(1, 1, 1, false), vec![1, 2, 4, 8]);
    assert_eq!(at(8, 1, 8, false), vec![1]);
    assert_eq!(at(8, 2, 4, false), vec![1, 2]);
    // whole experts fold the tensor ranks in: t8 p8 d1 can spread the 8 experts over its 8
    // tensor ranks, t8 c2 p4 d1 over 16 ranks (sizes dividing the 8 experts: 2, 4, 8); t = 1 has none
    assert_eq!(at(8, 1, 8, true), vec![2, 4, 8]);
    assert_eq!(at(8, 2, 4, true), vec![2, 4, 8]);
    assert_eq!(at(1, 1, 1, true), Vec::<u32>::new());
    // the all-to-alls overlapped only where Megatron-Core allows it: experts, interleaving or no
    // pipeline, no full recompute
    for c in all.iter().filter(|c| c.ep_overlap) {
        assert!(c.expert > 1 && (c.interleave > 1 || c.pipeline == 1), "{}", c.label());
        assert_ne!(c.recompute, clustersim::config::Recompute::Full, "{}", c.label());
    }
    assert!(all.iter().any(|c| c.ep_overlap));
}

/// Layers that model chunks do not divide are split as Megatron-Core's
/// `account_for_embedding_in_pipeline_split` / `..._loss_...` split them: Qwen3-235B-A22B's 94 layers
/// over 8 x 4 chunks, (94 + 2) / 32 = 3 each, 2 on the first and the last; 96 layers go evenly; 95
/// cannot go either way (97 is prime)
#[test]
fn uneven_layers_count_the_embedding_and_the_loss() {
    use clustersim::studies::plan::space::layer_split;
    let mut expected = vec![3u32; 32];
    (expected[0], expected[31]) = (2, 2);
    assert_eq!(layer_split(94, 32), Some(Some(expected)));
    assert_eq!(layer_split(96, 32), Some(None));
    assert_eq!(layer_split(95, 32), None);
    // a candidate so split names the list and the flag in its overrides and label
    let all = space("dgx-h100", "qwen3-235b-a22b", 256);
    let c = all
        .iter()
        .find(|c| c.pipeline == 8 && c.interleave == 4 && c.embedding_split)
        .expect("an embedding-and-loss split");
    assert!(c.label().contains("emb+loss split"), "{}", c.label());
    assert!(c
        .overrides()
        .iter()
        .any(|o| o.starts_with("workload.parallel.layers_per_stage=[2,3,")));
    // even splits clear a preset's own list
    let even = all.iter().find(|c| c.pipeline == 2 && c.interleave == 1).unwrap();
    assert!(even
        .overrides()
        .contains(&"workload.parallel.layers_per_stage=~".to_string()));
}

fn ring(c: u32, p: u32, d: u32, v: u32) -> Candidate {
    Candidate {
        tensor: 8,
        context: c,
        pipeline: p,
        data: d,
        expert: 1,
        expert_tensor: 0,
        ep_overlap: false,
        embedding_split: false,
        micro: 1,
        interleave: v,
        recompute: clustersim::config::Recompute::None,
        sequence_parallel: true,
        zero_stage: 1,
        precision: Precision::Bf16,
        layers_per_stage: None,
    }
}

/// A ring is simulated when its half ring does not fit, or when the half ring's ideal bubble
/// (p - 1) / (v m) is at least 5%. Batch 512 on t8 p4: c = 1 has d = 32, m = 16, bubble
/// 3 / 16 = 18.8% (c = 2 kept); c = 2 has m = 32, 9.4% (c = 4 kept); c = 4 has m = 64, 4.7%
/// (c = 8 pruned). Interleaved v = 4: c = 1's bubble is 3 / 64 = 4.7% (c = 2 pruned). Without a
/// pipeline (p = 1) a ring only helps memory: c = 2 pruned while c = 1 fits.
#[test]
fn rings_are_pruned_when_they_cannot_win() {
    let fitting = [
        ring(1, 4, 32, 1),
        ring(2, 4, 16, 1),
        ring(4, 4, 8, 1),
        ring(8, 4, 4, 1),
        ring(1, 4, 32, 4),
        ring(2, 4, 16, 4),
        ring(1, 1, 128, 1),
        ring(2, 1, 64, 1),
        ring(8, 1, 16, 1), // its half ring (c = 4) does not fit
    ];
    let refs: Vec<&Candidate> = fitting.iter().collect();
    let keep = prune(&refs, 512);
    assert_eq!(keep, vec![true, true, true, false, true, false, true, false, true]);
}

/// The search on Llama 3 70B prunes some rings and keeps others, and GPT-175B's prunes none.
#[test]
fn search_prunes_rings_only_where_there_are_rings() {
    let found = search(
        &Source::Named("dgx-h100".into()),
        &Source::Named("llama3-70b".into()),
        &[],
        1024,
    )
    .unwrap();
    assert!(found.pruned > 0);
    assert!(found.fitting.iter().any(|(c, _)| c.context > 1));
    for (c, cfg) in &found.fitting {
        let p = &cfg.workload.parallel;
        assert_eq!(
            (p.tensor, p.context, p.pipeline, p.data, p.expert),
            (c.tensor, c.context, c.pipeline, c.data, c.expert)
        );
        assert_eq!(cfg.workload.precision, c.precision);
    }
    let gpt = search(
        &Source::Named("dgx-a100".into()),
        &Source::Named("gpt-175b".into()),
        &[],
        1024,
    )
    .unwrap();
    assert_eq!((gpt.valid, gpt.out_of_memory, gpt.pruned), (1998, 1268, 0));
}
