//! The tasks of one stage, buffered per (rank, stream) so that the builder receives them in stream
//! order and needs no renumbering.

use crate::workload::builder::GraphBuilder;
use crate::workload::graph::{Stream, TaskId, TaskKind, TaskLabel};

/// The tasks of one stage, buffered per (rank, stream) so that the builder receives them in
/// stream order and needs no renumbering. Ids handed out are local to the stage until `flush`.
#[derive(Default)]
pub(super) struct StageBuffer {
    per_stream: Vec<Vec<(u32, Stream, TaskKind, TaskLabel)>>,
    /// local id -> (stream slot, index in slot)
    ids: Vec<(u32, u32)>,
    edges: Vec<(TaskId, TaskId)>,
    /// The stage's lowest rank.
    first_rank: u32,
}

impl StageBuffer {
    /// Starts buffering a stage whose ranks start at `first_rank`.
    pub(super) fn begin(&mut self, first_rank: u32) {
        self.first_rank = first_rank;
    }

    pub(super) fn task(&mut self, rank: u32, stream: Stream, kind: TaskKind, label: TaskLabel) -> TaskId {
        let slot = ((rank - self.first_rank) as usize) * Stream::COUNT + stream as usize;
        if self.per_stream.len() <= slot {
            self.per_stream.resize_with(slot + 1, Vec::new);
        }
        self.ids.push((slot as u32, self.per_stream[slot].len() as u32));
        self.per_stream[slot].push((rank, stream, kind, label));
        (self.ids.len() - 1) as TaskId
    }

    pub(super) fn depend(&mut self, before: TaskId, after: TaskId) {
        self.edges.push((before, after));
    }

    /// Appends the buffered tasks to `g` in (rank, stream) order.
    pub(super) fn flush(&mut self, g: &mut GraphBuilder) {
        let mut slot_start = vec![0 as TaskId; self.per_stream.len()];
        for (slot, tasks) in self.per_stream.iter_mut().enumerate() {
            slot_start[slot] = g.len() as TaskId;
            for (rank, stream, kind, label) in tasks.drain(..) {
                g.task(rank, stream, kind, label);
            }
        }
        let final_id = |local: TaskId| {
            let (slot, index) = self.ids[local as usize];
            slot_start[slot as usize] + index
        };
        for &(a, b) in &self.edges {
            g.depend(final_id(a), final_id(b));
        }
        self.ids.clear();
        self.edges.clear();
    }
}
