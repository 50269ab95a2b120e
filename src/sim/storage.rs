//! Storage tasks: a read from or a write to the parallel filesystem, priced by the network model
//! (which carries the storage links), blocking the stream it was issued on.

use super::{communication, Comm, Queue, Sim};

impl Sim<'_> {
    /// Storage task of operation `x` started on rank `r`.
    pub(super) fn start_storage(&mut self, x: u32, r: usize) {
        let now = self.queue.now();
        self.clocks[r].advance(now);
        self.clocks[r].io_active += 1;
        let id = self.comm_id(Comm::Storage(x));
        let comm = communication(self.g, Comm::Storage(x));
        self.net.start(now, id, comm, &mut Queue(&mut self.queue));
    }

    /// Storage operation `x` finished: its task is the head of the stream it was issued on.
    pub(super) fn storage_done(&mut self, x: u32) {
        let now = self.queue.now();
        let x = x as usize;
        let rank = self.g.storage[x].rank as usize;
        self.clocks[rank].advance(now);
        self.clocks[rank].io_active -= 1;
        let task = self.storage_task[x];
        let si = self.stream_index(task);
        self.complete(task, si, now);
    }
}
