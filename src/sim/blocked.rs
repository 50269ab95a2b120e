//! What a deadlocked run reports: the first few streams that never finished, and where each is stuck.

use super::Sim;
use crate::workload::{Stream, TaskKind};

/// Streams named in the message at most.
const SHOWN: usize = 4;

impl Sim<'_> {
    /// The first few streams that never finished, with the task each is stuck at (for pools: how
    /// many of their tasks finished, run and wait ready).
    pub(super) fn blocked(&self) -> String {
        let mut out = if self.pools.is_some() {
            self.pool_blocked()
        } else {
            (0..self.streams.len())
                .filter_map(|si| self.stuck_at(si))
                .take(SHOWN + 1)
                .collect()
        };
        // pools lead with what may cause it
        let shown = SHOWN + self.pools.is_some() as usize;
        if out.len() > shown {
            out.truncate(shown);
            out.push("...".to_string());
        }
        out.join("; ")
    }

    /// Where in-order stream `si` is stuck, if it never finished.
    fn stuck_at(&self, si: usize) -> Option<String> {
        let (head, end) = (self.streams[si].head, self.g.stream_offsets[si + 1]);
        if head >= end {
            return None;
        }
        let stream = Stream::ALL[si % Stream::COUNT];
        let what = match self.g.task_kind[head as usize] {
            TaskKind::Collective(c) => format!(
                "collective {c} ({} of {} members arrived)",
                self.arrived[c as usize],
                self.g.collective_tasks(c).len()
            ),
            TaskKind::Recv(x) => format!(
                "a receive from rank {} that never arrived",
                self.g.transfers[x as usize].src
            ),
            TaskKind::Send(x) => format!("a send to rank {}", self.g.transfers[x as usize].dst),
            _ => "a task waiting for its dependencies".to_string(),
        };
        let first = self.g.stream_offsets[si];
        Some(format!(
            "rank {} {} stream at its task {} of {}: {what}",
            si / Stream::COUNT,
            stream.name(),
            head - first + 1,
            end - first
        ))
    }
}
