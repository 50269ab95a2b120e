//! Configuration: YAML documents → validated specs.
//!
//! Every error names the file, the YAML path and the bad value. Configs know nothing of the engine.

pub mod astra;
mod context;
mod data_parallel;
mod document;
pub mod groups;
mod hardware;
mod mla;
mod model;
mod moe;
mod nccl;
mod presets;
pub mod profiles;
mod ranges;
mod software;
pub mod whatif;
mod workload;

pub use data_parallel::{DataParallelSpec, GradDtype};
pub use document::{open_input, read_limited, Document, Override, MAX_YAML_BYTES};
pub use hardware::{
    AlgorithmChoice, ComputeModelKind, FailureSpec, GemmTile, GpuSpec, HardwareSpec, LinkSpec, NetworkModelKind,
    NetworkSpec, NodeSpec, StorageSpec, TopologyKind, TopologySpec,
};
pub use mla::MlaSpec;
pub use model::{Mlp, ModelSpec, Norm};
pub use moe::MoeSpec;
pub use nccl::{GpuArchitecture, HostCpu, NcclHost, NcclSpec, NcclVersion};
pub use presets::{builtin_hardware, builtin_workload, HARDWARE_PRESETS, WORKLOAD_PRESETS};
pub use software::{Attention, Precision, Recompute, Schedule};
pub use workload::{BatchSpec, ParallelSpec, WorkloadSpec};

use crate::error::Result;

/// Hardware and workload, validated against each other, ready to simulate.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The machine.
    pub hardware: HardwareSpec,
    /// The training job.
    pub workload: WorkloadSpec,
}

/// Where a document comes from: a file on disk, or a preset compiled into the binary.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path given by the user, or a preset name.
    Named(String),
    /// The built-in default of this kind.
    Default,
}

/// Loads both documents, applies `--set` overrides, validates each and then the pair.
pub fn load_run_config(hardware: &Source, workload: &Source, overrides: &[Override]) -> Result<RunConfig> {
    let (mut hw_doc, mut wl_doc) = (
        Document::load(hardware, DocumentKind::Hardware)?,
        Document::load(workload, DocumentKind::Workload)?,
    );
    for o in overrides {
        match o.target {
            DocumentKind::Hardware => hw_doc.apply(o)?,
            DocumentKind::Workload => wl_doc.apply(o)?,
        }
    }
    let hardware = HardwareSpec::from_document(&hw_doc)?;
    let workload = WorkloadSpec::from_document(&wl_doc)?;
    workload::check_fits_hardware(&workload, &wl_doc, &hardware, &hw_doc)?;
    Ok(RunConfig { hardware, workload })
}

/// The two kinds of document a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// hardware/*.yaml
    Hardware,
    /// workloads/*.yaml
    Workload,
}

impl DocumentKind {
    /// The `--set` prefix and folder name of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            DocumentKind::Hardware => "hardware",
            DocumentKind::Workload => "workload",
        }
    }
}

/// What a name that becomes a file or folder name must be: one path component of letters, digits,
/// `-`, `_` and `.`, not empty and not `.` or `..`, so that outputs never leave their folder.
pub const SAFE_NAME: &str =
    "must be one path component of letters, digits, '-', '_' and '.' (not empty, not '.' or '..')";

/// Whether `name` is a safe file or folder name (see [`SAFE_NAME`]).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
