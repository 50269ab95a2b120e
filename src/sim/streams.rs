//! Each (rank, stream)'s place in its task list during a simulation.

use crate::units::SimTime;
use crate::workload::{TaskGraph, TaskId};

/// Where one (rank, stream) is in its task list, kept together so that a task's start and
/// completion read one cache line of it (9216 streams advance side by side on GPT-1T).
#[derive(Clone, Copy, Debug)]
pub(super) struct StreamState {
    /// The next task to run; the stream is done when it reaches the stream's end.
    pub(super) head: TaskId,
    /// Whether the head task has started, and when.
    pub(super) started: bool,
    pub(super) start_time: SimTime,
    /// The first edge whose earlier task is at or after the head, and that task (`TaskId::MAX`:
    /// none), so that completing a task without successors on other streams reads no edge.
    pub(super) edge_cursor: u32,
    pub(super) edge_task: TaskId,
    /// The first gate whose task is at or after the head, and that task (`TaskId::MAX`: none), so
    /// that starting a task without explicit predecessors reads no gate.
    pub(super) gate_cursor: u32,
    pub(super) gate_task: TaskId,
}

impl StreamState {
    /// A stream whose first task is `first`, before anything ran.
    pub(super) fn at(g: &TaskGraph, first: TaskId) -> Self {
        let edge_cursor = g.edges.partition_point(|e| e.before < first);
        let gate_cursor = g.gates.partition_point(|x| x.task < first);
        StreamState {
            head: first,
            started: false,
            start_time: SimTime::ZERO,
            edge_cursor: edge_cursor as u32,
            edge_task: g.edges.get(edge_cursor).map_or(TaskId::MAX, |e| e.before),
            gate_cursor: gate_cursor as u32,
            gate_task: g.gates.get(gate_cursor).map_or(TaskId::MAX, |x| x.task),
        }
    }
}
