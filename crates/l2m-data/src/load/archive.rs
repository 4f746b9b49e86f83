//! Files from a folder tree or from a `.tar.gz`/`.tgz`/`.tar` archive, read the same way.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::load::{format_err, io_err};
use crate::{DataError, Result};

/// Where a dataset's files are: an unpacked folder or an archive of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder; files are named by their path relative to it.
    Dir(PathBuf),
    /// A tar archive, gzipped or not; files are named by their path inside it.
    Archive(PathBuf),
}

impl Source {
    /// A folder, or a file whose name ends in `.tar.gz`, `.tgz` or `.tar`.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        if !path.exists() {
            return Err(DataError::Missing {
                what: "dataset folder or archive".into(),
                tried: vec![path.to_path_buf()],
            });
        }
        let name = path.to_string_lossy();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".tar") {
            Ok(Source::Archive(path.to_path_buf()))
        } else {
            Err(format_err(
                path,
                "expected a folder or a .tar.gz, .tgz or .tar archive",
            ))
        }
    }

    /// The path given to [`Source::open`].
    pub fn path(&self) -> &Path {
        match self {
            Source::Dir(p) | Source::Archive(p) => p,
        }
    }

    /// Calls `f(name, bytes)` for every regular file whose `/`-separated relative name
    /// passes `keep`. Folder trees are walked in sorted order; archives in stored order.
    pub fn for_each(
        &self,
        keep: impl Fn(&str) -> bool,
        mut f: impl FnMut(&str, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Source::Dir(root) => {
                let mut seen = Seen::default();
                let top = std::fs::canonicalize(root).map_err(io_err(root))?;
                seen.folders.insert(top.clone(), String::new());
                walk(root, (root, &top), &keep, &mut f, &mut seen)
            }
            Source::Archive(path) => {
                crate::load::regular_file(path)?;
                let file = std::fs::File::open(path).map_err(io_err(path))?;
                let mut magic = [0u8; 2];
                let gz = {
                    let mut probe = std::fs::File::open(path).map_err(io_err(path))?;
                    probe.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
                };
                let reader: Box<dyn Read> = if gz {
                    Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
                } else {
                    Box::new(std::io::BufReader::new(file))
                };
                let corrupt = |e: std::io::Error| format_err(path, format!("corrupt archive: {e}"));
                let mut archive = tar::Archive::new(reader);
                for entry in archive.entries().map_err(corrupt)? {
                    let mut entry = entry.map_err(corrupt)?;
                    if !entry.header().entry_type().is_file() {
                        continue;
                    }
                    let name = entry
                        .path()
                        .map_err(corrupt)?
                        .to_string_lossy()
                        .into_owned();
                    let name = name.trim_start_matches("./").to_string();
                    if !keep(&name) {
                        continue;
                    }
                    // The size field is untrusted: bounded before anything is allocated,
                    // and no more than it announces is read.
                    let size = entry.size();
                    if size > crate::load::MAX_FILE_BYTES {
                        return Err(format_err(
                            path,
                            format!(
                                "entry {name} announces {size} bytes, more than the {} a dataset file may hold",
                                crate::load::MAX_FILE_BYTES
                            ),
                        ));
                    }
                    let mut bytes = Vec::new();
                    bytes.try_reserve_exact(size as usize).map_err(|_| {
                        format_err(
                            path,
                            format!("entry {name}: cannot allocate its {size} bytes"),
                        )
                    })?;
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut bytes)
                        .map_err(corrupt)?;
                    f(&name, bytes)?;
                }
                Ok(())
            }
        }
    }
}

/// What a walk has read, by canonical path: each folder and each kept file once.
#[derive(Default)]
struct Seen {
    folders: std::collections::HashMap<PathBuf, String>,
    files: std::collections::HashMap<PathBuf, String>,
}

/// `path`'s name relative to `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The last component of `path`.
fn path_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

/// `name` as a message shows it: the root itself is `.`.
fn shown(name: &str) -> String {
    if name.is_empty() {
        ".".to_string()
    } else {
        crate::text::terminal_safe(name).into_owned()
    }
}

/// Walks `dir` (and its canonical path) under `root` in sorted order.
fn walk(
    root: &Path,
    (dir, canonical_dir): (&Path, &Path),
    keep: &dyn Fn(&str) -> bool,
    f: &mut dyn FnMut(&str, Vec<u8>) -> Result<()>,
    seen: &mut Seen,
) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io_err(dir)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        // Symbolic links are followed only to places inside the dataset folder, and a
        // place is read once: a second way to the same folder or file (a link to a class
        // folder, a loop back to a folder above) is refused, naming both.
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let link = meta.file_type().is_symlink();
        let rel = relative(root, &path);
        let target = if link {
            let target = std::fs::canonicalize(&path).map_err(|e| {
                format_err(&path, format!("a link that leads nowhere readable ({e})"))
            })?;
            let inside = std::fs::canonicalize(root)
                .map(|r| target.starts_with(r))
                .unwrap_or(false);
            if !inside {
                return Err(format_err(
                    &path,
                    format!(
                        "a link to {}, outside the dataset folder {}; not followed",
                        target.display(),
                        root.display()
                    ),
                ));
            }
            Some(target)
        } else {
            None
        };
        if path.is_dir() {
            let canonical = target.unwrap_or_else(|| canonical_dir.join(path_name(&path)));
            if let Some(first) = seen.folders.get(&canonical) {
                let first = shown(first);
                let why = if rel.starts_with(&format!("{first}/")) || first == "." {
                    format!("a link back to {first}, a folder that holds it (a loop); not followed")
                } else {
                    format!(
                        "the same folder as {first} (through a link): its images would be counted twice; remove the link"
                    )
                };
                return Err(format_err(&path, why));
            }
            seen.folders.insert(canonical.clone(), rel);
            walk(root, (&path, &canonical), keep, f, seen)?;
        } else if path.is_file() && keep(&rel) {
            let canonical = target.unwrap_or_else(|| canonical_dir.join(path_name(&path)));
            if let Some(first) = seen.files.get(&canonical) {
                return Err(format_err(
                    &path,
                    format!(
                        "the same file as {} (through a link): it would be counted twice; remove the link",
                        shown(first)
                    ),
                ));
            }
            seen.files.insert(canonical, rel.clone());
            crate::load::regular_file(&path)?;
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            f(&rel, bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn names(root: &Path) -> Result<Vec<String>> {
        let mut seen = Vec::new();
        Source::open(root)?.for_each(
            |_| true,
            |n, _| {
                seen.push(n.to_string());
                Ok(())
            },
        )?;
        Ok(seen)
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_dataset_folder_are_refused() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), b"x").expect("write");
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("a")).expect("dir");
        std::fs::write(root.path().join("a/ok.txt"), b"ok").expect("write");
        std::fs::create_dir_all(root.path().join("pool")).expect("dir");
        std::fs::write(root.path().join("pool/x.txt"), b"x").expect("write");
        // A link to a file inside that is read nowhere else is followed.
        std::os::unix::fs::symlink(root.path().join("pool/x.txt"), root.path().join("a/in.txt"))
            .expect("link");
        let keep = |n: &str| n.starts_with("a/");
        let mut seen = Vec::new();
        Source::open(root.path())
            .expect("folder")
            .for_each(keep, |n, _| {
                seen.push(n.to_string());
                Ok(())
            })
            .expect("a link inside, read once, is fine");
        assert_eq!(seen, ["a/in.txt", "a/ok.txt"]);
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            root.path().join("a/z.txt"),
        )
        .expect("link");
        let e = names(root.path()).expect_err("outside").to_string();
        assert!(
            e.contains("outside the dataset folder") && e.contains("z.txt"),
            "{e}"
        );
    }

    /// A second way to the same file or folder is refused, naming both, so nothing is
    /// counted twice.
    #[cfg(unix)]
    #[test]
    fn a_link_to_a_file_or_folder_read_anyway_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("cat")).expect("dir");
        std::fs::create_dir_all(root.path().join("dog")).expect("dir");
        std::fs::write(root.path().join("cat/1.png"), b"c").expect("write");
        std::fs::write(root.path().join("dog/1.png"), b"d").expect("write");
        assert_eq!(
            names(root.path()).expect("plain"),
            ["cat/1.png", "dog/1.png"]
        );

        std::os::unix::fs::symlink("../dog", root.path().join("cat/todog")).expect("link");
        let e = names(root.path())
            .expect_err("a second way to dog/")
            .to_string();
        assert!(
            e.contains("dog: the same folder as cat/todog (through a link)"),
            "{e}"
        );
        std::fs::remove_file(root.path().join("cat/todog")).expect("unlink");

        std::os::unix::fs::symlink("1.png", root.path().join("cat/2.png")).expect("link");
        let e = names(root.path())
            .expect_err("a second way to 1.png")
            .to_string();
        assert!(e.contains("the same file as cat/1.png"), "{e}");
    }

    /// A link back to a folder above is named once, as a loop, not as a path of 40
    /// repeated folders.
    #[cfg(unix)]
    #[test]
    fn a_link_loop_is_named_once() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("cat/sub")).expect("dir");
        std::fs::write(root.path().join("cat/1.png"), b"c").expect("write");
        std::os::unix::fs::symlink("..", root.path().join("cat/sub/up")).expect("link");
        let e = names(root.path()).expect_err("loop").to_string();
        assert!(
            e.contains("cat/sub/up")
                && e.contains("a link back to cat, a folder that holds it (a loop)"),
            "{e}"
        );
        assert!(!e.contains("up/up"), "{e}");
        std::fs::remove_file(root.path().join("cat/sub/up")).expect("unlink");
        std::os::unix::fs::symlink("../..", root.path().join("cat/sub/top")).expect("link");
        let e = names(root.path())
            .expect_err("loop to the root")
            .to_string();
        assert!(
            e.contains("a link back to ., a folder that holds it"),
            "{e}"
        );
    }

    /// Writes `files` (name, bytes) as a gzipped tar at `path`.
    /// An entry whose size field announces a terabyte is refused by name before anything
    /// is allocated (the archive itself holds a few bytes).
    #[test]
    fn an_entry_announcing_a_huge_size_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lie.tar");
        let mut header = tar::Header::new_gnu();
        header.set_path("train/pos/0_1.txt").expect("path");
        header.set_size(1 << 40);
        header.set_mode(0o644);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        std::fs::write(&path, bytes).expect("write");
        let e = Source::open(&path)
            .expect("archive")
            .for_each(|_| true, |_, _| Ok(()))
            .expect_err("huge entry")
            .to_string();
        assert!(
            e.contains(
                "entry train/pos/0_1.txt announces 1099511627776 bytes, more than the 4294967296"
            ),
            "{e}"
        );
    }

    pub(crate) fn write_tar_gz(path: &Path, files: &[(String, Vec<u8>)]) {
        let file = std::fs::File::create(path).expect("create");
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, &bytes[..])
                .expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip");
    }

    /// Writes `files` under `root`.
    pub(crate) fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
        for (name, bytes) in files {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, bytes).expect("write");
        }
    }

    #[test]
    fn folder_and_archive_give_the_same_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = vec![
            ("a/x.txt".to_string(), b"one".to_vec()),
            ("a/b/y.txt".to_string(), b"two".to_vec()),
            ("z.bin".to_string(), b"three".to_vec()),
        ];
        write_tree(&dir.path().join("tree"), &files);
        write_tar_gz(&dir.path().join("t.tar.gz"), &files);
        let collect = |s: Source| {
            let mut got = Vec::new();
            s.for_each(
                |n| n.ends_with(".txt"),
                |n, b| {
                    got.push((n.to_string(), b));
                    Ok(())
                },
            )
            .expect("read");
            got.sort();
            got
        };
        let a = collect(Source::open(&dir.path().join("tree")).expect("dir"));
        let b = collect(Source::open(&dir.path().join("t.tar.gz")).expect("archive"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn bad_sources_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Source::open(&dir.path().join("none"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("dataset folder or archive not found"), "{e}");
        let f = dir.path().join("x.zip");
        std::fs::write(&f, b"zip").expect("write");
        assert!(
            Source::open(&f)
                .expect_err("zip")
                .to_string()
                .contains("expected a folder or a .tar.gz")
        );
        let bad = dir.path().join("bad.tar.gz");
        std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0]).expect("write");
        let e = Source::open(&bad)
            .expect("opens")
            .for_each(|_| true, |_, _| Ok(()))
            .expect_err("corrupt")
            .to_string();
        assert!(e.contains("bad.tar.gz: corrupt archive"), "{e}");
    }
}
