//! GPU compute time: a roofline with a shape-dependent GEMM efficiency.
//!
//! A GEMM is cut into output tiles; tiles run in waves over the SMs, so a problem whose tile count
//! is just above a multiple of the SM count wastes most of its last wave (wave quantization).
//! Each wave pays a fixed prologue and epilogue (`gemm_wave_overhead`), and each tile runs at the
//! per-SM tensor rate times the GEMM efficiency, unless its
//! arithmetic intensity (tm tn / (tm + tn) FLOP per byte of operands) is too low for its share of
//! L2 bandwidth. The library picks the fastest tile shape. The kernel then takes at least the time
//! to stream its operands through HBM, plus a fixed per-kernel overhead:
//!
//! `time = max(waves x (tile time + wave overhead), bytes / (HBM bandwidth x efficiency)) + overhead`.
//!
//! The `ideal` model charges exactly FLOPs / peak.

use crate::config::{ComputeModelKind, GpuSpec};
use crate::ops::{FusedAttention, Kernel, KernelKind};
use crate::units::SimDuration;

/// Prices kernels on one GPU model.
#[derive(Clone, Debug)]
pub struct ComputeModel {
    gpu: GpuSpec,
}

impl ComputeModel {
    /// The model for a GPU.
    pub fn new(gpu: &GpuSpec) -> Self {
        ComputeModel { gpu: gpu.clone() }
    }

    /// Seconds for one kernel.
    pub fn kernel_seconds(&self, k: &Kernel) -> f64 {
        self.kernel_seconds_on(k, self.gpu.sms)
    }

    /// Seconds for one kernel that gets `free_sms` of the GPU's SMs (communication kernels hold the
    /// rest): a GEMM's tiles run in waves over the free SMs, each at the per-SM rate; other
    /// tensor-core work runs at the free SMs' share of the peak; streaming stays bound by HBM.
    pub fn kernel_seconds_on(&self, k: &Kernel, free_sms: u32) -> f64 {
        let gpu = &self.gpu;
        let free_sms = free_sms.clamp(1, gpu.sms.max(1));
        // the share of the tensor-core peak the free SMs have
        let share = free_sms as f64 / gpu.sms.max(1) as f64;
        let peak = gpu.peak_flops.flops_per_s();
        if let Kernel::Measured { ns } = *k {
            return ns as f64 * 1e-9;
        }
        if gpu.compute == ComputeModelKind::Ideal {
            return k.flops() / peak;
        }
        let hbm = gpu.memory_bandwidth.bytes_per_s() * gpu.memory_efficiency;
        let overhead = gpu.kernel_overhead.as_secs_f64();
        match *k {
            Kernel::Stream { bytes } => bytes as f64 / hbm + overhead,
            Kernel::Attention { flops, bytes, library } => {
                let flash2 = gpu.attention_efficiency.unwrap_or(gpu.gemm_efficiency);
                let efficiency = match library {
                    FusedAttention::Flash2 => flash2,
                    FusedAttention::Cudnn => gpu.cudnn_attention_efficiency.unwrap_or(flash2),
                    FusedAttention::Flash1 => gpu.flash1_attention_efficiency.unwrap_or(flash2),
                };
                (flops as f64 / (peak * share * efficiency)).max(bytes as f64 / hbm) + overhead
            }
            Kernel::Generic { flops, bytes } => {
                (flops as f64 / (peak * share * gpu.gemm_efficiency)).max(bytes as f64 / hbm) + overhead
            }
            Kernel::Measured { .. } => unreachable!("handled above"),
            Kernel::Gemm { batch, m, n, k: kk } | Kernel::Gemm8 { batch, m, n, k: kk } => {
                if batch == 0 || m == 0 || n == 0 || kk == 0 {
                    return overhead;
                }
                // FP8: 1-byte operands at the FP8 tensor rate (with its own wave overhead), 16-bit output
                let (rate, operand, wave) = match *k {
                    Kernel::Gemm8 { .. } => (
                        gpu.fp8_flops.map_or(peak, |r| r.flops_per_s())
                            * gpu.fp8_efficiency.unwrap_or(gpu.gemm_efficiency),
                        1.0,
                        gpu.fp8_wave_overhead.unwrap_or(gpu.gemm_wave_overhead).as_secs_f64(),
                    ),
                    _ => (peak * gpu.gemm_efficiency, 2.0, gpu.gemm_wave_overhead.as_secs_f64()),
                };
                let operand_bytes = batch as f64 * (operand * (m * kk + kk * n) as f64 + 2.0 * (m * n) as f64);
                let compute = gpu
                    .gemm_tiles
                    .iter()
                    .map(|t| {
                        let tile = (t.0 as u64, t.1 as u64);
                        self.tiled_seconds(batch, m, n, kk, tile, free_sms, rate, operand, wave)
                    })
                    .fold(f64::INFINITY, f64::min);
                let cast = match *k {
                    Kernel::Gemm8 { .. } => 3.0 * (batch * m * kk) as f64 / hbm + overhead,
                    _ => 0.0,
                };
                compute.max(operand_bytes / hbm) + overhead + cast
            }
        }
    }

    /// Compute-bound time of a GEMM cut into `tm` x `tn` tiles run in waves over `free_sms` SMs,
    /// at `rate` FLOP/s over all SMs on large tiles (peak x efficiency) with operands of `operand`
    /// bytes, each wave costing `wave` seconds more.
    #[allow(clippy::too_many_arguments)]
    fn tiled_seconds(
        &self,
        batch: u64,
        m: u64,
        n: u64,
        k: u64,
        (tm, tn): (u64, u64),
        free_sms: u32,
        rate: f64,
        operand: f64,
        wave: f64,
    ) -> f64 {
        let gpu = &self.gpu;
        let free = free_sms as u64;
        let tiles = batch * m.div_ceil(tm) * n.div_ceil(tn);
        let waves = tiles.div_ceil(free);
        let sm_rate = rate / gpu.sms as f64;
        let rate = match gpu.l2_bandwidth {
            Some(l2) => {
                let active = tiles.min(free) as f64;
                // FLOP per operand byte: 2 tm tn FLOP per (tm + tn) elements of `operand` bytes
                let intensity = 2.0 * (tm * tn) as f64 / ((tm + tn) as f64 * operand);
                sm_rate.min(intensity * l2.bytes_per_s() / active)
            }
            None => sm_rate,
        };
        waves as f64 * ((2.0 * (tm * tn * k) as f64) / rate + wave)
    }

    /// A list of kernels run back to back: their seconds (summed in order, as [`Self::op_duration`]
    /// does) and the share of them each kind of kernel takes ([`KernelKind`] order; all zero for an
    /// op of no time), each kernel priced once.
    pub fn op_seconds_by_kind(&self, kernels: &[Kernel]) -> (f64, [f64; KernelKind::COUNT]) {
        let mut shares = [0.0; KernelKind::COUNT];
        let mut total = 0.0;
        for k in kernels {
            let t = self.kernel_seconds(k);
            shares[k.kind().index()] += t;
            total += t;
        }
        if total > 0.0 {
            shares.iter_mut().for_each(|s| *s /= total);
        }
        (total, shares)
    }

    /// Duration of a list of kernels run back to back.
    pub fn op_duration(&self, kernels: &[Kernel]) -> SimDuration {
        SimDuration::from_secs_f64(kernels.iter().map(|k| self.kernel_seconds(k)).sum())
    }

    /// Seconds of a list of kernels run back to back on `free_sms` SMs.
    pub fn op_seconds_on(&self, kernels: &[Kernel], free_sms: u32) -> f64 {
        kernels.iter().map(|k| self.kernel_seconds_on(k, free_sms)).sum()
    }

    /// SMs of the GPU.
    pub fn sms(&self) -> u32 {
        self.gpu.sms
    }

    /// Achieved fraction of peak for one GEMM shape (for reports and tests).
    pub fn gemm_efficiency(&self, batch: u64, m: u64, n: u64, k: u64) -> f64 {
        let kernel = Kernel::Gemm { batch, m, n, k };
        kernel.flops() / self.kernel_seconds(&kernel) / self.gpu.peak_flops.flops_per_s()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Document, HardwareSpec};

    fn a100() -> ComputeModel {
        let doc = Document::parse("dgx-a100", crate::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
        ComputeModel::new(&HardwareSpec::from_document(&doc).unwrap().gpu)
    }

    #[test]
    fn fp8_gemms_run_at_the_fp8_rate_plus_their_input_cast() {
        // dgx-h100: 989 TFLOP/s BF16 at efficiency 0.722, 1979 FP8 at 0.647, 132 SMs, 1.5 us per
        // wave of BF16 tiles and 2 us of FP8 ones, no L2 limit, 1 us per kernel, HBM 3.35 TB/s x 0.92.
        // 8192^3 in 256 x 128 tiles: 32 x 64 = 2048 tiles, ceil(2048 / 132) = 16 waves, each one
        // tile's 2 x 256 x 128 x 8192 FLOPs at the per-SM rate (BF16: 99.2 us + 1.5 us; 128 x 128
        // would take 32 x (49.6 + 1.5), 64 x 64 125 x (12.4 + 1.5): more waves cost more overheads).
        // FP8: 16 x (55.4 + 2) us; the cast of the 8192 x 8192 input adds 3 bytes per element
        // through HBM and its 1 us.
        let doc = Document::parse("dgx-h100", crate::config::builtin_hardware("dgx-h100").unwrap()).unwrap();
        let h100 = ComputeModel::new(&HardwareSpec::from_document(&doc).unwrap().gpu);
        let tile = |rate: f64| 2.0 * 256.0 * 128.0 * 8192.0 / (rate / 132.0);
        let bf16 = h100.kernel_seconds(&Kernel::Gemm {
            batch: 1,
            m: 8192,
            n: 8192,
            k: 8192,
        });
        let fp8 = h100.kernel_seconds(&Kernel::Gemm8 {
            batch: 1,
            m: 8192,
            n: 8192,
            k: 8192,
        });
        let expected_bf16 = 16.0 * (tile(989e12 * 0.722) + 1.5e-6) + 1e-6;
        assert!((bf16 / expected_bf16 - 1.0).abs() < 1e-12, "{bf16}");
        let cast = 3.0 * 8192.0 * 8192.0 / (3.35e12 * 0.92) + 1e-6;
        let expected_fp8 = 16.0 * (tile(1979e12 * 0.647) + 2e-6) + 1e-6 + cast;
        assert!((fp8 / expected_fp8 - 1.0).abs() < 1e-12, "{fp8}");
    }

    #[test]
    fn kernels_beside_communication_get_the_free_sms() {
        // dgx-h100 with 24 SMs held by NCCL: 8192^3 BF16 in 256 x 128 tiles, 2048 tiles over the
        // 108 free SMs take ceil(2048 / 108) = 19 waves instead of 16, each at the same per-SM rate
        // (989 TFLOP/s x 0.722 / 132, plus 1.5 us per wave); cuDNN attention runs at 108 / 132 of
        // its rate; streaming is HBM-bound and keeps its time.
        let doc = Document::parse("dgx-h100", crate::config::builtin_hardware("dgx-h100").unwrap()).unwrap();
        let h100 = ComputeModel::new(&HardwareSpec::from_document(&doc).unwrap().gpu);
        let gemm = Kernel::Gemm {
            batch: 1,
            m: 8192,
            n: 8192,
            k: 8192,
        };
        let tile = 2.0 * 256.0 * 128.0 * 8192.0 / (989e12 * 0.722 / 132.0);
        let got = h100.kernel_seconds_on(&gemm, 108);
        assert!((got / (19.0 * (tile + 1.5e-6) + 1e-6) - 1.0).abs() < 1e-12, "{got}");
        assert_eq!(h100.kernel_seconds_on(&gemm, 132), h100.kernel_seconds(&gemm));
        let attention = Kernel::Attention {
            flops: 1 << 40,
            bytes: 1 << 20,
            library: FusedAttention::Cudnn,
        };
        let (full, shared) = (h100.kernel_seconds(&attention), h100.kernel_seconds_on(&attention, 108));
        assert!(
            ((shared - 1e-6) / (full - 1e-6) - 132.0 / 108.0).abs() < 1e-12,
            "{full} {shared}"
        );
        let stream = Kernel::Stream { bytes: 1 << 30 };
        assert_eq!(h100.kernel_seconds_on(&stream, 108), h100.kernel_seconds(&stream));
    }

    #[test]
    fn each_fused_attention_library_runs_at_its_own_rate() {
        // dgx-h100: 2^40 FLOPs (compute-bound: 1 MiB of operands) take 2^40 / (989 TFLOP/s x rate)
        // plus the 1 us kernel overhead, at 0.25 for FlashAttention-2, 0.43 for cuDNN and 0.108 for
        // FlashAttention 1
        let doc = Document::parse("dgx-h100", crate::config::builtin_hardware("dgx-h100").unwrap()).unwrap();
        let h100 = ComputeModel::new(&HardwareSpec::from_document(&doc).unwrap().gpu);
        let flops = 1u64 << 40;
        for (library, rate) in [
            (FusedAttention::Flash2, 0.25),
            (FusedAttention::Cudnn, 0.43),
            (FusedAttention::Flash1, 0.108),
        ] {
            let kernel = Kernel::Attention {
                flops,
                bytes: 1 << 20,
                library,
            };
            let expected = flops as f64 / (989e12 * rate) + 1e-6;
            let got = h100.kernel_seconds(&kernel);
            assert!(
                (got / expected - 1.0).abs() < 1e-12,
                "{library:?}: {got} s, expected {expected}"
            );
        }
    }

    #[test]
    fn fp8_waves_cost_the_bf16_overhead_unless_stated() {
        // without fp8_wave_overhead each of 8192^3's 16 FP8 waves pays gemm_wave_overhead (1.5 us)
        // instead of 2 us: 16 x 0.5 us = 8 us less
        let doc = Document::parse("dgx-h100", crate::config::builtin_hardware("dgx-h100").unwrap()).unwrap();
        let mut gpu = HardwareSpec::from_document(&doc).unwrap().gpu;
        let k = Kernel::Gemm8 {
            batch: 1,
            m: 8192,
            n: 8192,
            k: 8192,
        };
        let stated = ComputeModel::new(&gpu).kernel_seconds(&k);
        gpu.fp8_wave_overhead = None;
        let default = ComputeModel::new(&gpu).kernel_seconds(&k);
        assert!(((stated - default) - 16.0 * 0.5e-6).abs() < 1e-12, "{stated} {default}");
    }

    #[test]
    fn large_gemm_time_is_waves_of_tiles() {
        // 8192^3 on dgx-a100: 256 x 128 tiles (the fastest listed) make 32 x 64 = 2048 tiles, 19 waves
        // over 108 SMs; each wave is one tile's 2 x 256 x 128 x 8192 FLOPs at 312 TFLOP/s x 0.805 / 108
        // per SM plus the 1.5 us wave overhead; plus the 1.3 us kernel overhead. That is 249.0 TFLOP/s,
        // against 253.7 published (cuBLASLt, Azure ND A100 v4).
        let sm_rate = 312e12 * 0.805 / 108.0;
        let expected = 19.0 * (2.0 * 256.0 * 128.0 * 8192.0 / sm_rate + 1.5e-6) + 1.3e-6;
        let k = Kernel::Gemm {
            batch: 1,
            m: 8192,
            n: 8192,
            k: 8192,
        };
        let got = a100().kernel_seconds(&k);
        assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
        assert!((k.flops() / got / 253.7e12 - 1.0).abs() < 0.02);
    }

    #[test]
    fn wave_quantization_and_small_shapes_cost_efficiency() {
        let model = a100();
        let big = model.gemm_efficiency(1, 8192, 8192, 8192);
        // 128 x 128 outputs: one tile on one of 108 SMs, the rest idle
        let tiny = model.gemm_efficiency(1, 128, 128, 8192);
        assert!(tiny < big / 20.0, "{tiny} vs {big}");
        // a skinny reduction (k = 64) is memory-bound
        let skinny = model.gemm_efficiency(1, 8192, 8192, 64);
        assert!(skinny < 0.5 * big, "{skinny}");
    }

    #[test]
    fn ideal_model_is_flops_over_peak() {
        let mut gpu = a100().gpu;
        gpu.compute = ComputeModelKind::Ideal;
        let m = ComputeModel::new(&gpu);
        // 2 * 1000^3 FLOPs / 312e12 = 6.41 us
        let k = Kernel::Gemm {
            batch: 1,
            m: 1000,
            n: 1000,
            k: 1000,
        };
        assert!((m.kernel_seconds(&k) - 2e9 / 312e12).abs() < 1e-15);
        assert_eq!(m.kernel_seconds(&Kernel::Stream { bytes: 1 << 30 }), 0.0);
    }
}
