//! `clustersim validate`: reproduces the Megatron-LM figures and prints the error table.

use crate::cli::ValidateArgs;
use crate::error::Result;
use crate::studies;

/// `clustersim validate`.
pub fn validate_command(args: &ValidateArgs) -> Result<()> {
    let start = std::time::Instant::now();
    crate::report::output::check_out_dir(&args.out)?;
    let (summaries, _) = studies::validate::validate(&args.out, &args.set, true)?;
    println!(
        "{:<8} {:>7} {:>16} {:>15} {:>12}",
        "figure", "points", "mean abs. error", "max abs. error", "order kept"
    );
    for f in &summaries {
        let [figure, points, mean, max, kept] = f.columns();
        println!("{figure:<8} {points:>7} {mean:>16} {max:>15} {kept:>12}");
    }
    for f in summaries.iter().filter(|f| f.did_not_run > 0) {
        let why = f.first_failure.as_deref().unwrap_or("");
        println!(
            "{}: {} of {} points did not run; the first: {why}",
            f.figure, f.did_not_run, f.points
        );
    }
    let overrides = args
        .set
        .iter()
        .map(|s| crate::config::Override::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let hw = crate::config::load_run_config(
        &crate::config::Source::Default,
        &crate::config::Source::Default,
        &overrides,
    )?
    .hardware;
    let collectives = studies::nccl_tests::compare(&hw)?;
    crate::report::output::write_atomic(&args.out.join("nccl-tests.csv"), |w| {
        w.write_all(studies::nccl_tests::csv(&collectives).as_bytes())
    })?;
    let gemms = studies::gemm::compare(&hw.gpu);
    crate::report::output::write_atomic(&args.out.join("nccl-tests.md"), |w| {
        w.write_all(studies::nccl_tests::markdown(&collectives, &hw.name).as_bytes())
    })?;
    write_gemm_table(&args.out.join("gemm.md"), &hw.name, &gemms)?;
    let mut attention = vec![(hw.name.clone(), studies::attention_kernels::compare(&hw.gpu))];
    // the H100 and H200 presets against this project's own measurements of those GPUs
    let mut measured = Vec::new();
    for preset in ["dgx-h100", "dgx-h200"] {
        let hw = crate::config::load_run_config(
            &crate::config::Source::Named(preset.into()),
            &crate::config::Source::Default,
            &[],
        )?
        .hardware;
        let rows = studies::gemm::compare(&hw.gpu);
        let file = format!("gemm-{}.md", preset.trim_start_matches("dgx-"));
        write_gemm_table(&args.out.join(file), &hw.name, &rows)?;
        if preset == "dgx-h200" {
            write_contention_table(&args.out.join("sm-contention-h200.md"), &hw)?;
        } else {
            attention.push((hw.name.clone(), studies::attention_kernels::compare(&hw.gpu)));
        }
        measured.push((hw.name, rows));
    }
    println!(
        "\n{:<28} {:<14} {:>22} {:>10} {:>10} {:>8}",
        "gemm source", "kind", "m x n x k", "published", "simulated", "error"
    );
    for g in &gemms {
        let (m, n, k) = g.mnk;
        println!(
            "{:<28} {:<14} {:>22} {:>10.1} {:>10.1} {:>+7.1}%",
            g.source,
            g.kind,
            format!("{m}x{n}x{k}"),
            g.published_tflops,
            g.simulated_tflops,
            g.error_pct()
        );
    }
    println!(
        "\n{:<16} {:<22} {:>5} {:>6} {:>8} {:>7} {:>10} {:>10}",
        "collective", "source", "GPUs", "nodes", "from", "points", "mean err", "max err"
    );
    for m in studies::nccl_tests::summarise(&collectives, 64 << 10) {
        println!(
            "{:<16} {:<22} {:>5} {:>6} {:>8} {:>7} {:>9.1}% {:>9.1}%",
            m.op.name(),
            m.source,
            m.gpus,
            m.nodes,
            crate::units::human_size(m.from_bytes),
            m.points,
            m.mean_abs_pct,
            m.max_abs_pct.0
        );
    }
    write_attention_table(&args.out.join("attention.md"), &attention)?;
    for (name, rows) in &attention {
        for method in ["pytorch", "flash1", "flash2"] {
            let (mean, max, n) = studies::attention_kernels::errors(rows, method, false);
            let (train_mean, _, train_n) = studies::attention_kernels::errors(rows, method, true);
            println!(
                "attention {name} {method}: {n} published points, mean abs. error {mean:.1}%, max {max:.1}% \
                 ({train_n} causal, head dim 128, seq >= 4096: {train_mean:.1}%)"
            );
        }
    }
    for (name, rows) in &measured {
        for source in studies::gemm::sources(rows) {
            for dtype in ["bf16", "fp8"] {
                let (mean, max, n) = studies::gemm::shape_errors(rows, source, dtype);
                println!(
                    "gemm {name} {source} {dtype}: {n} measured shapes, mean abs. error {mean:.1}%, max {max:.1}%"
                );
            }
        }
    }
    println!("wrote {} in {:.1} s", args.out.display(), start.elapsed().as_secs_f64());
    Ok(())
}

/// The SMs held by communication: the model against the kernels measured beside SM-holding blocks
/// on an H200 (1 to 32 SMs held).
fn write_contention_table(path: &std::path::Path, hw: &crate::config::HardwareSpec) -> Result<()> {
    let rows = studies::sm_contention::compare(&hw.gpu, 32);
    crate::report::output::write_atomic(path, |w| {
        writeln!(
            w,
            "# Kernels beside SM-holding blocks, measured and modelled ({})\n\nRegenerated by `clustersim \
             validate` from `workloads/reference/comm-contention-h200.csv`: k thread blocks hold k SMs and \
             sleep (move nothing) or copy HBM; the slowdown of back-to-back kernels beside them against \
             alone, and the model's (the kernel on the SMs left).\n",
            hw.name
        )?;
        w.write_all(studies::sm_contention::markdown(&rows).as_bytes())
    })
}

/// The attention kernels against the charts released with FlashAttention-2, one section per GPU.
fn write_attention_table(
    path: &std::path::Path,
    gpus: &[(String, Vec<studies::attention_kernels::AttentionComparison>)],
) -> Result<()> {
    crate::report::output::write_atomic(path, |w| {
        writeln!(
            w,
            "# Attention forward + backward against the charts of FlashAttention-2's release\n\nRegenerated by \
             `clustersim validate` from `workloads/reference/attention-fa2-release.csv` (fp16, model width 2048, \
             16k tokens): `pytorch` is the unfused core priced kernel by kernel, `flash1` and `flash2` the fused \
             kernels at the preset's rates.\n"
        )?;
        for (name, rows) in gpus {
            writeln!(w, "## {name}\n")?;
            w.write_all(studies::attention_kernels::markdown(rows).as_bytes())?;
            writeln!(w)?;
        }
        Ok(())
    })
}

/// `gemm.md`-style table of one GPU's GEMM comparison.
fn write_gemm_table(path: &std::path::Path, hardware: &str, rows: &[studies::gemm::GemmComparison]) -> Result<()> {
    crate::report::output::write_atomic(path, |w| {
        writeln!(
            w,
            "# GEMMs against measured rates ({hardware})\n\nRegenerated by `clustersim validate`.\n"
        )?;
        w.write_all(studies::gemm::markdown(rows).as_bytes())
    })
}
