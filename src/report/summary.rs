//! The short human summary printed by `run`.

use super::Report;
use std::fmt::Write;

/// Formats seconds with a unit that keeps 3-4 significant digits.
pub fn human_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} us", s * 1e6)
    }
}

/// The text summary: configuration, headline metrics, time breakdown, bubble per stage.
pub fn text(r: &Report) -> String {
    let p = &r.parallel;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "clustersim: {} on {} ({} GPUs), {} network model, {} compute model, seed {}",
        r.name, r.hardware, r.gpus, r.network_model, r.compute_model, r.seed
    );
    let trace = p.schedule == "trace";
    if trace {
        let _ = writeln!(
            o,
            "  a trace of {} ranks (no workload in its header: rates from the trace's own kernels)",
            r.gpus
        );
    } else {
        let _ = writeln!(
            o,
            "  split tensor {}{} x pipeline {} x data {}, schedule {}{}, recompute {}, batch {} / micro {} -> {} microbatches per pipeline",
            p.tensor,
            if p.context > 1 { format!(" x context {}", p.context) } else { String::new() },
            p.pipeline,
            p.data,
            p.schedule,
            if p.interleave > 1 { format!(" (v = {})", p.interleave) } else { String::new() },
            p.recompute,
            p.global_batch,
            p.microbatch,
            p.microbatches
        );
    }
    let _ = writeln!(o);
    let rows: [(&str, String); 8] = [
        ("iteration time", human_seconds(r.iteration_time_s)),
        (
            "throughput per GPU",
            format!("{:.1} TFLOP/s (Megatron eq. 3)", r.tflops_per_gpu),
        ),
        ("MFU", format!("{:.1} %", r.mfu * 100.0)),
        ("samples/s", format!("{:.2}", r.samples_per_s)),
        ("tokens/s", format!("{:.0}", r.tokens_per_s)),
        ("bubble / iteration", format!("{:.4}", r.bubble.fraction)),
        (
            "bubble / ideal busy",
            format!("{:.4}  (Megatron's (p-1)/m)", r.bubble.ratio),
        ),
        ("events", format!("{}", r.events)),
    ];
    for (k, v) in rows {
        // a trace has no samples, tokens or pipeline, and its FLOP/s are the kernels' own
        if trace && !matches!(k, "iteration time" | "MFU" | "events") {
            if k == "throughput per GPU" {
                let _ = writeln!(o, "  {k:<20} {:.1} TFLOP/s (kernels in the trace)", r.tflops_per_gpu);
            }
            continue;
        }
        let _ = writeln!(o, "  {k:<20} {v}");
    }
    if let Some(mem) = &r.memory {
        let gib = |x: f64| x / (1u64 << 30) as f64;
        let _ = writeln!(
            o,
            "  {:<20} {:.1} GiB of {:.1} GiB: {}",
            "peak memory per GPU",
            gib(mem.peak_bytes_per_gpu),
            gib(mem.capacity_bytes),
            if mem.fits { "fits" } else { "OUT OF MEMORY" }
        );
    }
    if let Some(it) = &r.iterations {
        let _ = writeln!(
            o,
            "  {:<20} {} seeds: p50 {}, p90 {}, p99 {}, max {}",
            "iteration spread",
            it.count,
            human_seconds(it.p50_s),
            human_seconds(it.p90_s),
            human_seconds(it.p99_s),
            human_seconds(it.max_s)
        );
    }
    if let Some(w) = r.sync_wait_caused_by.first() {
        let _ = writeln!(
            o,
            "  {:<20} rank {} arrived last at collectives: others waited {} for it",
            "waited for most",
            w.rank,
            human_seconds(w.seconds)
        );
    }
    let b = &r.breakdown;
    let _ = writeln!(
        o,
        "\n  mean per GPU: compute {}, exposed comm {}, bubble {}, sync wait {}, idle {} (overlapped comm {})",
        human_seconds(b.compute_s),
        human_seconds(b.exposed_comm_s),
        human_seconds(b.bubble_s),
        human_seconds(b.sync_wait_s),
        human_seconds(b.idle_s),
        human_seconds(b.overlapped_comm_s)
    );
    let k = &b.kernels;
    let kernel_time = k.gemm_s + k.attention_s + k.memory_bound_s + k.other_s;
    if kernel_time > 0.0 {
        let share = |s: f64| format!("{:.0} %", 100.0 * s / kernel_time);
        let mut kinds = vec![
            format!("GEMMs {}", share(k.gemm_s)),
            format!("memory-bound {}", share(k.memory_bound_s)),
        ];
        if k.attention_s > 0.0 {
            kinds.insert(1, format!("fused attention {}", share(k.attention_s)));
        }
        if k.other_s > 0.0 {
            kinds.push(format!("other {}", share(k.other_s)));
        }
        let _ = writeln!(o, "  kernel time by kind: {}", kinds.join(", "));
    }
    if b.sm_contention_s > 0.0 {
        let _ = writeln!(
            o,
            "  of the compute, {} lost to the SMs that overlapped communication held",
            human_seconds(b.sm_contention_s)
        );
    }
    if b.host_wait_s > 0.0 {
        let _ = writeln!(
            o,
            "  of the compute, {} waiting for the host to launch kernels",
            human_seconds(b.host_wait_s)
        );
    }
    if r.bubble.per_stage.len() > 1 {
        let _ = writeln!(o, "\n  stage   compute      exposed comm  bubble       bubble/iter");
        for s in r.bubble.per_stage.iter().take(16) {
            let _ = writeln!(
                o,
                "  {:<7} {:<12} {:<13} {:<12} {:.4}",
                s.stage,
                human_seconds(s.breakdown.compute_s),
                human_seconds(s.breakdown.exposed_comm_s),
                human_seconds(s.bubble_s),
                s.fraction
            );
        }
        if r.bubble.per_stage.len() > 16 {
            let _ = writeln!(o, "  ... {} more stages in report.json", r.bubble.per_stage.len() - 16);
        }
    }
    o
}
