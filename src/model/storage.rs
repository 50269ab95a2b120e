//! Storage: how fast a set of nodes reads or writes the parallel filesystem. It prices bytes and
//! node counts; what a checkpoint holds and who writes it belongs to the workload.
//!
//! Per node, IOPS = outstanding I/Os / latency of one I/O, so a node streams
//! I/O size x outstanding / latency bytes per second, capped by its storage NICs. All clients
//! together are capped by the filesystem's aggregate bandwidth (read or write) and by its IOPS
//! limit x I/O size: throughput = min(nodes x per-node, filesystem, IOPS limit x I/O size).
//! A transfer of B bytes then takes one I/O latency plus B / throughput.

use crate::config::StorageSpec;

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the filesystem.
    Read,
    /// To the filesystem.
    Write,
}

/// Throughput in bytes/s of `nodes` nodes streaming to or from the filesystem together.
pub fn throughput(st: &StorageSpec, nodes: u32, dir: Direction) -> f64 {
    let iops_per_node = st.outstanding_ios as f64 / st.io_latency.as_secs_f64();
    let per_node =
        (st.io_size.as_f64() * iops_per_node).min(st.nics as f64 * st.nic.effective_bandwidth().bytes_per_s());
    let filesystem = match dir {
        Direction::Read => st.read_bandwidth.bytes_per_s(),
        Direction::Write => st.write_bandwidth.bytes_per_s(),
    };
    (nodes as f64 * per_node)
        .min(filesystem)
        .min(st.iops * st.io_size.as_f64())
}

/// Seconds to move `bytes` with `nodes` nodes.
pub fn transfer_seconds(st: &StorageSpec, bytes: f64, nodes: u32, dir: Direction) -> f64 {
    st.io_latency.as_secs_f64() + bytes / throughput(st, nodes, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, Document, HardwareSpec};

    /// IOPS = outstanding / latency: 16 I/Os in flight at 1 ms each are 16 000 IOPS per node, x 8 MiB
    /// = 134 GB/s, capped by 2 storage NICs of 24 GB/s = 48 GB/s per node; 4 nodes = 192 GB/s,
    /// below both filesystem limits; 384 nodes hit the filesystem (1 TB/s read, 273 GB/s write).
    #[test]
    fn throughput_is_capped_by_every_link() {
        let doc = Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap();
        let hw = HardwareSpec::from_document(&doc).unwrap();
        let st = hw.storage.as_ref().unwrap();
        assert!((throughput(st, 4, Direction::Read) - 4.0 * 2.0 * 24e9).abs() < 1.0);
        assert!((throughput(st, 384, Direction::Read) - 1e12).abs() < 1.0);
        assert!((throughput(st, 384, Direction::Write) - 273e9).abs() < 1.0);
        let mut slow = st.clone();
        slow.io_latency = crate::units::SimDuration(100_000_000); // 100 ms: 160 IOPS x 8 MiB = 1.34 GB/s per node
        assert!((throughput(&slow, 1, Direction::Read) - 160.0 * 8.0 * 1024.0 * 1024.0).abs() < 1.0);
    }
}
