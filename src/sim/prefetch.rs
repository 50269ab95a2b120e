//! Prefetching the task data of events about to pop.
//!
//! A GPT-1T iteration over 3072 GPUs has 47 M tasks and 9216 streams advancing side by side, so
//! each task's start and completion touch a cache line of the graph's arrays (its kind and label,
//! its stream's next edge and gate) that no recent event touched: profiles of that run showed half
//! of the loop waiting on those loads. Events due at the same instant are many (every tensor rank
//! and replica finishes the same op together), so while one is handled the data of one a few
//! places behind it is requested, and the loads overlap instead of following one another.

use super::{Event, Sim};
use crate::workload::TaskId;

/// Which of the events still to pop at the current instant to prefetch for (0: the next).
pub(super) const AHEAD: usize = 4;

/// Asks the CPU to bring the cache line of `x` closer; no effect on results.
#[inline(always)]
fn touch<T>(x: Option<&T>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = x {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it never faults and changes no memory or state the
        // program can observe; the pointer comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

impl Sim<'_> {
    /// Prefetches what starting each task of the ready list will read, before any starts.
    pub(super) fn prefetch_ready(&self) {
        if self.ready.len() < 2 {
            return;
        }
        let g = self.g;
        for &(t, si) in &self.ready {
            touch(g.task_kind.get(t as usize));
            touch(g.task_label.get(t as usize));
            let st = &self.streams[si as usize];
            if st.gate_task == t {
                touch(self.gate_left.get(st.gate_cursor as usize));
            }
            touch(self.clocks.get(si as usize / crate::workload::Stream::COUNT));
        }
    }

    /// Prefetches what handling the event at place [`AHEAD`] of the current instant will read.
    pub(super) fn prefetch_ahead(&self) {
        if let Some(&Event::TaskDone { stream, .. }) = self.queue.peek_same_time(AHEAD) {
            self.prefetch_stream(stream as usize);
        }
    }

    /// Prefetches what completing the head task of stream `si` and starting the next will read.
    pub(super) fn prefetch_stream(&self, si: usize) {
        let (g, st) = (self.g, &self.streams[si]);
        let next = st.head as usize + 1;
        if st.edge_task == st.head {
            touch(g.edges.get(st.edge_cursor as usize));
        }
        if st.gate_task <= next as TaskId {
            touch(g.gates.get(st.gate_cursor as usize));
        }
        touch(g.task_kind.get(next));
        touch(g.task_label.get(next));
        touch(self.clocks.get(si / crate::workload::Stream::COUNT));
    }
}
