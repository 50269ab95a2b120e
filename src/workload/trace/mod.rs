//! The trace format: any per-rank task graph as a file (version 1).
//!
//! JSON Lines, read as a stream (one record per line, never a whole-file DOM): a header line, then
//! `op`, `group` and `task` records in any order, ops and groups before the tasks that use them.
//!
//! ```text
//! {"format":"clustersim-trace","version":1,"name":"tiny","ranks":2}
//! {"type":"op","id":0,"name":"matmul","kernels":[{"gemm":[1,4096,4096,4096]},{"stream":33554432}]}
//! {"type":"op","id":1,"name":"measured","kernels":[{"measured":1500000}]}
//! {"type":"group","id":0,"ranks":[0,1]}
//! {"type":"task","id":0,"rank":0,"op":0}
//! {"type":"task","id":1,"rank":1,"op":1}
//! {"type":"task","id":2,"rank":0,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576},"deps":[0]}
//! {"type":"task","id":3,"rank":1,"collective":{"id":0,"op":"all-reduce","group":0,"bytes":1048576}}
//! {"type":"task","id":4,"rank":0,"stream":"send","send":{"peer":1,"bytes":4096,"tag":0},"deps":[2]}
//! {"type":"task","id":5,"rank":1,"recv":{"peer":0,"tag":0}}
//! ```
//!
//! - kernels: `gemm: [batch, m, n, k]`, `stream: bytes` (memory-bound), `generic: [flops, bytes]`,
//!   `measured: nanoseconds` (a profiled duration, taken as is);
//! - a task is exactly one of `op` (compute), `collective` (every member has a task with the same
//!   collective `id`, `op`, `group` and `bytes`; it starts when all have started), `send` / `recv`
//!   (matched by sender, receiver and `tag`), `storage` ({bytes, write}: a filesystem I/O by the
//!   task's rank), or `delay_ns`;
//! - `stream` is `compute` (default), `data-parallel`, `send` or `io`; tasks of one rank and stream
//!   run in file order; `deps` lists task ids that must finish first;
//! - optional labels for timelines: `phase`, `microbatch`, `layer`, `chunk`;
//! - the header may carry the generating `workload`, so that a report can give model metrics.
//!
//! A YAML file (ending in `.yaml`/`.yml`) holds the same header fields plus `ops`, `groups` and
//! `tasks` lists, for small hand-written traces.

//!
//! [`format`] holds the record types, [`read`] the streaming reader with its validation, and
//! [`write`] the writer.

pub mod chakra;
pub mod format;
mod read;
mod write;

pub use format::{Header, VERSION};
pub use read::read;
pub use write::write;

use super::graph::TaskGraph;

/// A loaded trace.
pub struct Trace {
    /// Its header.
    pub header: Header,
    /// The task graph.
    pub graph: TaskGraph,
}
