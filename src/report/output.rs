//! Writing output files without ever leaving a half-written one: write a temporary, then rename.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is being written (same folder, same extension).
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = match name.rsplit_once('.') {
        Some((stem, ext)) => format!(".{stem}.partial.{ext}"),
        None => format!(".{name}.partial"),
    };
    path.with_file_name(tmp)
}

/// Writes a file through `write` into a temporary, then renames it into place.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Internal(format!("cannot write {}: {e}", path.display()))
    })
}

/// Renames a finished temporary file into place (for writers that create files themselves).
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::Internal(format!("cannot write {}: {e}", path.display()))
    })
}

/// Creates the output folder.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Internal(format!("cannot create output folder {}: {e}", dir.display())))
}
