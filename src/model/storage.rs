//! Storage: how fast a set of nodes reads or writes the parallel filesystem, and how long a
//! Megatron-style checkpoint takes.
//!
//! Per node, IOPS = outstanding I/Os / latency of one I/O, so a node streams
//! I/O size x outstanding / latency bytes per second, capped by its storage NICs. All clients
//! together are capped by the filesystem's aggregate bandwidth (read or write) and by its IOPS
//! limit x I/O size: throughput = min(nodes x per-node, filesystem, IOPS limit x I/O size).
//! A transfer of B bytes then takes one I/O latency plus B / throughput.

use crate::config::WorkloadSpec;
use crate::config::{HardwareSpec, StorageSpec};
use crate::workload::generate::{Layout, RankCoord};
use crate::workload::transformer::total_params;

/// Bytes per parameter in a Megatron checkpoint: 16-bit weights (2), fp32 master weights (4),
/// Adam momentum and variance (4 + 4). For GPT-1T: 14 x 1.0e12 = 14 TB, as SC'21 reports 13.8 TB.
pub const CHECKPOINT_BYTES_PER_PARAM: f64 = 14.0;

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

/// A checkpoint of a workload on a machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Total bytes.
    pub bytes: f64,
    /// Nodes that write it: those of data-parallel replica 0 (each model-parallel rank writes its shard).
    pub writer_nodes: u32,
    /// Nodes that read it back: all nodes of the job.
    pub reader_nodes: u32,
    /// Save time, s.
    pub save_s: f64,
    /// Load time, s: each shard is read once from the filesystem.
    pub load_s: f64,
}

/// Checkpoint size and times of `w` on `hw`'s storage.
pub fn checkpoint(w: &WorkloadSpec, hw: &HardwareSpec, st: &StorageSpec) -> Checkpoint {
    let bytes = CHECKPOINT_BYTES_PER_PARAM * total_params(&w.model);
    let lay = Layout::of(w);
    let mut writers: Vec<u32> = (0..lay.p)
        .flat_map(|stage| (0..lay.t).map(move |tensor| lay.rank(RankCoord { tensor, data: 0, stage }) / hw.node.gpus))
        .collect();
    writers.sort_unstable();
    writers.dedup();
    let writer_nodes = writers.len() as u32;
    let reader_nodes = (lay.ranks()).div_ceil(hw.node.gpus);
    Checkpoint {
        bytes,
        writer_nodes,
        reader_nodes,
        save_s: transfer_seconds(st, bytes, writer_nodes, Direction::Write),
        load_s: transfer_seconds(st, bytes, reader_nodes, Direction::Read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, builtin_workload, Document};

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

    /// Megatron SC'21 s5.10: the 1T model's 13.8 TB checkpoint loads in about 14 s at 1 TB/s and
    /// saves at 273 GB/s (so about 50 s) on 384 DGX A100 nodes.
    #[test]
    fn checkpoint_of_the_1t_model_on_selene() {
        let hw =
            HardwareSpec::from_document(&Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap())
                .unwrap();
        let w = WorkloadSpec::from_document(&Document::parse("gpt-1t", builtin_workload("gpt-1t").unwrap()).unwrap())
            .unwrap();
        let c = checkpoint(&w, &hw, hw.storage.as_ref().unwrap());
        // P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12 l h)) = 1.008e12 parameters, x 14 bytes = 14.1 TB
        assert!((c.bytes / 13.8e12 - 1.0).abs() < 0.03, "{}", c.bytes);
        assert_eq!(c.reader_nodes, 384);
        assert_eq!(
            c.writer_nodes, 64,
            "data-parallel replica 0: 64 stages x 8 tensor ranks = 64 nodes"
        );
        assert!((c.load_s - 14.1).abs() < 0.5, "load {} s", c.load_s);
        assert!(
            (c.bytes / c.save_s / 273e9 - 1.0).abs() < 0.01,
            "save at {} B/s",
            c.bytes / c.save_s
        );
    }
}
