//! ASTRA-sim's analytical, congestion-unaware network (`network.model: astra`), to compare Chakra
//! traces with ASTRA-sim on the machine it was given. It bypasses clustersim's own collective
//! model on purpose.
//!
//! - A message between two NPUs crosses the lowest dimension in which their addresses differ:
//!   `hops x latency + bytes / bandwidth` (a switch is 2 hops, a ring or direct link 1).
//! - A collective runs as one ring over its ranks in the order given (ASTRA-sim does this for
//!   every group smaller than the world; world groups of a multi-dimensional topology would run
//!   per-dimension phases there, which this does not model). Its size is cut into `splits` chunks,
//!   `active_chunks` of them in flight at once (so `ceil(splits / active_chunks)` rounds); a chunk
//!   takes `steps x (slowest ring edge's message time + endpoint_delay)`, with ASTRA-sim's ring
//!   steps and messages for a per-rank size S and chunk c = S / splits over n ranks: all-reduce
//!   2(n-1) steps of c/n; all-gather (S the per-rank input) n-1 steps of c; reduce-scatter n-1
//!   steps of c/n; all-to-all n(n-1)/2 steps of c/n; broadcast n-1 steps of c.
//! - All-reduce and reduce-scatter add, per round, the reduction's pass through local memory:
//!   reading two operands and writing one for the (n-1)/n of the chunk that is reduced,
//!   `3 (n-1)/n c / local_memory_bandwidth`. (Fitted in form, not in value: with ASTRA-sim's own
//!   `local-mem-bw` it gives the 1.4-1.8 us its 1 MiB reductions take above the ring formula.)
//! - Sends cost one message; storage is free.

use super::{ClosedForm, Communication};
use crate::config::astra::AstraSpec;
use crate::ops::CollectiveOp;

/// The model.
#[derive(Clone, Debug)]
pub struct AstraNetwork {
    spec: AstraSpec,
}

impl AstraNetwork {
    /// The model for `network.astra`.
    pub fn new(spec: &AstraSpec) -> Self {
        AstraNetwork { spec: spec.clone() }
    }

    /// Seconds for one message of `bytes` from `src` to `dst`.
    fn message(&self, src: u32, dst: u32, bytes: f64) -> f64 {
        let (mut a, mut b) = (src, dst);
        for d in &self.spec.dims {
            if a % d.npus != b % d.npus {
                return d.kind.hops() as f64 * d.latency.as_secs_f64() + bytes / d.bandwidth.bytes_per_s();
            }
            a /= d.npus;
            b /= d.npus;
        }
        0.0 // the same NPU
    }

    /// Seconds for a collective over `ranks` of `bytes` (nccl-tests convention).
    pub fn collective_seconds(&self, op: CollectiveOp, ranks: &[u32], bytes: u64) -> f64 {
        let n = ranks.len();
        if n < 2 {
            return 0.0;
        }
        let nf = n as f64;
        // back to ASTRA-sim's per-rank size: an all-gather's input shard
        let size = if op == CollectiveOp::AllGather {
            bytes as f64 / nf
        } else {
            bytes as f64
        };
        let chunk = size / self.spec.splits as f64;
        let (steps, msg) = match op {
            CollectiveOp::AllReduce => (2 * (n - 1), chunk / nf),
            CollectiveOp::AllGather | CollectiveOp::Broadcast => (n - 1, chunk),
            CollectiveOp::ReduceScatter => (n - 1, chunk / nf),
            CollectiveOp::AllToAll => (n * (n - 1) / 2, chunk / nf),
        };
        let slowest = (0..n)
            .map(|i| self.message(ranks[i], ranks[(i + 1) % n], msg))
            .fold(0.0, f64::max);
        let mut round = steps as f64 * (slowest + self.spec.endpoint_delay.as_secs_f64());
        if matches!(op, CollectiveOp::AllReduce | CollectiveOp::ReduceScatter) {
            if let Some(bw) = self.spec.local_memory_bandwidth {
                round += 3.0 * (nf - 1.0) / nf * chunk / bw.bytes_per_s();
            }
        }
        let rounds = self.spec.splits.div_ceil(self.spec.active_chunks);
        rounds as f64 * round
    }

    /// Seconds for a communication.
    pub fn seconds(&self, comm: &Communication<'_>) -> f64 {
        match *comm {
            Communication::Collective { op, ranks, bytes } => self.collective_seconds(op, ranks, bytes),
            Communication::Transfer { src, dst, bytes } => self.message(src, dst, bytes as f64),
            Communication::Storage { .. } => 0.0,
        }
    }
}

impl ClosedForm for AstraNetwork {
    fn model_name(&self) -> &'static str {
        "astra"
    }
    fn comm_seconds(&self, comm: &Communication<'_>) -> f64 {
        self.seconds(comm)
    }
}
