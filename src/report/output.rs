//! Writing output files without ever leaving a half-written one: write a temporary, then rename.
//!
//! Every temporary name is unique to the process and the file (`.<stem>.<pid>.<n>.partial.<ext>`),
//! so two runs writing into one folder at once both succeed, each file complete. From its first
//! file into a folder to its exit a process holds that folder's lock ([`hold_folder`]), so two
//! runs writing one folder take turns: the folder ends with one run's whole set of files (the
//! last run's), never a mix. Temporaries of a run killed mid-write are removed by the next run that
//! writes the folder. A file that cannot be written is an input error (exit 2) naming the path.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporaries made by this process so far.
static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

/// A temporary name for writing `path` (same folder, same extension), unique to this process and call.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let unique = format!("{}.{}", std::process::id(), TEMPORARIES.fetch_add(1, Ordering::Relaxed));
    let tmp = match name.rsplit_once('.') {
        Some((stem, ext)) => format!(".{stem}.{unique}.partial.{ext}"),
        None => format!(".{name}.{unique}.partial"),
    };
    path.with_file_name(tmp)
}

fn cannot_write(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Input(format!("error: cannot write {}: {e}", path.display()))
}

/// The folders whose lock this process holds, each open for as long as the process runs.
static HELD: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> = std::sync::Mutex::new(Vec::new());

/// How long a writer waits for another process to finish writing the same folder.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Takes the lock of the folder `path` is written into, unless this process holds it already, and
/// keeps it until the process exits (an advisory `flock` on the folder itself: nothing is left in
/// it). Another process writing into the folder waits until then; after [`LOCK_WAIT`] it gives up
/// with an error. Where locks are not supported (some network filesystems) it writes unlocked.
fn hold_folder(path: &Path) -> Result<()> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|(d, _)| *d == dir) {
        return Ok(());
    }
    let Ok(file) = std::fs::File::open(&dir) else {
        return Ok(());
    };
    let start = std::time::Instant::now();
    while !try_lock(&file) {
        if start.elapsed() > LOCK_WAIT {
            return Err(Error::Input(format!(
                "error: {}: another clustersim has been writing into this folder for {} s; give this run its own --out",
                dir.display(),
                LOCK_WAIT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    remove_stale_temporaries(&dir);
    held.push((dir, file));
    Ok(())
}

/// Removes the temporaries that processes which no longer run left in `dir` (killed mid-write):
/// called with the folder's lock held, so no live writer is renaming them. A temporary whose
/// process still runs, or may (no `/proc` to ask), is left alone.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(pid) = temporary_owner(&name) {
            let alive = !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists();
            if !alive && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The process id in a name [`temporary_path`] made (`.<stem>.<pid>.<n>.partial[.<ext>]`).
fn temporary_owner(name: &str) -> Option<u32> {
    let body = name.strip_prefix('.')?;
    let (before, _) = body.rsplit_once(".partial")?;
    let mut parts = before.rsplit('.');
    parts.next()?.parse::<u64>().ok()?;
    let pid = parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    Some(pid)
}

/// Tries to take an exclusive lock on `file`: false while another process holds it.
#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this File owns and keeps open
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EWOULDBLOCK)
}

/// Without flock, writers do not take turns.
#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> bool {
    true
}

/// Writes a file through `write` into a temporary, then renames it into place.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    hold_folder(path)?;
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
        cannot_write(path, e)
    })
}

/// Renames a finished temporary file into place (for writers that create files themselves).
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    hold_folder(path)?;
    std::fs::rename(tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        cannot_write(path, e)
    })
}

/// Creates the output folder (and its parents).
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Input(format!(
            "error: output folder {}: exists and is not a folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Input(format!("error: cannot create output folder {}: {e}", dir.display())))
}

/// Checks, before any work starts, that `dir` is a folder this process can create and write into.
pub fn check_out_dir(dir: &Path) -> Result<()> {
    create_dir(dir)?;
    let probe = temporary_path(&dir.join("write-check"));
    std::fs::File::create(&probe)
        .map_err(|e| Error::Input(format!("error: cannot write into output folder {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks, before any work starts, that `file` can be written: its folder exists or can be made
/// and `file` is not a folder.
pub fn check_out_file(file: &Path) -> Result<()> {
    if file.is_dir() {
        return Err(Error::Input(format!(
            "error: --out {}: is a folder; give a file name",
            file.display()
        )));
    }
    match file.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => check_out_dir(parent),
        None => check_out_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_name_their_process() {
        let pid = std::process::id();
        for file in ["report.json", "timeline", "a.b.csv"] {
            let tmp = temporary_path(Path::new("out").join(file).as_path());
            let name = tmp.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(temporary_owner(&name), Some(pid), "{name}");
        }
        for other in [
            "report.json",
            ".report.json",
            ".x.partial",
            ".x.12.partial.json",
            "x.1.2.partial",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
    }
}
