//! Point-to-point tasks: a send starts its transfer at once (eager) and completes when the transfer
//! does; the matching receive completes when it has started and the transfer has arrived.

use super::{communication, Comm, Queue, Sim};
use crate::workload::{TaskId, TransferId};

impl Sim<'_> {
    /// Send task of transfer `x` started: the transfer begins.
    pub(super) fn start_send(&mut self, x: TransferId) {
        let now = self.queue.now();
        let tr = self.g.transfers[x as usize];
        for rank in [tr.src, tr.dst] {
            self.clocks[rank as usize].advance(now);
            self.clocks[rank as usize].comm_active += 1;
        }
        if self.sm_share.is_some() {
            self.share_transfer(x, tr.src as usize, true);
        }
        let id = self.comm_id(Comm::Transfer(x));
        let comm = communication(self.g, Comm::Transfer(x));
        self.net.start(now, id, comm, &mut Queue(&mut self.queue));
    }

    /// Receive task `t` of transfer `x` started on stream `si`: done at once if the data is there.
    pub(super) fn start_recv(&mut self, t: TaskId, si: usize, x: TransferId) {
        if self.transfer_done[x as usize] {
            self.complete(t, si, self.queue.now());
        } else {
            self.recv_started[x as usize] = true;
            if self.sm_share.is_some() {
                let dst = self.g.transfers[x as usize].dst;
                self.share_transfer(x, dst as usize, true);
            }
        }
    }

    /// Transfer `x` arrived: its send completes, and its receive if it is waiting.
    pub(super) fn transfer_done(&mut self, x: TransferId) {
        let now = self.queue.now();
        let x = x as usize;
        let tr = self.g.transfers[x];
        for rank in [tr.src, tr.dst] {
            self.clocks[rank as usize].advance(now);
            self.clocks[rank as usize].comm_active -= 1;
        }
        self.transfer_done[x] = true;
        if self.sm_share.is_some() {
            self.share_transfer(x as TransferId, tr.src as usize, false);
            if self.recv_started[x] {
                self.share_transfer(x as TransferId, tr.dst as usize, false);
            }
        }
        self.complete(tr.send, tr.send_stream as usize, now);
        if self.recv_started[x] {
            self.complete(tr.recv, tr.recv_stream as usize, now);
        }
    }
}
