//! Pipeline transfers between stages: sends, receives, and Megatron's scatter/gather across the
//! tensor group.

use super::{Generator, StageCtx, NO_LAYER};
use crate::ops::CollectiveOp;
use crate::workload::graph::{Phase, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;

impl Generator<'_> {
    /// Transfer id for the boundary after virtual stage `boundary`, created on first use.
    pub(super) fn transfer_id(&mut self, boundary: u32, mb: u32, forward: bool, data: u32, tensor: u32) -> u32 {
        let lay = self.lay;
        let key = ((((boundary * self.m + mb) * 2 + forward as u32) * lay.d + data) * lay.t + tensor) as usize;
        if self.transfers[key] != u32::MAX {
            return self.transfers[key];
        }
        let stage_of = |vs: u32| vs % lay.p;
        let (from, to) = if forward {
            (boundary, boundary + 1)
        } else {
            (boundary + 1, boundary)
        };
        let src = lay.rank(RankCoord {
            tensor,
            data,
            stage: stage_of(from),
        });
        let dst = lay.rank(RankCoord {
            tensor,
            data,
            stage: stage_of(to),
        });
        let x = self.g.transfer(src, dst, self.p2p_bytes());
        self.transfers[key] = x;
        x
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &mut self,
        ctx: &StageCtx,
        boundary: u32,
        mb: u32,
        forward: bool,
        chunk: u32,
        phase: Phase,
        prev: &[Option<TaskId>],
    ) {
        let label = TaskLabel {
            phase,
            chunk: chunk as u8,
            layer: NO_LAYER,
            microbatch: mb,
        };
        for (i, &r) in ctx.ranks.iter().enumerate() {
            let c = self.lay.coord(r);
            let x = self.transfer_id(boundary, mb, forward, c.data, c.tensor);
            let task = self.buf.task(r, Stream::PipelineSend, TaskKind::Send(x), label);
            if let Some(p) = prev[i] {
                self.buf.depend(p, task);
            }
        }
    }

    pub(super) fn recv(&mut self, ctx: &StageCtx, boundary: u32, mb: u32, forward: bool, chunk: u32, phase: Phase) {
        let label = TaskLabel {
            phase,
            chunk: chunk as u8,
            layer: NO_LAYER,
            microbatch: mb,
        };
        for &r in &ctx.ranks {
            let c = self.lay.coord(r);
            let x = self.transfer_id(boundary, mb, forward, c.data, c.tensor);
            self.buf.task(r, Stream::Compute, TaskKind::Recv(x), label);
        }
        if self.scatter_gather() {
            // each tensor rank received 1/t of the activation: all-gather it over the tensor group
            for (group, members) in &ctx.tensor_groups {
                let c = self
                    .g
                    .collective(CollectiveOp::AllGather, *group, self.shape.allreduce_bytes());
                for &i in members {
                    self.buf
                        .task(ctx.ranks[i], Stream::Compute, TaskKind::Collective(c), label);
                }
            }
        }
    }

    /// Megatron's scatter/gather of pipeline sends (SC'21 section 4.1): with tensor parallelism, each
    /// tensor rank sends only its 1/t slice of the activation, and the receivers all-gather it.
    pub(super) fn scatter_gather(&self) -> bool {
        self.w.parallel.scatter_gather && self.lay.t > 1
    }

    /// Bytes of one pipeline transfer: b s h activations, or 1/t of them with scatter/gather.
    pub(super) fn p2p_bytes(&self) -> u64 {
        let full = self.shape.allreduce_bytes();
        if self.scatter_gather() {
            full / self.lay.t as u64
        } else {
            full
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::workload;
    use crate::ops::CollectiveOp;
    use crate::workload::generate;

    /// t = 4, p = 2, m = 2: with scatter/gather every pipeline transfer carries b s h / t bytes
    /// (2048 x 3840 x 2 / 4) and each receive is followed by an all-gather of b s h over the tensor
    /// group; without it every tensor rank sends the whole b s h.
    #[test]
    fn scatter_gather_splits_pipeline_sends_across_the_tensor_group() {
        let base = [
            "workload.parallel.tensor=4",
            "workload.parallel.pipeline=2",
            "workload.parallel.data=1",
            "workload.batch.global=2",
        ];
        let bsh = 2048 * 3840 * 2;
        let on = generate(&workload(&base));
        assert!(on.transfers.iter().all(|x| x.bytes == bsh / 4));
        // 2 microbatches x (forward into stage 1 + backward into stage 0) x 4 tensor ranks
        assert_eq!(on.transfers.len(), 2 * 2 * 4);
        let gathers = on
            .collectives
            .iter()
            .filter(|c| c.op == CollectiveOp::AllGather)
            .count();
        assert_eq!(gathers, 2 * 2, "one all-gather per receive step per tensor group");
        let off = generate(&workload(
            &[&base[..], &["workload.parallel.scatter_gather=false"]].concat(),
        ));
        assert!(off.transfers.iter().all(|x| x.bytes == bsh));
        assert!(off.collectives.iter().all(|c| c.op != CollectiveOp::AllGather));
    }
}
