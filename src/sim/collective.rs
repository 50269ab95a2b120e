//! Collective tasks: a member that reaches its collective waits (synchronisation) until every member
//! has; then the network model runs it, and it completes for all members at once.

use super::{communication, Comm, Queue, Sim};
use crate::workload::CollectiveId;

impl Sim<'_> {
    /// A member (on rank `r`) reached collective `c`; the last to arrive starts it.
    pub(super) fn start_collective(&mut self, c: CollectiveId, r: usize) {
        let now = self.queue.now();
        // waiting for other pipeline stages is bubble (idle), not synchronisation
        let sync = !self.g.collectives[c as usize].cross_stage as u32;
        self.clocks[r].advance(now);
        self.clocks[r].sync_waiting += sync;
        self.arrived[c as usize] += 1;
        let members = self.g.collective_tasks(c);
        if self.arrived[c as usize] as usize == members.len() {
            // every member waited for this last arrival: charge the wait to rank r
            let mut waited = 0u64;
            for &m in members {
                let mr = self.g.task_rank[m as usize] as usize;
                self.clocks[mr].advance(now);
                self.clocks[mr].sync_waiting -= sync;
                self.clocks[mr].comm_active += 1;
                waited += now.since(self.head_start_time[self.stream_index(m)]).0;
            }
            if waited > 0 {
                self.waited_on[r] += waited as f64 * 1e-9;
                if self.record[r]
                    || members
                        .iter()
                        .any(|&m| self.record[self.g.task_rank[m as usize] as usize])
                {
                    self.spans.waited_for(c, r as u32);
                }
            }
            let comm = communication(self.g, Comm::Collective(c));
            let id = self.comm_id(Comm::Collective(c));
            self.net.start(now, id, comm, &mut Queue(&mut self.queue));
        }
    }

    /// Collective `c` finished: every member task completes.
    pub(super) fn collective_done(&mut self, c: CollectiveId) {
        let now = self.queue.now();
        let members = self.g.collective_tasks(c);
        for &m in members {
            let mr = self.g.task_rank[m as usize] as usize;
            self.clocks[mr].advance(now);
            self.clocks[mr].comm_active -= 1;
        }
        for i in 0..members.len() {
            let m = self.g.collective_tasks(c)[i];
            let si = self.stream_index(m);
            self.complete(m, si, now);
        }
    }
}
