//! Outputs: metrics, the text summary, JSON and CSV reports, the Chrome trace and plots.
//!
//! It turns a finished simulation into numbers and files; it must not run simulations itself nor
//! know which command asked (the studies and commands above it do).

pub mod metrics;
pub mod output;
pub mod plot;
pub mod spread;
pub mod summary;
pub mod timeline;

pub use metrics::{Report, StageReport, TimeBreakdown};
