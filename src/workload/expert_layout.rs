//! Where each rank sits in the expert layers' grid: Megatron-Core's "MoE parallel folding"
//! (core_r0.10.0 and later, `megatron/core/parallel_state.py`): the expert layers' ranks are laid
//! out by a second RankGenerator, expert-tensor x expert x expert-data x pipeline (order
//! tp-ep-dp-pp, context 1), over the same ranks as the dense layers' tensor x context x data x
//! pipeline.
//!
//! Within one stage the dense layout numbers its t x d positions (d counting data x context) as
//! `tensor + t x data` ([`Layout`]). With expert-tensor size et (t or 1) the expert layout reads
//! the same numbers as `x + et x f`: expert-tensor index x = tensor mod et, and *expert position*
//! f = tensor / et + (t / et) x data, of which a stage has (t / et) d. The expert-parallel groups
//! are e consecutive expert positions (f = e q .. e q + e - 1, same x), and the positions f, f + e,
//! f + 2e, ... hold the same experts: the expert-data-parallel group of (t / et) d / e ranks, over
//! which their gradients are reduced and (ZeRO-1) their optimizer state sharded. With et = t
//! (the default) the expert positions are the data positions; with et = 1 they are every rank of
//! the stage, so an expert-parallel group spans tensor peers.

use super::layout::{Layout, RankCoord};
use crate::config::WorkloadSpec;

/// The expert layers' rank layout of a workload.
#[derive(Clone, Copy, Debug)]
pub struct ExpertLayout {
    /// The dense layout the expert one folds.
    pub lay: Layout,
    /// Expert-parallel size e.
    pub e: u32,
    /// Expert-tensor size: t, or 1.
    pub et: u32,
}

impl ExpertLayout {
    /// The expert layout of a workload (expert size 1 and expert-tensor size t without experts).
    pub fn of(w: &WorkloadSpec) -> Self {
        ExpertLayout {
            lay: Layout::of(w),
            e: w.parallel.expert.max(1),
            et: w.parallel.expert_tensor_size(),
        }
    }

    /// Tensor ranks folded into the expert positions: t / et.
    pub fn fold(&self) -> u32 {
        self.lay.t / self.et
    }

    /// Expert positions of a stage per expert-tensor index: (t / et) d.
    pub fn positions(&self) -> u32 {
        self.fold() * self.lay.d
    }

    /// (expert-tensor index, expert position) of a coordinate.
    pub fn place(&self, c: RankCoord) -> (u32, u32) {
        (c.tensor % self.et, c.tensor / self.et + self.fold() * c.data)
    }

    /// The coordinate at expert-tensor index `x` and expert position `f` of stage `stage`.
    pub fn coord(&self, stage: u32, x: u32, f: u32) -> RankCoord {
        RankCoord {
            tensor: x + self.et * (f % self.fold()),
            data: f / self.fold(),
            stage,
        }
    }

    /// A rank's index in its expert-parallel group, which decides the experts it holds.
    pub fn index_in_group(&self, rank: u32) -> u32 {
        self.place(self.lay.coord(rank)).1 % self.e
    }

    /// Ranks holding the same experts: (t / et) d / e.
    pub fn expert_data_size(&self) -> u32 {
        self.positions() / self.e
    }

    /// Coordinates of expert-parallel group `q` of expert-tensor index `x` on `stage`.
    pub fn expert_group(&self, stage: u32, x: u32, q: u32) -> Vec<RankCoord> {
        (q * self.e..(q + 1) * self.e)
            .map(|f| self.coord(stage, x, f))
            .collect()
    }

    /// Coordinates of the expert-data-parallel group of the ranks at index `r` of their
    /// expert-parallel group, expert-tensor index `x`, on `stage`.
    pub fn expert_data_group(&self, stage: u32, x: u32, r: u32) -> Vec<RankCoord> {
        (0..self.expert_data_size())
            .map(|q| self.coord(stage, x, q * self.e + r))
            .collect()
    }

    /// The blocks a representative run copies its communications along
    /// ([`crate::workload::replication::Replication`]): (data positions per expert block, tensor
    /// ranks per tensor block). With et = t: (e, t). With et = 1 an expert-parallel group that
    /// holds whole tensor groups (t divides e) is e / t data positions of all tensor ranks: (e / t,
    /// t); one inside a tensor group (e divides t) is e tensor ranks of one data position: (1, e).
    /// None where the groups straddle tensor groups (neither divides the other): the ranks of an
    /// expert-parallel group then sit differently in their tensor groups, and no shift of the
    /// grid takes one rank's program to every other's.
    pub fn blocks(&self) -> Option<(u32, u32)> {
        let (t, e) = (self.lay.t, self.e);
        if self.fold() == 1 {
            Some((e, t))
        } else if e % t == 0 {
            Some((e / t, t))
        } else if t % e == 0 {
            Some((1, e))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(x: &ExpertLayout, coords: Vec<RankCoord>) -> Vec<u32> {
        coords.into_iter().map(|c| x.lay.rank(c)).collect()
    }

    #[test]
    fn whole_experts_fold_the_tensor_ranks_into_the_expert_parallel_groups() {
        // t 2, d 16, p 2 (Megatron-Bridge's Qwen3-235B-A22B split per stage: TP2, 16 data
        // positions): a stage has t d = 32 ranks, rank = tensor + 2 (data + 16 stage)
        let lay = Layout::plain(2, 2, 16);
        let folded = ExpertLayout { lay, e: 32, et: 1 };
        // e = 32 = t d: the one expert-parallel group of a stage is all 32 of its ranks (stage 1:
        // ranks 32..63), in rank order, and every rank holds 128 / 32 = 4 experts of its own
        // (expert-data group of t d / e = 1)
        assert_eq!(folded.positions(), 32);
        assert_eq!(
            ranks(&folded, folded.expert_group(1, 0, 0)),
            (32..64).collect::<Vec<_>>()
        );
        assert_eq!(folded.expert_data_size(), 1);
        assert_eq!(folded.index_in_group(33), 1);
        // e = 8: expert position f = tensor + 2 data, groups of 8 consecutive positions: group q
        // is ranks 8q .. 8q + 7 of the stage (data positions 4q .. 4q + 3, both tensor ranks);
        // the ranks at index r of their group, f = r, r + 8, r + 16, r + 24, form the
        // expert-data-parallel group of t d / e = 4
        let folded = ExpertLayout { lay, e: 8, et: 1 };
        for q in 0..4 {
            let group = ranks(&folded, folded.expert_group(0, 0, q));
            assert_eq!(group, (8 * q..8 * q + 8).collect::<Vec<_>>());
        }
        assert_eq!(ranks(&folded, folded.expert_data_group(0, 0, 3)), vec![3, 11, 19, 27]);
        assert_eq!(folded.expert_data_size(), 4);
        // the dense default (et = t) carves groups of e = 8 data positions of one tensor rank:
        // tensor 1, data 0..7 are ranks 1, 3, .., 15; its expert-data group is d / e = 2 ranks
        let dense = ExpertLayout { lay, e: 8, et: 2 };
        assert_eq!(
            ranks(&dense, dense.expert_group(0, 1, 0)),
            vec![1, 3, 5, 7, 9, 11, 13, 15]
        );
        assert_eq!(ranks(&dense, dense.expert_data_group(0, 1, 0)), vec![1, 17]);
    }

    #[test]
    fn representative_blocks_exist_where_the_groups_nest_with_the_tensor_groups() {
        let at = |t, d, e, et| ExpertLayout {
            lay: Layout::plain(t, 1, d),
            e,
            et,
        };
        // default: data blocks of e, the tensor ranks shift as one block
        assert_eq!(at(2, 8, 4, 2).blocks(), Some((4, 2)));
        // et 1, t 2, e 8: an expert group is 4 data positions x both tensor ranks
        assert_eq!(at(2, 8, 8, 1).blocks(), Some((4, 2)));
        // et 1, t 4, e 2: two expert groups inside each tensor group
        assert_eq!(at(4, 2, 2, 1).blocks(), Some((1, 2)));
        // et 1, t 2, e 3 (d 3): group {0, 1, 2} holds tensor group {0, 1} and half of {2, 3}
        assert_eq!(at(2, 3, 3, 1).blocks(), None);
    }
}
