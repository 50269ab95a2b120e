//! Collective tasks: a member that reaches its collective waits (synchronisation) until every member
//! has; then the network model runs it, and it completes for all members at once.
//!
//! Members sit on different ranks, so each one's state is a cache line no recent event touched:
//! the loops over members read the stream indices the graph keeps beside the member list, and
//! the completion first requests every member's stream data, then completes them one by one, so
//! that the loads overlap.

use super::{communication, Comm, Queue, Sim};
use crate::workload::{CollectiveId, Stream};

impl Sim<'_> {
    /// A member (on rank `r`) reached collective `c`; the last to arrive starts it.
    pub(super) fn start_collective(&mut self, c: CollectiveId, r: usize) {
        let now = self.queue.now();
        // waiting for other pipeline stages is bubble (idle), not synchronisation
        let sync = !self.g.collectives[c as usize].cross_stage as u32;
        self.clocks[r].advance(now);
        self.clocks[r].sync_waiting += sync;
        self.arrived[c as usize] += 1;
        if self.sm_share.is_some() {
            self.share_collective(c, r, true);
        }
        let members = self.g.collective_streams(c);
        if self.arrived[c as usize] as usize == members.len() {
            // every member waited for this last arrival: charge the wait to rank r
            let mut waited = 0u64;
            for &si in members {
                let mr = si as usize / Stream::COUNT;
                self.clocks[mr].advance(now);
                self.clocks[mr].sync_waiting -= sync;
                self.clocks[mr].comm_active += 1;
                waited += now.since(self.streams[si as usize].start_time).0;
            }
            if waited > 0 {
                self.waited_on[r] += waited as f64 * 1e-9;
                if self.record[r] || members.iter().any(|&si| self.record[si as usize / Stream::COUNT]) {
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
        let g = self.g;
        let (tasks, streams) = (g.collective_tasks(c), g.collective_streams(c));
        for &si in streams {
            self.prefetch_stream(si as usize);
            let clock = &mut self.clocks[si as usize / Stream::COUNT];
            clock.advance(now);
            clock.comm_active -= 1;
        }
        if self.sm_share.is_some() {
            for &si in streams {
                self.share_collective(c, si as usize / Stream::COUNT, false);
            }
        }
        for (&m, &si) in tasks.iter().zip(streams) {
            self.complete(m, si as usize, now);
        }
    }
}
