//! Presets compiled into the binary, so that `clustersim run` works from any directory.

use super::DocumentKind;

/// Hardware presets: (name, YAML text).
pub const HARDWARE_PRESETS: &[(&str, &str)] = &[
    ("dgx-a100", include_str!("../../hardware/dgx-a100.yaml")),
    ("dgx-h100", include_str!("../../hardware/dgx-h100.yaml")),
    ("dgx-h200", include_str!("../../hardware/dgx-h200.yaml")),
    ("dgx-b200", include_str!("../../hardware/dgx-b200.yaml")),
    ("ideal", include_str!("../../hardware/ideal.yaml")),
];

/// Workload presets: (name, YAML text).
pub const WORKLOAD_PRESETS: &[(&str, &str)] = &[
    ("gpt-5.9b", include_str!("../../workloads/gpt-5.9b.yaml")),
    ("gpt-162b", include_str!("../../workloads/gpt-162b.yaml")),
    ("gpt-175b", include_str!("../../workloads/gpt-175b.yaml")),
    ("gpt-1t", include_str!("../../workloads/gpt-1t.yaml")),
    ("llama3-8b", include_str!("../../workloads/llama3-8b.yaml")),
    ("llama3-70b", include_str!("../../workloads/llama3-70b.yaml")),
    ("llama3-405b", include_str!("../../workloads/llama3-405b.yaml")),
    ("mixtral-8x7b", include_str!("../../workloads/mixtral-8x7b.yaml")),
    ("deepseek-v3", include_str!("../../workloads/deepseek-v3.yaml")),
    ("qwen3-30b-a3b", include_str!("../../workloads/qwen3-30b-a3b.yaml")),
    ("qwen3-235b-a22b", include_str!("../../workloads/qwen3-235b-a22b.yaml")),
];

fn table(kind: DocumentKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        DocumentKind::Hardware => HARDWARE_PRESETS,
        DocumentKind::Workload => WORKLOAD_PRESETS,
    }
}

/// The default document of a kind: dgx-a100 and gpt-5.9b.
pub fn default_for(kind: DocumentKind) -> (&'static str, &'static str) {
    table(kind)[0]
}

/// Finds a preset by name, accepting `NAME`, `NAME.yaml` and `hardware/NAME.yaml`.
pub fn find(kind: DocumentKind, given: &str) -> Option<&'static str> {
    let base = given.rsplit('/').next().unwrap_or(given);
    let base = base.strip_suffix(".yaml").unwrap_or(base);
    table(kind).iter().find(|(n, _)| *n == base).map(|(_, t)| *t)
}

/// The preset names of a kind.
pub fn names(kind: DocumentKind) -> Vec<&'static str> {
    table(kind).iter().map(|(n, _)| *n).collect()
}

/// The YAML text of a hardware preset.
pub fn builtin_hardware(name: &str) -> Option<&'static str> {
    find(DocumentKind::Hardware, name)
}

/// The YAML text of a workload preset.
pub fn builtin_workload(name: &str) -> Option<&'static str> {
    find(DocumentKind::Workload, name)
}
