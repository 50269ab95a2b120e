//! Outputs: metrics, the text summary, JSON and CSV reports, the Chrome trace and plots.

pub mod metrics;
pub mod output;
pub mod plot;
pub mod summary;
pub mod timeline;

pub use metrics::{Report, StageReport, TimeBreakdown};
