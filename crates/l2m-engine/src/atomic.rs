//! Atomic file writes: a temporary file beside the target, synced, then renamed.

use std::fs;
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
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file path")))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    if sync {
        file.sync_all().map_err(io)?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn missing_directory_names_the_path() {
        let e = write_atomic(Path::new("/nonexistent-dir/x.json"), b"x").expect_err("no dir");
        assert!(e.to_string().starts_with("/nonexistent-dir/x.json"));
    }
}
