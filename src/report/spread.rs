//! The spread of the iteration time over seeded repetitions (`run --iterations N`): percentiles and
//! a histogram.

use crate::report::plot::Figure;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

/// The spread of the iteration time over seeded repetitions.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IterationStats {
    /// Repetitions (seeds `seed` to `seed + count - 1`).
    pub count: u32,
    /// Mean, s.
    pub mean_s: f64,
    /// Fastest, s.
    pub min_s: f64,
    /// Median (nearest rank), s.
    pub p50_s: f64,
    /// 90th percentile (nearest rank), s.
    pub p90_s: f64,
    /// 99th percentile (nearest rank), s.
    pub p99_s: f64,
    /// Slowest, s.
    pub max_s: f64,
}

impl IterationStats {
    /// Statistics of `times` (at least one).
    pub fn of(times: &[f64]) -> IterationStats {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // nearest rank: the smallest value with at least p of the values at or below it
        let rank = |p: f64| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        IterationStats {
            count: n as u32,
            mean_s: sorted.iter().sum::<f64>() / n as f64,
            min_s: sorted[0],
            p50_s: rank(0.5),
            p90_s: rank(0.9),
            p99_s: rank(0.99),
            max_s: sorted[n - 1],
        }
    }
}

/// Histogram of `times` in `bins` equal bins from min to max: (bin start, bin end, count).
pub fn histogram(times: &[f64], bins: usize) -> Vec<(f64, f64, u32)> {
    let lo = times.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1e-9 };
    let mut counts = vec![0u32; bins];
    for &t in times {
        counts[(((t - lo) / width) as usize).min(bins - 1)] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (lo + i as f64 * width, lo + (i + 1) as f64 * width, c))
        .collect()
}

/// A histogram of iteration times.
pub struct HistogramChart<'a> {
    /// Title.
    pub title: &'a str,
    /// (bin start s, bin end s, count).
    pub bins: &'a [(f64, f64, u32)],
}

impl Figure for HistogramChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 600)
    }
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let lo = self.bins.first().map_or(0.0, |b| b.0);
        let hi = self.bins.last().map_or(1.0, |b| b.1).max(lo + 1e-9);
        let top = self.bins.iter().map(|b| b.2).max().unwrap_or(1) as f64 * 1.15;
        let mut chart = ChartBuilder::on(&area)
            .caption(self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("iteration time (s)")
            .y_desc("iterations")
            .x_label_formatter(&|x| format!("{x:.4}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        let colour = RGBColor(31, 119, 180);
        chart
            .draw_series(
                self.bins
                    .iter()
                    .map(|&(a, b, c)| Rectangle::new([(a, 0.0), (b, c as f64)], colour.mix(0.7).filled())),
            )
            .map_err(|e| e.to_string())?;
        area.present().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_ranks() {
        // 1..=100: p50 is the 50th value, p90 the 90th, p99 the 99th
        let times: Vec<f64> = (1..=100).rev().map(|i| i as f64).collect();
        let s = IterationStats::of(&times);
        assert_eq!(
            (s.min_s, s.p50_s, s.p90_s, s.p99_s, s.max_s),
            (1.0, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(s.mean_s, 50.5);
        let one = IterationStats::of(&[3.0]);
        assert_eq!((one.p50_s, one.p99_s), (3.0, 3.0));
    }

    #[test]
    fn histogram_counts_every_time_once() {
        let h = histogram(&[1.0, 1.5, 2.0, 2.0, 3.0], 4);
        assert_eq!(h.iter().map(|b| b.2).sum::<u32>(), 5);
        assert_eq!(h[0], (1.0, 1.5, 1));
        assert_eq!(h[3].2, 1, "the maximum falls in the last bin");
    }
}
