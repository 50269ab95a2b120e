//! Expert parallelism in the generated graph: the expert-parallel and expert-data-parallel groups
//! of a stage, and the routed experts' compute, which differs by position in the expert-parallel
//! group when the router is skewed.
//!
//! The groups follow [`crate::workload::expert_layout`]: with expert size e, expert positions
//! e q .. e q + e - 1 (the data positions of one tensor rank, or with whole experts every rank of
//! the stage in rank order) form one expert-parallel group, and positions r, r + e, r + 2e, ...
//! hold the same experts: their expert-data-parallel group, over which those experts' gradients
//! are reduced.

use super::{Generator, StageCtx};
use crate::ops::Kernel;
use crate::workload::dispatch::host_ops;
use crate::workload::graph::{Op, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;

/// Groups as the stage context lists them: (group id, indices of the present members).
type Groups = Vec<(u32, Vec<usize>)>;

impl Generator<'_> {
    /// The stage's (expert-parallel groups, expert-data-parallel groups) that have members among
    /// the present `datas` data positions and `tensors` tensor ranks. Without expert parallelism
    /// there are no expert-parallel groups, and with the experts split as the dense layers the
    /// expert-data-parallel groups are the data groups (no group is created).
    pub(super) fn expert_groups(
        &mut self,
        stage: u32,
        datas: u32,
        tensors: u32,
        data_groups: &Groups,
    ) -> (Groups, Groups) {
        let (lay, x) = (self.lay, self.expert_lay);
        if self.w.model.moe.is_none() || (x.e == 1 && x.fold() == 1) {
            return (Vec::new(), data_groups.clone());
        }
        let present = |c: &RankCoord| c.tensor < tensors && c.data < datas;
        let mut group = |coords: Vec<RankCoord>| {
            let members: Vec<usize> = coords
                .iter()
                .filter(|c| present(c))
                .map(|c| (c.data * tensors + c.tensor) as usize)
                .collect();
            let all = || coords.iter().map(|&c| lay.rank(c)).collect();
            (!members.is_empty()).then(|| (self.g.group(all()), members))
        };
        let (mut expert, mut expert_data) = (Vec::new(), Vec::new());
        for tensor in (0..x.et).filter(|&i| i < tensors) {
            if x.e > 1 {
                expert.extend((0..x.positions() / x.e).filter_map(|q| group(x.expert_group(stage, tensor, q))));
            }
            expert_data.extend((0..x.e).filter_map(|r| group(x.expert_data_group(stage, tensor, r))));
        }
        (expert, expert_data)
    }

    /// The routed experts' compute: on each present rank the kernels of its index in its
    /// expert-parallel group.
    pub(super) fn experts(
        &mut self,
        ctx: &StageCtx,
        name: &'static str,
        per_position: Vec<Vec<Kernel>>,
        label: TaskLabel,
        prev: &mut [Option<TaskId>],
    ) {
        for (i, &r) in ctx.ranks.iter().enumerate() {
            let kernels = per_position[self.expert_lay.index_in_group(r) as usize].clone();
            let op = self.g.op(Op {
                name: name.into(),
                host_ops: host_ops(name, label.phase, kernels.len()),
                kernels,
            });
            prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Compute(op), label));
        }
    }
}
