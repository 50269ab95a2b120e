//! Expert parallelism in the generated graph: the expert-parallel and expert-data-parallel groups
//! of a stage, and the routed experts' compute, which differs by position in the expert-parallel
//! group when the router is skewed.
//!
//! Megatron-Core carves the expert-parallel groups out of data x context (see [`crate::config::moe`]):
//! with expert size e, data positions e q .. e q + e - 1 (the layout's positions, context index +
//! c x replica; same tensor rank and stage) form one expert-parallel group, and positions r, r + e,
//! r + 2e, ... hold the same experts: their expert-data-parallel group of d c / e ranks, over which
//! those experts' gradients are reduced.

use super::{Generator, StageCtx};
use crate::ops::Kernel;
use crate::workload::dispatch::host_ops;
use crate::workload::graph::{Op, Stream, TaskId, TaskKind, TaskLabel};
use crate::workload::layout::RankCoord;

/// Groups as the stage context lists them: (group id, indices of the present members).
type Groups = Vec<(u32, Vec<usize>)>;

impl Generator<'_> {
    /// The stage's (expert-parallel groups, expert-data-parallel groups) among the present `datas`
    /// data positions and `tensors` tensor ranks. Without expert parallelism there are no expert-parallel
    /// groups and the expert-data-parallel groups are the data groups (no group is created).
    pub(super) fn expert_groups(
        &mut self,
        stage: u32,
        datas: u32,
        tensors: u32,
        data_groups: &Groups,
    ) -> (Groups, Groups) {
        let (lay, e) = (self.lay, self.ep());
        if self.w.model.moe.is_none() || e == 1 {
            return (Vec::new(), data_groups.clone());
        }
        let index = |tensor: u32, data: u32| (data * tensors + tensor) as usize;
        let rank = |tensor: u32, data: u32| lay.rank(RankCoord { tensor, data, stage });
        let mut expert = Vec::new();
        let mut expert_data = Vec::new();
        for tensor in 0..tensors {
            for q in 0..datas.div_ceil(e) {
                let all = (0..e).map(|r| rank(tensor, q * e + r)).collect();
                let present = (0..e).map(|r| q * e + r).filter(|&d| d < datas);
                expert.push((self.g.group(all), present.map(|d| index(tensor, d)).collect()));
            }
            for r in 0..e.min(datas) {
                let all = (0..lay.d / e).map(|q| rank(tensor, q * e + r)).collect();
                let present = (0..lay.d / e).map(|q| q * e + r).filter(|&d| d < datas);
                expert_data.push((self.g.group(all), present.map(|d| index(tensor, d)).collect()));
            }
        }
        (expert, expert_data)
    }

    /// The routed experts' compute: on each present rank the kernels of its position in the
    /// expert-parallel group (its data position modulo e).
    pub(super) fn experts(
        &mut self,
        ctx: &StageCtx,
        name: &'static str,
        per_position: Vec<Vec<Kernel>>,
        label: TaskLabel,
        prev: &mut [Option<TaskId>],
    ) {
        let e = self.ep();
        for (i, &r) in ctx.ranks.iter().enumerate() {
            let kernels = per_position[(self.lay.coord(r).data % e) as usize].clone();
            let op = self.g.op(Op {
                name: name.into(),
                host_ops: host_ops(name, label.phase, kernels.len()),
                kernels,
            });
            prev[i] = Some(self.buf.task(r, Stream::Compute, TaskKind::Compute(op), label));
        }
    }
}
