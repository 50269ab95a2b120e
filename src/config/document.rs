//! A YAML document on its way to a spec: read, overridden with `--set`, deserialized with paths.

use super::{presets, DocumentKind, Source};
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

/// One `--set KEY=VALUE` argument, parsed.
#[derive(Debug, Clone)]
pub struct Override {
    /// Which document it changes.
    pub target: DocumentKind,
    /// The YAML path inside that document, e.g. `["model", "layers"]`.
    pub path: Vec<String>,
    /// The value, parsed as a YAML scalar.
    pub value: Value,
    /// The argument as the user typed it, for error messages.
    pub original: String,
}

impl Override {
    /// Parses `workload.model.layers=48` or `hardware.nodes=16`.
    pub fn parse(arg: &str) -> Result<Override> {
        let bad = |why: &str| Error::Input(format!("error: --set {arg}: {why}"));
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE, e.g. workload.parallel.data=16"))?;
        let mut parts = key.trim().split('.');
        let target = match parts.next() {
            Some("workload") => DocumentKind::Workload,
            Some("hardware") => DocumentKind::Hardware,
            other => {
                return Err(bad(&format!(
                    "unknown --set key {:?}: keys start with \"workload.\" or \"hardware.\" followed by a YAML path",
                    other.unwrap_or("")
                )))
            }
        };
        let path: Vec<String> = parts.map(str::to_string).collect();
        if path.is_empty() || path.iter().any(String::is_empty) {
            return Err(bad(
                "the key needs a YAML path after the prefix, e.g. workload.model.layers",
            ));
        }
        let value: Value =
            serde_yaml::from_str(value.trim()).unwrap_or_else(|_| Value::String(value.trim().to_string()));
        Ok(Override {
            target,
            path,
            value,
            original: arg.to_string(),
        })
    }
}

/// A parsed YAML document with the name of where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// File path, or `built-in preset NAME`.
    pub source: String,
    /// The YAML tree after overrides.
    pub value: Value,
    overrides: Vec<(String, String)>,
}

impl Document {
    /// Reads a file, or a preset of this kind by name (`dgx-a100`), or the built-in default.
    pub fn load(source: &Source, kind: DocumentKind) -> Result<Document> {
        let (name, text) = match source {
            Source::Default => {
                let (name, text) = presets::default_for(kind);
                (format!("built-in preset {name}"), text.to_string())
            }
            Source::Named(given) => match read_limited(given) {
                Ok(text) => (given.clone(), text),
                Err(e) => match presets::find(kind, given) {
                    Some(text) => (format!("built-in preset {given}"), text.to_string()),
                    None => {
                        return Err(Error::Input(format!(
                            "error: {given}: cannot read {} file: {}; built-in presets are: {}",
                            kind.prefix(),
                            e,
                            presets::names(kind).join(", ")
                        )))
                    }
                },
            },
        };
        Document::parse(&name, &text)
    }

    /// Parses YAML text; a syntax error names the line and column.
    pub fn parse(source: &str, text: &str) -> Result<Document> {
        let value: Value = serde_yaml::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            Error::Input(format!("error: {source}: malformed YAML{at}: {msg}"))
        })?;
        let value = if value.is_null() {
            Value::Mapping(Mapping::new())
        } else {
            value
        };
        Ok(Document {
            source: source.to_string(),
            value,
            overrides: Vec::new(),
        })
    }

    /// Applies one `--set`, creating intermediate mappings as needed.
    pub fn apply(&mut self, o: &Override) -> Result<()> {
        let mut node = &mut self.value;
        for (i, key) in o.path.iter().enumerate() {
            let Value::Mapping(map) = node else {
                return Err(Error::Input(format!(
                    "error: --set {}: `{}` in {} is not a mapping, so it has no key {:?}",
                    o.original,
                    o.path[..i].join("."),
                    self.source,
                    key
                )));
            };
            node = map
                .entry(Value::String(key.clone()))
                .or_insert(Value::Mapping(Mapping::new()));
        }
        *node = o.value.clone();
        self.overrides.push((o.path.join("."), o.original.clone()));
        Ok(())
    }

    /// Sets the value at a dotted path (a default filled in, such as a software profile's),
    /// creating intermediate mappings; it stays the file's for error messages.
    pub fn set_default(&mut self, path: &str, value: Value) {
        let mut node = &mut self.value;
        for key in path.split('.') {
            let Value::Mapping(map) = node else { return };
            node = map
                .entry(Value::String(key.to_string()))
                .or_insert(Value::Mapping(Mapping::new()));
        }
        *node = value;
    }

    /// Whether a `--set` gave the value at `path` (or a mapping above it).
    pub fn is_overridden(&self, path: &str) -> bool {
        self.overrides.iter().any(|(p, _)| within(path, p))
    }

    /// Where a value at `path` came from: the file, or the `--set` that replaced it.
    pub fn origin(&self, path: &str) -> String {
        match self.override_at(path) {
            Some((_, arg)) => format!("--set {arg} (applied to {})", self.source),
            None => self.source.clone(),
        }
    }

    /// The last `--set` that wrote at `path`, above it, or inside it (a section a --set created).
    fn override_at(&self, path: &str) -> Option<&(String, String)> {
        self.overrides
            .iter()
            .rev()
            .find(|(p, _)| within(path, p) || within(p, path))
    }

    /// The value at a dotted path, printed compactly, if present.
    pub fn value_at(&self, path: &str) -> Option<String> {
        let mut node = &self.value;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            node = match key.split_once('[') {
                Some((k, idx)) => {
                    let inner = if k.is_empty() { node } else { node.get(k)? };
                    inner.get(idx.trim_end_matches(']').parse::<usize>().ok()?)?
                }
                None => node.get(key)?,
            };
        }
        Some(match node {
            Value::String(s) => format!("{s:?}"),
            Value::Mapping(_) | Value::Sequence(_) => serde_json::to_string(node).ok()?,
            other => serde_yaml::to_string(other).ok()?.trim().to_string(),
        })
    }

    /// An error about the value at `path`, naming the file, the path and the value.
    pub fn field_error(&self, path: &str, message: impl std::fmt::Display) -> Error {
        let value = self.value_at(path).map(|v| format!(" = {v}")).unwrap_or_default();
        Error::Input(format!("error: {}: `{path}`{value}: {message}", self.origin(path)))
    }

    /// Deserializes the document into `T`, turning serde errors into path-carrying messages.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(self.value.clone()).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.inner().to_string();
            match parse_unknown_field(&inner) {
                Some((field, expected)) => {
                    let parent = path.strip_suffix(&field).unwrap_or(&path).trim_end_matches('.');
                    let full = if parent.is_empty() {
                        field.clone()
                    } else {
                        format!("{parent}.{field}")
                    };
                    let suggestion = closest(&field, &expected)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    let place = if parent.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in `{parent}`")
                    };
                    Error::Input(format!(
                        "error: {}: unknown key `{full}` {place}{suggestion} (expected one of: {})",
                        self.origin(&full),
                        expected.join(", ")
                    ))
                }
                None if path.is_empty() => Error::Input(format!("error: {}: {}", self.source, plain_types(&inner))),
                None if inner.contains("Value::Tagged enum") => {
                    // a non-string where a named value belongs: ask serde again with the value as a
                    // string, whose error lists the names
                    let listed = self.enum_names::<T>(&path).unwrap_or(inner);
                    self.field_error(&path, plain_types(&listed))
                }
                None => self.field_error(&path, plain_types(&inner)),
            }
        })
    }

    /// serde's message for the enum at `path` given a string: it lists the accepted names.
    fn enum_names<T: DeserializeOwned>(&self, path: &str) -> Option<String> {
        let mut value = self.value.clone();
        let mut node = &mut value;
        for key in path.split('.') {
            node = node.as_mapping_mut()?.get_mut(key)?;
        }
        let text = match node {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => "null".to_string(),
            _ => return None,
        };
        *node = Value::String(text.clone());
        match serde_path_to_error::deserialize::<_, T>(value) {
            Err(e) => Some(e.inner().to_string()),
            // the name it means, written unquoted: YAML read it as a number
            Ok(_) => Some(format!(
                "a number where a name belongs: YAML reads {text} unquoted as a number; write it in quotes, \"{text}\""
            )),
        }
    }
}

/// Whether dotted `path` is `outer` or lies inside it: a key below it (`outer.x`) or an element of
/// its list (`outer[3]`).
fn within(path: &str, outer: &str) -> bool {
    path.strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// serde's message with Rust's number types named in words ("expected u32" -> "expected a whole
/// number from 0 to 4294967295").
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 8] = [
        ("expected u64", "expected a whole number from 0 to 18446744073709551615"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
    ];
    let mut out = message.to_string();
    for (rust, words) in NAMES {
        if out.ends_with(rust) || out.contains(&format!("{rust} ")) || out.contains(&format!("{rust},")) {
            out = out.replace(rust, words);
        }
    }
    // YAML reads 1e12 as a float: where a whole number is expected, say how to write one
    let whole = out
        .strip_prefix("invalid type: floating point `")
        .and_then(|rest| rest.split('`').next())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.fract() == 0.0 && v.abs() < 1e30);
    if let (Some(v), true) = (whole, out.contains("expected a whole number")) {
        out += &format!(" (YAML reads exponent notation as floating point: write {v:.0} in digits)");
    }
    // YAML reads 2.10 as the number 2.1: where a quoted variant has that value, say to quote it
    if let Some(rest) = out.strip_prefix("unknown variant `") {
        let given = rest.split('`').next().and_then(|v| v.parse::<f64>().ok());
        let meant = rest
            .split('`')
            .skip(2)
            .step_by(2)
            .find(|v| v.parse::<f64>().ok().is_some_and(|x| Some(x) == given) && v.contains('.'))
            .map(str::to_string);
        if let (Some(given), Some(meant)) = (given, meant) {
            out += &format!(" (YAML reads {meant} as the number {given}: write it in quotes, \"{meant}\")");
        }
    }
    // "expected struct ModelSpec": a section, whose Rust name means nothing in a YAML file
    if let Some(at) = out.find("expected struct ") {
        let name = &out[at + "expected struct ".len()..];
        let end = name
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(name.len());
        out.replace_range(
            at..at + "expected struct ".len() + end,
            "expected a mapping of `key: value` lines",
        );
    }
    out
}

/// The largest YAML file read (hardware, workload, sweep spec, YAML trace): larger inputs are refused
/// before they fill memory (streamed JSON Lines traces are exempt: they are meant to be large).
pub const MAX_YAML_BYTES: u64 = 64 << 20;

/// Opens an input file for reading. A folder is refused. A named pipe is opened without waiting for
/// a writer (opening one would otherwise block until another process writes it), so a pipe with a
/// writer (`--workload <(generate)`) reads as a file and one without reads as empty.
pub fn open_input(path: impl AsRef<std::path::Path>) -> std::io::Result<std::fs::File> {
    let path = path.as_ref();
    if std::fs::metadata(path)?.is_dir() {
        return Err(std::io::Error::other("a folder, not a file"));
    }
    open_without_waiting(path)
}

#[cfg(unix)]
fn open_without_waiting(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // reads block again, as on any file: a pipe's writer may be slower than this reader
    // SAFETY: fcntl on a descriptor this File owns
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// Whether `path` is a named pipe.
#[cfg(unix)]
pub fn is_pipe(path: impl AsRef<std::path::Path>) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Whether `path` is a named pipe (none here).
#[cfg(not(unix))]
pub fn is_pipe(_path: impl AsRef<std::path::Path>) -> bool {
    false
}

#[cfg(not(unix))]
fn open_without_waiting(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Reads a YAML file of at most [`MAX_YAML_BYTES`].
pub fn read_limited(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    open_input(path)?.take(MAX_YAML_BYTES + 1).read_to_string(&mut text)?;
    if text.is_empty() && is_pipe(path) {
        return Err(std::io::Error::other("a named pipe with nothing written to it"));
    }
    if text.len() as u64 > MAX_YAML_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than the {} MiB a YAML input may have",
            MAX_YAML_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Picks apart serde's "unknown field `x`, expected one of `a`, `b`" message.
fn parse_unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((field.to_string(), expected))
}

/// The closest expected key to a misspelt one, if any is close enough to be a likely typo.
pub fn closest<'a>(given: &str, expected: &'a [String]) -> Option<&'a str> {
    expected
        .iter()
        .map(|e| (strsim::jaro_winkler(given, e), e))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e)| e.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        let (f, e) = parse_unknown_field("unknown field `hiden`, expected one of `layers`, `hidden`").unwrap();
        assert_eq!(f, "hiden");
        assert_eq!(e, vec!["layers", "hidden"]);
        assert_eq!(closest("hiden", &e), Some("hidden"));
        assert_eq!(closest("zzzz", &e), None);
    }

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            plain_types("invalid type: integer `5`, expected struct ModelSpec"),
            "invalid type: integer `5`, expected a mapping of `key: value` lines"
        );
        assert_eq!(
            plain_types("invalid type: string \"x\", expected u32"),
            "invalid type: string \"x\", expected a whole number from 0 to 4294967295"
        );
        assert!(
            plain_types("invalid type: floating point `1000000000000.0`, expected u64")
                .ends_with("write 1000000000000 in digits)")
        );
        assert!(!plain_types("invalid type: floating point `3.5`, expected u64").contains("digits"));
        // YAML's 2.10 is the number 2.1: the message says to quote it; 2.8 needs no such hint
        let version = plain_types("unknown variant `2.1`, expected one of `2.8`, `2.10`, `2.21`");
        assert!(
            version.ends_with("(YAML reads 2.10 as the number 2.1: write it in quotes, \"2.10\")"),
            "{version}"
        );
        assert!(!plain_types("unknown variant `2.9`, expected one of `2.8`, `2.10`").contains("quotes"));
    }

    #[test]
    fn set_creates_paths_and_records_origin() {
        let mut d = Document::parse("w.yaml", "model:\n  layers: 4\n").unwrap();
        d.apply(&Override::parse("workload.model.layers=8").unwrap()).unwrap();
        d.apply(&Override::parse("workload.batch.global=16").unwrap()).unwrap();
        assert_eq!(d.value_at("model.layers").as_deref(), Some("8"));
        assert_eq!(d.value_at("batch.global").as_deref(), Some("16"));
        assert!(d.origin("batch.global").starts_with("--set workload.batch.global=16"));
        assert_eq!(d.origin("model.hidden"), "w.yaml");
        d.apply(&Override::parse("workload.model.stages=[1, 2]").unwrap())
            .unwrap();
        assert!(d.origin("model.stages[1]").starts_with("--set workload.model.stages="));
        assert_eq!(d.origin("model.stagesx"), "w.yaml");
        assert!(d.apply(&Override::parse("workload.model.layers.x=1").unwrap()).is_err());
        assert!(Override::parse("nodes=3").is_err());
        assert!(Override::parse("workload.x").is_err());
    }
}
