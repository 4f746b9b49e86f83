//! Atomic file writes: a temporary file beside the target, synced, then renamed.
//!
//! The temporary file gets a random name and is created exclusively (`O_EXCL`, through the
//! `tempfile` crate), so a file or a symbolic link planted at a predictable name can neither
//! be followed nor overwritten.

use std::io::Write;
use std::path::Path;

use crate::{EngineError, Result};

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the
/// new one, never a partial write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, true)
}

/// [`write_atomic`], with the fsync before the rename only when `sync` is true. Without
/// it the replacement is still atomic for every reader and survives the process being
/// killed; only a power loss can lose it.
pub(crate) fn write_atomic_with(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = exclusive_temp(path)?;
    file.write_all(bytes).map_err(io)?;
    if sync {
        file.as_file().sync_all().map_err(io)?;
    }
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A new, exclusively created temporary file beside `path` (`.<name>.<random>.tmp`),
/// removed if dropped before it is persisted.
pub(crate) fn exclusive_temp(path: &Path) -> Result<tempfile::NamedTempFile> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file path")))?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(fs::read_to_string(&p).expect("read"), "two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_old_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, b"precious").expect("victim");
        let p = dir.path().join("a.json");
        std::os::unix::fs::symlink(&victim, dir.path().join(".a.json.tmp")).expect("link");
        write_atomic(&p, b"new").expect("write");
        assert_eq!(fs::read_to_string(&victim).expect("read"), "precious");
        assert_eq!(fs::read_to_string(&p).expect("read"), "new");
    }

    #[test]
    fn missing_directory_names_the_path() {
        let e = write_atomic(Path::new("/nonexistent-dir/x.json"), b"x").expect_err("no dir");
        assert!(e.to_string().starts_with("/nonexistent-dir/x.json"));
    }
}
