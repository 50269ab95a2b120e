//! The hash of a run's resolved inputs, which ties its shards together: the spec or the plan's
//! arguments, and the hardware and workload documents after every override, as text.
//!
//! FNV-1a with 128 bits: deterministic on every platform and build, no dependency. It tells shards
//! of different inputs apart; it is not meant to resist a forger.

use crate::config::{Document, DocumentKind, Override, Source};
use crate::error::Result;

const FNV_OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const FNV_PRIME: u128 = 0x0000000001000000000000000000013b;

/// FNV-1a, 128 bits, of `bytes`.
pub fn fnv1a_128(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ b as u128).wrapping_mul(FNV_PRIME))
}

/// The fingerprint written into shard manifests: `fnv1a-128:` and 32 hex digits.
pub fn fingerprint(text: &str) -> String {
    format!("fnv1a-128:{:032x}", fnv1a_128(text.as_bytes()))
}

/// A document as the run sees it: where it came from and its YAML after the overrides of its kind.
pub fn document_text(source: &Source, kind: DocumentKind, overrides: &[Override]) -> Result<String> {
    let mut doc = Document::load(source, kind)?;
    for o in overrides.iter().filter(|o| o.target == kind) {
        doc.apply(o)?;
    }
    let yaml = serde_yaml::to_string(&doc.value).unwrap_or_default();
    Ok(format!("{} from {}:\n{yaml}", kind.prefix(), doc.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // "" is the offset basis; "a" is one xor-multiply step (checked with Python integers)
        assert_eq!(fnv1a_128(b""), FNV_OFFSET);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }
}
