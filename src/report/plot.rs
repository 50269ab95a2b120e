//! Plots drawn with plotters, text rendered from the bundled DejaVu Sans (no system fonts needed).

use crate::error::{Error, Result};
use crate::report::output::{commit, temporary_path};
use crate::report::timeline::Span;
use crate::workload::layout::{Layout, RankCoord};
use crate::workload::{Phase, TaskGraph, TaskKind};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the bundled font as "sans-serif" (once per process).
pub fn register_font() {
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            eprintln!("warning: the bundled font could not be loaded; plots will have no text");
        }
    });
}

/// A plot that can draw itself on any plotters backend.
pub trait Figure {
    /// Pixel size of the image.
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure.
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> std::result::Result<(), String>;
}

/// Writes a figure to `stem`.png and `stem`.svg, each through a temporary file.
pub fn write_figure(stem: &Path, figure: &impl Figure) -> Result<()> {
    register_font();
    let fail = |e: String| Error::Internal(format!("cannot draw {}: {e}", stem.display()));
    let png = stem.with_extension("png");
    let tmp = temporary_path(&png);
    figure
        .draw(BitMapBackend::new(&tmp, figure.size()).into_drawing_area())
        .map_err(fail)?;
    commit(&tmp, &png)?;
    let mut svg = String::new();
    figure
        .draw(SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area())
        .map_err(fail)?;
    crate::report::output::write_atomic(&stem.with_extension("svg"), |w| w.write_all(svg.as_bytes()))
}

/// One bar of the Gantt chart: a forward or backward pass of one microbatch on one stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Pipeline stage (row).
    pub stage: u32,
    /// Phase (colour).
    pub phase: Phase,
    /// Microbatch (label).
    pub microbatch: u32,
    /// Model chunk (shade).
    pub chunk: u8,
    /// Start in seconds.
    pub start_s: f64,
    /// End in seconds.
    pub end_s: f64,
}

/// Merges the compute spans of tensor rank 0, data replica 0 of each stage into one block per
/// (phase, microbatch, chunk) run.
pub fn schedule_blocks(g: &TaskGraph, layout: Layout, spans: &[Span]) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for sp in spans {
        let t = sp.task as usize;
        let r = g.task_rank[t];
        let c = layout.coord(r);
        if c != (RankCoord {
            tensor: 0,
            data: 0,
            stage: c.stage,
        }) {
            continue;
        }
        let label = g.task_label[t];
        let counts = matches!(g.task_kind[t], TaskKind::Compute(_) | TaskKind::Collective(_))
            && matches!(
                label.phase,
                Phase::Forward | Phase::Backward | Phase::Recompute | Phase::Optimizer
            );
        if !counts || g.task_stream[t] != 0 {
            continue;
        }
        let (start_s, end_s) = (sp.start.as_secs_f64(), sp.end.as_secs_f64());
        if let Some(last) = blocks.last_mut() {
            let same = last.stage == c.stage && last.microbatch == label.microbatch && last.chunk == label.chunk;
            let joinable = same
                && (last.phase == label.phase || (last.phase == Phase::Recompute && label.phase == Phase::Backward));
            if joinable {
                last.end_s = end_s;
                last.phase = label.phase;
                continue;
            }
        }
        blocks.push(Block {
            stage: c.stage,
            phase: label.phase,
            microbatch: label.microbatch,
            chunk: label.chunk,
            start_s,
            end_s,
        });
    }
    blocks
}

fn colour(b: &Block) -> RGBColor {
    let shade = b.chunk.saturating_mul(40);
    match b.phase {
        Phase::Forward => RGBColor(60u8.saturating_add(shade), 110u8.saturating_add(shade / 2), 200),
        Phase::Backward | Phase::Recompute => RGBColor(70u8.saturating_add(shade), 170, 90u8.saturating_add(shade / 2)),
        _ => RGBColor(150, 150, 150),
    }
}

fn draw_gantt<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    stages: u32,
    blocks: &[Block],
) -> std::result::Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let end_ms = blocks.iter().map(|b| b.end_s).fold(0.0, f64::max) * 1e3;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end_ms.max(1e-9), -0.5..stages as f64 - 0.5)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(stages.min(32) as usize)
        .y_label_formatter(&|y| {
            // rows are centred on integers; the top row is stage 0
            let row = y.round();
            if (y - row).abs() < 1e-6 && row >= 0.0 && row < stages as f64 {
                format!("stage {}", stages as f64 - 1.0 - row)
            } else {
                String::new()
            }
        })
        // the legend, where it hides nothing
        .x_desc("time (ms)    blue: forward (number: microbatch)    green: backward with recomputation    grey: gradient reduction, optimizer, I/O")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    let px_per_ms = 1500.0 / end_ms.max(1e-9);
    for b in blocks {
        let row = (stages - 1 - b.stage) as f64 - 0.5;
        let (x0, x1) = (b.start_s * 1e3, b.end_s * 1e3);
        let rect = Rectangle::new([(x0, row + 0.1), (x1, row + 0.9)], colour(b).filled());
        chart.draw_series(std::iter::once(rect)).map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, row + 0.1), (x1, row + 0.9)],
                BLACK.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        let label = if b.microbatch == u32::MAX {
            String::new()
        } else {
            // numbered from 0, as timeline.json's `mb0`
            b.microbatch.to_string()
        };
        let font_px = 12.0;
        if !label.is_empty() && (x1 - x0) * px_per_ms > font_px * 0.7 * label.len() as f64 + 4.0 {
            let style = TextStyle::from(("sans-serif", font_px).into_font()).color(&WHITE).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            chart
                .draw_series(std::iter::once(Text::new(label, ((x0 + x1) / 2.0, row + 0.5), style)))
                .map_err(|e| e.to_string())?;
        }
    }
    area.present().map_err(|e| e.to_string())
}

/// The pipeline schedule as a Gantt chart (like Megatron-LM Figures 3-4): forward passes blue,
/// backward green (recomputation merged into its backward), numbered by microbatch.
pub struct ScheduleChart<'a> {
    /// Title.
    pub title: &'a str,
    /// Pipeline stages (rows).
    pub stages: u32,
    /// Bars.
    pub blocks: &'a [Block],
}

impl Figure for ScheduleChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1600, (120 + 48 * self.stages.min(64)).max(240))
    }
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        draw_gantt(area, self.title, self.stages, self.blocks)
    }
}

fn draw_busbw<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    points: &[(u64, f64)],
    reference: Option<&(f64, String)>,
    published: &[(String, Vec<(u64, f64)>)],
) -> std::result::Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    // x is log2(size) on a linear axis, so that ticks fall on powers of two
    let log2 = |b: u64| (b.max(1) as f64).log2();
    let lo = points
        .iter()
        .map(|p| log2(p.0))
        .fold(f64::INFINITY, f64::min)
        .min(0.0f64.max(1.0) * 64.0);
    let hi = points.iter().map(|p| log2(p.0)).fold(0.0, f64::max).max(lo + 1.0);
    let top = points
        .iter()
        .map(|p| p.1 / 1e9)
        .filter(|b| b.is_finite())
        .chain(reference.map(|r| r.0))
        .chain(published.iter().flat_map(|(_, p)| p.iter().map(|p| p.1 / 1e9)))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc("bus bandwidth (GB/s)")
        .x_labels(((hi - lo) / 3.0).ceil() as usize + 1)
        .x_label_formatter(&|x| crate::units::human_size(2f64.powf(x.round()) as u64))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    let series: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|p| (log2(p.0), p.1 / 1e9))
        .collect();
    chart
        .draw_series(LineSeries::new(series.clone(), BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label("simulated busbw")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(series.iter().map(|&(x, y)| Circle::new((x, y), 3, BLUE.filled())))
        .map_err(|e| e.to_string())?;
    if let Some((bw, source)) = reference {
        let red = RGBColor(200, 40, 40);
        let dashes = (0..((hi - lo) * 4.0) as usize).step_by(2).map(|i| {
            let x0 = lo + i as f64 / 4.0;
            PathElement::new(vec![(x0, *bw), ((x0 + 0.25).min(hi), *bw)], red.stroke_width(2))
        });
        chart
            .draw_series(dashes)
            .map_err(|e| e.to_string())?
            .label(format!("published nccl-tests: {bw} GB/s ({source})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
    }
    let palette = [
        RGBColor(200, 40, 40),
        RGBColor(30, 140, 60),
        RGBColor(150, 60, 170),
        RGBColor(220, 130, 20),
    ];
    for (k, (source, pts)) in published.iter().enumerate() {
        let color = palette[k % palette.len()];
        let marks: Vec<(f64, f64)> = pts.iter().map(|&(b, bw)| (log2(b), bw / 1e9)).collect();
        chart
            .draw_series(
                marks
                    .iter()
                    .map(|&(x, y)| TriangleMarker::new((x, y), 6, color.filled())),
            )
            .map_err(|e| e.to_string())?
            .label(format!("published: {source}"))
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    area.present().map_err(|e| e.to_string())
}

/// nccl-tests-style bus bandwidth versus message size, with a published reference level if any.
pub struct BusBandwidthChart<'a> {
    /// Title.
    pub title: &'a str,
    /// The sweep: message size in bytes and bus bandwidth in bytes/s.
    pub points: &'a [(u64, f64)],
    /// Published level (GB/s) and its source.
    pub reference: Option<&'a (f64, String)>,
    /// Published nccl-tests points per source: (bytes, busbw bytes/s), drawn as triangles.
    pub published: &'a [(String, Vec<(u64, f64)>)],
}

impl Figure for BusBandwidthChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 700)
    }
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        draw_busbw(area, self.title, self.points, self.reference, self.published)
    }
}

/// One line of a [`LineChart`]: simulated values, and published values drawn as markers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// (x category, y) simulated, in order.
    pub points: Vec<(String, f64)>,
    /// (x category, y) published, drawn as hollow triangles of the same colour.
    pub published: Vec<(String, f64)>,
}

/// A line chart over categorical x values (Megatron Figures 6, 7, 13-15 style).
pub struct LineChart<'a> {
    /// Title.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// X categories in order.
    pub categories: &'a [String],
    /// Lines.
    pub series: &'a [Series],
    /// Y axis range; from 0 to 1.2 x the largest value when None.
    pub y_range: Option<(f64, f64)>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

impl Figure for LineChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 650)
    }
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = self.categories.len().max(1);
        let index = |x: &str| self.categories.iter().position(|c| c == x).map(|i| i as f64);
        let top = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().chain(&s.published).map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.2;
        let categories = self.categories.to_vec();
        let mut chart = ChartBuilder::on(&area)
            .caption(self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, self.y_range.map_or(0.0..top, |(lo, hi)| lo..hi))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    categories.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_x_mesh()
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let line: Vec<(f64, f64)> = s.points.iter().filter_map(|(x, y)| Some((index(x)?, *y))).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(if s.name.contains("simulated") {
                    s.name.clone()
                } else {
                    format!("{} (simulated)", s.name)
                })
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart
                .draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 4, colour.filled())))
                .map_err(|e| e.to_string())?;
            if !s.published.is_empty() {
                let marks: Vec<(f64, f64)> = s.published.iter().filter_map(|(x, y)| Some((index(x)?, *y))).collect();
                chart
                    .draw_series(
                        marks
                            .iter()
                            .map(|&(x, y)| TriangleMarker::new((x, y), 8, colour.stroke_width(2))),
                    )
                    .map_err(|e| e.to_string())?
                    .label(if s.name.contains("simulated") {
                        "published".to_string()
                    } else {
                        format!("{} (published)", s.name)
                    })
                    .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, colour.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        area.present().map_err(|e| e.to_string())
    }
}
