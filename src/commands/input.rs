//! Loading what several commands share: `--set` overrides, the hardware and workload they name.

use crate::cli::InputArgs;
use crate::config::{self, load_run_config, Document, DocumentKind, HardwareSpec, Override, RunConfig, Source};
use crate::error::{Error, Result};

/// The `--set` arguments, parsed.
pub fn parse_overrides(input: &InputArgs) -> Result<Vec<Override>> {
    input.set.iter().map(|s| Override::parse(s)).collect()
}

/// Loads the run configuration the common arguments name, with extra overrides after theirs.
pub fn load_input(input: &InputArgs, overrides: &[Override]) -> Result<RunConfig> {
    load_run_config(&source(&input.hardware), &source(&input.workload), overrides)
}

/// A named file or preset, or the default.
pub fn source(given: &Option<String>) -> Source {
    given
        .as_ref()
        .map(|s| Source::Named(s.clone()))
        .unwrap_or(Source::Default)
}

/// Loads a hardware description with `hardware.*` overrides only; any other override is refused
/// with `refusal` (which says why, e.g. "`collective` takes hardware.* keys only"). Returns the
/// document too, for error messages that name its fields.
pub fn load_hardware(hardware: &Source, overrides: &[Override], refusal: &str) -> Result<(HardwareSpec, Document)> {
    if let Some(o) = overrides.iter().find(|o| o.target != DocumentKind::Hardware) {
        return Err(Error::Input(format!("error: --set {}: {refusal}", o.original)));
    }
    let mut doc = config::Document::load(hardware, DocumentKind::Hardware)?;
    for o in overrides {
        doc.apply(o)?;
    }
    Ok((HardwareSpec::from_document(&doc)?, doc))
}
