//! The discrete-event kernel: a deterministic event queue over integer time.
//!
//! It knows nothing of GPUs, tasks or networks: the simulation layer (`crate::sim`) defines the
//! closed event enum and decides what each event means.

mod queue;

pub use queue::{EventKey, EventQueue};
