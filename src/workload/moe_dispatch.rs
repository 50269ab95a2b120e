//! The token rows of a mixture-of-experts layer's dispatch on one rank, as Megatron-Core's
//! `MoEAlltoAllTokenDispatcher` moves them (notation of [`super::moe`]).
//!
//! Tokens per rank T = b s, or b s / t with tensor parallelism (s being the s / c tokens a rank
//! holds under context parallelism), which Megatron-Core runs with sequence parallelism only: each
//! tensor rank routes and dispatches its own sequence shard. Each rank dispatches R = T k token
//! rows (dropless), or with capacity factor c, E ceil(T k c / E) rows (every expert's slot padded
//! to its capacity), with an all-to-all over its expert-parallel group that moves R h 16-bit
//! elements per rank (nccl-tests convention: the per-rank buffer, 1/e of it to each peer).
//! After it the dispatcher all-gathers the received rows over the expert-tensor group (and
//! reduce-scatters the experts' output before the combine): with the experts split over the
//! tensor ranks (u = t) each tensor rank computes its slice of the experts for the whole group's
//! rows, t N_j; with whole experts (u = 1) the group is the rank alone and it computes its N_j rows.
//!
//! Load imbalance: the router prefers some experts. Expert i gets the share p_i = w_i / sum w of
//! the routed tokens, with log w_i drawn from a normal distribution of standard deviation
//! `imbalance` (seeded per layer by `moe.seed`); position j of the expert-parallel group, holding
//! experts j L .. j L + L - 1, receives N_j = e T k (p_jL + ... + p_jL+L-1) rows (dropless; with a
//! capacity its padded buffers stay R, the excess is dropped). The all-to-all is priced as a
//! uniform one whose per-rank buffer is the hottest position's N_j: what that rank's links carry,
//! and what the collective waits for.

use super::transformer::LayerShape;
use crate::config::MoeSpec;
use rand::{RngExt, SeedableRng};

/// Each routed expert's share of the tokens in global layer `layer` (summing to 1): equal shares
/// without imbalance, a seeded log-normal skew with it.
pub fn expert_shares(moe: &MoeSpec, layer: u32) -> Vec<f64> {
    let experts = moe.experts as usize;
    if moe.imbalance == 0.0 {
        return vec![1.0 / experts as f64; experts];
    }
    let seed = moe.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ layer as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = (0..experts)
        .map(|_| {
            // Box-Muller: one standard normal from two uniforms
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (moe.imbalance * z).exp()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// The tensor ranks a layer's sequence is split over: t with sequence parallelism, else 1.
pub fn sequence_shards(shape: &LayerShape) -> u64 {
    if shape.sp {
        shape.t
    } else {
        1
    }
}

/// One layer's token rows on one rank for one microbatch.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// Tokens each rank routes, T (its sequence shard under sequence parallelism).
    pub tokens: u64,
    /// Ranks whose received rows each rank's experts process: the expert-tensor size u with
    /// sequence parallelism, else 1.
    pub gather: u64,
    /// Token rows each rank dispatches, R.
    pub dispatched: u64,
    /// Token rows each position of the expert-parallel group receives, N_j.
    pub received: Vec<u64>,
}

impl Dispatch {
    /// The rows of global layer `layer` with expert-parallel size `ep` and expert-tensor size
    /// `expert_tensor` (t or 1).
    pub fn new(shape: &LayerShape, moe: &MoeSpec, layer: u32, ep: u32, expert_tensor: u32) -> Self {
        let tokens = shape.b * shape.s / sequence_shards(shape);
        let gather = if shape.sp { expert_tensor as u64 } else { 1 };
        let (experts, ep) = (moe.experts, ep as u64);
        let (dispatched, received) = match moe.capacity_factor {
            Some(c) => {
                let capacity = ((tokens * moe.top_k) as f64 * c / experts as f64).ceil() as u64;
                (experts * capacity, vec![experts * capacity; ep as usize])
            }
            None => {
                let routed = tokens * moe.top_k;
                let shares = expert_shares(moe, layer);
                let per = (experts / ep) as usize;
                let received = if moe.imbalance == 0.0 {
                    vec![routed; ep as usize]
                } else {
                    shares
                        .chunks(per)
                        .map(|c| (c.iter().sum::<f64>() * (ep * routed) as f64).round() as u64)
                        .collect()
                };
                (routed, received)
            }
        };
        Dispatch {
            tokens,
            gather,
            dispatched,
            received,
        }
    }

    /// Rows of each dispatch or combine all-to-all's per-rank buffer: the hottest position's.
    pub fn all_to_all_rows(&self) -> u64 {
        self.received.iter().copied().max().unwrap_or(0).max(self.dispatched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSpec;

    fn dispatch(moe: &str, t: u32, ep: u32, expert_tensor: u32) -> Dispatch {
        let m: ModelSpec = serde_yaml::from_str(&format!(
            "{{ layers: 4, hidden: 1024, heads: 8, seq_len: 512, vocab: 0, mlp: swiglu, moe: {moe} }}"
        ))
        .unwrap();
        let shape = LayerShape::new(&m, 2, t, true);
        Dispatch::new(&shape, m.moe.as_ref().unwrap(), 0, ep, expert_tensor)
    }

    #[test]
    fn a_skewed_router_is_seeded_and_keeps_every_token() {
        let moe = |s: &str| dispatch(&format!("{{ experts: 8, top_k: 2, imbalance: 1, seed: {s} }}"), 1, 4, 1);
        let (a, b, c) = (moe("5"), moe("5"), moe("6"));
        assert_eq!(a.received, b.received);
        assert_ne!(a.received, c.received);
        // T = b s = 1024 tokens, T k = 2048 rows: the positions share e T k = 4 x 2048 rows (to
        // rounding), and the hottest sets the all-to-all
        let total: u64 = a.received.iter().sum();
        assert!(total.abs_diff(4 * 2048) <= 2, "{total}");
        let hottest = *a.received.iter().max().unwrap();
        assert!(hottest > 2048);
        assert_eq!(a.all_to_all_rows(), hottest);
        let spec: MoeSpec = serde_yaml::from_str("{ experts: 16, top_k: 2, imbalance: 0.5 }").unwrap();
        let shares = expert_shares(&spec, 3);
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn whole_experts_dispatch_the_same_rows_and_gather_none() {
        // t 2 with sequence parallelism: each tensor rank routes T = b s / t = 2 x 512 / 2 = 512
        // tokens and dispatches T k = 1024 rows whatever the experts' split; balanced, each
        // receives as many. Split experts (u = t = 2) then work on the tensor group's 2 x 1024
        // rows, whole ones (u = 1) on the rank's own 1024
        let split = dispatch("{ experts: 8, top_k: 2 }", 2, 4, 2);
        let whole = dispatch("{ experts: 8, top_k: 2 }", 2, 8, 1);
        for d in [&split, &whole] {
            assert_eq!((d.tokens, d.dispatched, d.all_to_all_rows()), (512, 1024, 1024));
        }
        assert_eq!((split.gather, whole.gather), (2, 1));
        assert_eq!((split.received.len(), whole.received.len()), (4, 8));
    }
}
