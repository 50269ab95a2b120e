//! Sweeps: many runs over axes of configuration values, in parallel, one CSV row per point.

pub mod execute;
pub mod spec;

pub use execute::{run_points, run_sweep, write_sweep, Inputs, Row, SweepResult};
pub use spec::{Axis, PlotSpec, SweepSpec};
