//! How a representative task graph stands for the whole iteration.
//!
//! A generated workload is symmetric: every data-parallel replica, and within a stage every tensor
//! rank, runs the same program. A representative graph gives tasks to tensor rank 0 of replica 0 of
//! each stage only; each of its communications then stands for its *copies*, the same
//! communication moved to the other (replica, tensor rank) positions. A group that already spans a
//! dimension (a tensor-parallel all-reduce spans the tensor ranks, a data-parallel one the replicas)
//! has no copies along it. Work that only replica 0 does (checkpoint I/O) breaks the symmetry:
//! such a graph is run every rank. Network models that share links (the flow model) price a communication
//! together with its copies; closed-form models need only the communication itself.

use crate::workload::layout::{Layout, RankCoord};

/// The symmetry a representative graph relies on: the rank layout it was cut from.
///
/// With expert parallelism of size e the data positions fall into expert-parallel groups of e
/// consecutive ones, so a shift of the positions by one is no longer a symmetry (it moves a group
/// onto two); the symmetries are the rotations inside every group (position e q + r to e q +
/// (r + 1) mod e) and the shifts of whole groups (e q + r to e (q + 1) + r, modulo d). Together
/// they still take position 0 to every position, so one representative still stands for all; with
/// e = 1 they are the plain shifts. Context parallelism of size c cuts the data positions into
/// rings of c consecutive ones the same way, and a rotation inside every ring takes each ring
/// transfer k -> k + 1 to the next one.
///
/// With both (Megatron-Core carves the expert-parallel groups out of data x context) the two
/// blocks need not nest alike (a ring of 4 holds two expert groups of 2; an expert group of 4
/// holds two rings of 2), and a rotation inside rings can move an expert group onto two. A
/// representative run needs no permutation that keeps both, though: it needs, for each of its
/// communications, every communication the other ranks run at that point of the same program.
/// So a collective is copied along the expert blocks (its group is a tensor, data, expert or
/// expert-data group, or one position's, and the rotations inside expert groups and their shifts
/// take it to every group of its kind) and a point-to-point transfer along the rings (a ring step
/// k -> k + 1, or a pipeline send of one position, which the rotations inside rings and their
/// shifts take to every one of its kind). Each rank's n-th communication is then one of the copies
/// of the representative's n-th, and the copies are all of them.
///
/// With whole experts (expert-tensor size 1) the expert-parallel groups fold the tensor ranks in
/// ([`crate::workload::expert_layout`]). A group of e = k t ranks is k data positions of every
/// tensor rank: the data positions fall into expert blocks of k, as above. A group of e < t ranks
/// (e dividing t) is e tensor ranks of one data position: the tensor ranks then fall into blocks
/// of e, and the tensor shifts become rotations inside every block and shifts of whole blocks.
#[derive(Clone, Copy, Debug)]
pub struct Replication {
    /// The full layout (every rank of it is represented).
    pub layout: Layout,
    /// Data positions per expert block: the expert-parallel size e, or e / t with whole experts
    /// (1 without expert parallelism).
    pub expert: u32,
    /// Tensor ranks per tensor block: t, or e with whole experts in groups of e < t.
    pub tensor_block: u32,
}

/// What a communication is, which decides the blocks of data positions it is copied along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommKind {
    /// A collective (or one rank's storage I/O): copied along the expert-parallel groups.
    Collective,
    /// A point-to-point transfer: copied along the context-parallel rings.
    Transfer,
}

impl Replication {
    /// Data positions per block that `kind` is copied along ([`Replication`]): expert groups for
    /// collectives, rings for transfers, and the other where there is only one kind of block.
    fn block(&self, kind: CommKind) -> u32 {
        let (e, c) = (self.expert.max(1), self.layout.c.max(1));
        match kind {
            CommKind::Collective if e > 1 => e,
            CommKind::Transfer if c > 1 => c,
            _ => e.max(c),
        }
    }

    /// The copies of a communication of kind `kind` among `members` (in order): copy 0 is
    /// `members` itself, every other copy lists the image of each member, in the same order.
    pub fn copies(&self, members: &[u32], kind: CommKind) -> Vec<Vec<u32>> {
        let (lay, e) = (self.layout, self.block(kind));
        let (blocks, tb) = (lay.d / e, self.tensor_block.max(1));
        let mut sorted = members.to_vec();
        sorted.sort_unstable();
        // the image of rank r under a [group shift, rotation inside groups, tensor rotation inside
        // tensor blocks, tensor block shift]
        let shift = |r: u32, [block, rotate, tensor, tensor_blocks]: [u32; 4]| {
            let c = lay.coord(r);
            let (q, inside) = (c.data / e, c.data % e);
            let (tq, tinside) = (c.tensor / tb, c.tensor % tb);
            lay.rank(RankCoord {
                tensor: ((tq + tensor_blocks) % (lay.t / tb)) * tb + (tinside + tensor) % tb,
                data: ((q + block) % blocks) * e + (inside + rotate) % e,
                stage: c.stage,
            })
        };
        // a group closed under a shift spans that dimension: its copies along it are itself; a
        // transfer only if its image is itself (on a ring of 2, k -> k + 1 maps to k + 1 -> k, the
        // other direction, a copy of its own)
        let closed = |by: [u32; 4]| match kind {
            CommKind::Collective => members.iter().all(|&r| sorted.binary_search(&shift(r, by)).is_ok()),
            CommKind::Transfer => members.iter().all(|&r| shift(r, by) == r),
        };
        let shifts = if closed([1, 0, 0, 0]) { 1 } else { blocks };
        let rotations = if closed([0, 1, 0, 0]) { 1 } else { e };
        let tensors = if closed([0, 0, 1, 0]) { 1 } else { tb };
        let tensor_blocks = if closed([0, 0, 0, 1]) { 1 } else { lay.t / tb };
        let mut out = Vec::with_capacity((shifts * rotations * tensors * tensor_blocks) as usize);
        for block in 0..shifts {
            for rotate in 0..rotations {
                for tensor_block in 0..tensor_blocks {
                    for tensor in 0..tensors {
                        let by = [block, rotate, tensor, tensor_block];
                        out.push(members.iter().map(|&r| shift(r, by)).collect());
                    }
                }
            }
        }
        out
    }

    /// Ranks the representative graph stands for.
    pub fn ranks_represented(&self) -> u32 {
        self.layout.ranks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(t: u32, d: u32, p: u32) -> Replication {
        Replication {
            layout: Layout::plain(t, p, d),
            expert: 1,
            tensor_block: t,
        }
    }

    #[test]
    fn a_point_to_point_transfer_has_a_copy_per_replica_and_tensor_rank() {
        // t 2 d 3 p 2: rank = tensor + 2 (data + 3 stage); stage 0 → 1 of (data 0, tensor 0) is 0 → 6
        let c = rep(2, 3, 2).copies(&[0, 6], CommKind::Transfer);
        assert_eq!(
            c,
            vec![vec![0, 6], vec![1, 7], vec![2, 8], vec![3, 9], vec![4, 10], vec![5, 11]]
        );
    }

    #[test]
    fn a_tensor_group_is_copied_per_replica_and_a_data_group_per_tensor_rank() {
        let r = rep(2, 3, 1);
        // tensor group of replica 0: ranks 0, 1 → replicas 1 and 2: 2, 3 and 4, 5
        assert_eq!(
            r.copies(&[0, 1], CommKind::Collective),
            vec![vec![0, 1], vec![2, 3], vec![4, 5]]
        );
        // data group of tensor rank 0: 0, 2, 4 → tensor rank 1: 1, 3, 5
        assert_eq!(
            r.copies(&[0, 2, 4], CommKind::Collective),
            vec![vec![0, 2, 4], vec![1, 3, 5]]
        );
        // the whole machine has no copies
        assert_eq!(r.copies(&[0, 1, 2, 3, 4, 5], CommKind::Collective).len(), 1);
    }

    #[test]
    fn expert_groups_are_copied_per_group_and_expert_data_groups_per_position() {
        // t 1 d 4 p 1, e 2: expert-parallel groups {0, 1} and {2, 3}, expert-data groups {0, 2}
        // and {1, 3}; a pipeline-free rank's own work stands for all 4 replicas
        let r = Replication {
            layout: Layout::plain(1, 1, 4),
            expert: 2,
            tensor_block: 1,
        };
        assert_eq!(r.copies(&[0, 1], CommKind::Collective), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(r.copies(&[0, 2], CommKind::Collective), vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(r.copies(&[0, 1, 2, 3], CommKind::Collective).len(), 1);
        assert_eq!(
            r.copies(&[0], CommKind::Collective),
            vec![vec![0], vec![1], vec![2], vec![3]]
        );
    }

    #[test]
    fn with_rings_and_experts_collectives_follow_the_experts_and_transfers_the_rings() {
        // t 1 c 4 d 2 (8 positions), e 2: rings {0..3} and {4..7}, expert groups {0, 1}, {2, 3},
        // {4, 5}, {6, 7}, expert-data groups {0, 2, 4, 6} and {1, 3, 5, 7} (Megatron-Core's
        // tp-cp-ep-dp-pp with the expert groups carved from data x context)
        let r = Replication {
            layout: Layout { t: 1, p: 1, d: 8, c: 4 },
            expert: 2,
            tensor_block: 1,
        };
        let collective = |m: &[u32]| r.copies(m, CommKind::Collective);
        assert_eq!(
            collective(&[0, 1]),
            vec![vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7]]
        );
        assert_eq!(collective(&[0, 2, 4, 6]), vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        // the ring step 0 -> 1 stands for every step k -> k + 1 of both rings (an expert-group
        // rotation would give 1 -> 0, which no rank sends)
        assert_eq!(
            r.copies(&[0, 1], CommKind::Transfer),
            vec![
                vec![0, 1],
                vec![1, 2],
                vec![2, 3],
                vec![3, 0],
                vec![4, 5],
                vec![5, 6],
                vec![6, 7],
                vec![7, 4]
            ]
        );
        // c 2 e 4: an expert group holds two rings; on a ring of 2 both directions are sent
        let r = Replication {
            layout: Layout { t: 1, p: 1, d: 8, c: 2 },
            expert: 4,
            tensor_block: 1,
        };
        assert_eq!(
            r.copies(&[0, 1, 2, 3], CommKind::Collective),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
        );
        assert_eq!(
            r.copies(&[0, 4], CommKind::Collective),
            vec![vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]
        );
        assert_eq!(r.copies(&[0, 1], CommKind::Transfer).len(), 8);
        assert!(r.copies(&[0, 1], CommKind::Transfer).contains(&vec![1, 0]));
    }

    #[test]
    fn whole_experts_in_groups_inside_a_tensor_group_shift_by_tensor_blocks() {
        // t 4 d 2 p 1 with expert-tensor size 1 and e 2: expert-parallel groups {0, 1}, {2, 3},
        // {4, 5}, {6, 7} (two inside each tensor group), expert-data groups {0, 2, 4, 6} and
        // {1, 3, 5, 7}; the tensor ranks fall into blocks of e = 2
        let r = Replication {
            layout: Layout::plain(4, 1, 2),
            expert: 1,
            tensor_block: 2,
        };
        // (members, their copies): expert-parallel, expert-data, tensor and data groups
        let cases: [(&[u32], &[&[u32]]); 4] = [
            (&[0, 1], &[&[0, 1], &[2, 3], &[4, 5], &[6, 7]]),
            (&[0, 2, 4, 6], &[&[0, 2, 4, 6], &[1, 3, 5, 7]]),
            (&[0, 1, 2, 3], &[&[0, 1, 2, 3], &[4, 5, 6, 7]]),
            (&[0, 4], &[&[0, 4], &[1, 5], &[2, 6], &[3, 7]]),
        ];
        for (members, copies) in cases {
            assert_eq!(r.copies(members, CommKind::Collective), copies, "{members:?}");
        }
    }
}
