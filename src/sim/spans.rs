//! Where finished tasks' spans go: a timeline that records some ranks, or nowhere.

use crate::units::SimTime;
use crate::workload::{CollectiveId, TaskId};

/// Receives the start and end of every task on the ranks it asks for.
pub trait SpanSink {
    /// Whether spans of `rank` are wanted.
    fn wants(&self, rank: u32) -> bool;
    /// One finished task.
    fn span(&mut self, task: TaskId, start: SimTime, end: SimTime);
    /// Collective `collective` began when rank `last` arrived, after others had waited for it.
    fn waited_for(&mut self, _collective: CollectiveId, _last: u32) {}
}

/// A sink that keeps nothing.
pub struct NoSpans;

impl SpanSink for NoSpans {
    fn wants(&self, _rank: u32) -> bool {
        false
    }
    fn span(&mut self, _: TaskId, _: SimTime, _: SimTime) {}
}
