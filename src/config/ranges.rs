//! Sane ranges for every size and rate a hardware or workload file gives. Values outside them are
//! refused with the range (exit 2) rather than simulated into saturated clocks, infinite rates or
//! allocations the machine cannot make. What a study of free communication or infinite compute
//! needs is the `ideal` network model or compute model, not an extreme number.

use super::{Document, HardwareSpec, WorkloadSpec};
use crate::error::Result;
use crate::units::{Bandwidth, SimDuration};

/// Bandwidths: 1 MB/s to 1 PB/s.
const BANDWIDTH: (f64, f64) = (1e6, 1e15);
/// Compute peak: 1 GFLOP/s to 1 EFLOP/s per GPU (the nanosecond clock resolves kernels of 1000 FLOPs there).
const PEAK_FLOPS: (f64, f64) = (1e9, 1e18);
/// Latencies and fixed per-operation costs: at most 1 s.
const LATENCY_MAX_NS: u64 = 1_000_000_000;
/// Cluster size: GPUs per node, nodes, GPUs in all.
const GPUS_PER_NODE_MAX: u32 = 1024;
const NODES_MAX: u32 = 1 << 20;
const GPUS_MAX: u64 = 1 << 24;

fn bandwidth(doc: &Document, path: &str, b: Bandwidth) -> Result<()> {
    if b.0 >= BANDWIDTH.0 && b.0 <= BANDWIDTH.1 {
        Ok(())
    } else {
        Err(doc.field_error(path, "must be between 1 MB/s and 1 PB/s"))
    }
}

fn latency(doc: &Document, path: &str, d: SimDuration) -> Result<()> {
    if d.0 <= LATENCY_MAX_NS {
        Ok(())
    } else {
        Err(doc.field_error(path, "must be at most 1 s"))
    }
}

/// Checks every rate, latency and count of a hardware description.
pub fn check_hardware(hw: &HardwareSpec, doc: &Document) -> Result<()> {
    let peak = hw.gpu.peak_flops.flops_per_s();
    if !(PEAK_FLOPS.0..=PEAK_FLOPS.1).contains(&peak) {
        return Err(doc.field_error("gpu.peak_flops", "must be between 1 GFLOP/s and 1 EFLOP/s"));
    }
    if hw.node.gpus > GPUS_PER_NODE_MAX {
        return Err(doc.field_error("node.gpus", format!("must be at most {GPUS_PER_NODE_MAX}")));
    }
    if hw.node.nics > GPUS_PER_NODE_MAX {
        return Err(doc.field_error("node.nics", format!("must be at most {GPUS_PER_NODE_MAX}")));
    }
    let per_switch = hw.node.gpus_per_pcie_switch;
    if per_switch == 0 || hw.node.gpus % per_switch != 0 {
        return Err(doc.field_error(
            "node.gpus_per_pcie_switch",
            format!("must be at least 1 and divide node.gpus ({})", hw.node.gpus),
        ));
    }
    if hw.nodes > NODES_MAX || hw.total_gpus() > GPUS_MAX {
        return Err(doc.field_error(
            "nodes",
            format!("nodes x node.gpus must be at most {GPUS_MAX} GPUs (and nodes at most {NODES_MAX})"),
        ));
    }
    bandwidth(doc, "gpu.memory_bandwidth", hw.gpu.memory_bandwidth)?;
    if let Some(l2) = hw.gpu.l2_bandwidth {
        bandwidth(doc, "gpu.l2_bandwidth", l2)?;
    }
    bandwidth(doc, "node.nvlink.bandwidth", hw.node.nvlink.bandwidth)?;
    bandwidth(doc, "node.nic.bandwidth", hw.node.nic.bandwidth)?;
    if let Some(b) = hw.node.nic_through_cpu {
        bandwidth(doc, "node.nic_through_cpu", b)?;
    }
    latency(doc, "node.nvlink.latency", hw.node.nvlink.latency)?;
    latency(doc, "node.nic.latency", hw.node.nic.latency)?;
    latency(doc, "gpu.kernel_overhead", hw.gpu.kernel_overhead)?;
    latency(doc, "node.host_dispatch", hw.node.host_dispatch)?;
    latency(doc, "gpu.gemm_wave_overhead", hw.gpu.gemm_wave_overhead)?;
    if let Some(w) = hw.gpu.fp8_wave_overhead {
        latency(doc, "gpu.fp8_wave_overhead", w)?;
    }
    if let Some(t) = &hw.network.topology {
        bandwidth(doc, "network.topology.link.bandwidth", t.link.bandwidth)?;
        latency(doc, "network.topology.link.latency", t.link.latency)?;
    }
    if let Some(n) = &hw.network.nccl {
        bandwidth(doc, "network.nccl.speed_intra", n.speed_intra)?;
        bandwidth(doc, "network.nccl.speed_inter", n.speed_inter)?;
        latency(doc, "network.nccl.launch", n.launch)?;
    }
    if let Some(st) = &hw.storage {
        bandwidth(doc, "storage.read_bandwidth", st.read_bandwidth)?;
        bandwidth(doc, "storage.write_bandwidth", st.write_bandwidth)?;
        bandwidth(doc, "storage.nic.bandwidth", st.nic.bandwidth)?;
        latency(doc, "storage.io_latency", st.io_latency)?;
        latency(doc, "storage.nic.latency", st.nic.latency)?;
    }
    if let Some(f) = &hw.failures {
        for (path, v) in [("failures.node_mtbf", f.node_mtbf), ("failures.gpu_mtbf", f.gpu_mtbf)] {
            if v.0 < 1_000_000_000 {
                return Err(doc.field_error(path, "a mean time between failures must be at least 1 s"));
            }
        }
    }
    Ok(())
}

/// Checks the model and batch sizes of a workload (the parallel split is checked against them
/// elsewhere).
pub fn check_workload(w: &WorkloadSpec, doc: &Document) -> Result<()> {
    let (m, b, p) = (&w.model, &w.batch, &w.parallel);
    for (path, v, max) in [
        ("model.layers", m.layers as u64, 100_000),
        ("model.hidden", m.hidden, 1 << 20),
        ("model.heads", m.heads, 1 << 16),
        ("model.head_dim", m.head_dim.unwrap_or(1), 1 << 16),
        ("model.mtp_layers", m.mtp_layers as u64, 16),
        ("model.seq_len", m.seq_len, 1 << 24),
        ("model.vocab", m.vocab, 1 << 31),
        ("batch.global", b.global, 1 << 40),
        ("batch.micro", b.micro, 1 << 24),
        ("parallel.tensor", p.tensor as u64, 1 << 24),
        ("parallel.pipeline", p.pipeline as u64, 1 << 24),
        ("parallel.data", p.data as u64, 1 << 24),
        ("parallel.interleave", p.interleave as u64, 1 << 16),
        ("parallel.context", p.context as u64, 1 << 16),
    ] {
        if v > max {
            return Err(doc.field_error(path, format!("must be at most {max}")));
        }
    }
    if m.mtp_layers > 0 && m.vocab == 0 {
        return Err(doc.field_error(
            "model.mtp_layers",
            "predicts further tokens through the output layer: it needs `model.vocab` above 0",
        ));
    }
    if m.head_dim == Some(0) {
        return Err(doc.field_error("model.head_dim", "must be at least 1"));
    }
    Ok(())
}

/// Checks the `storage` section: positive latency, I/O size, queue depth, IOPS and NICs.
pub fn check_storage(hw: &HardwareSpec, doc: &Document) -> Result<()> {
    if let Some(st) = &hw.storage {
        if st.io_latency.0 == 0 {
            return Err(doc.field_error("storage.io_latency", "must be more than zero"));
        }
        if st.io_size.0 == 0 {
            return Err(doc.field_error("storage.io_size", "must be more than zero"));
        }
        if st.outstanding_ios == 0 {
            return Err(doc.field_error("storage.outstanding_ios", "must be at least 1"));
        }
        if !(st.iops.is_finite() && st.iops > 0.0) {
            return Err(doc.field_error("storage.iops", "must be a positive number of operations per second"));
        }
        if st.nics == 0 {
            return Err(doc.field_error("storage.nics", "must be at least 1"));
        }
        if !(st.nic.efficiency > 0.0 && st.nic.efficiency <= 1.0) {
            return Err(doc.field_error("storage.nic.efficiency", "must be a fraction in (0, 1]"));
        }
    }
    Ok(())
}
