//! Loaders: dataset files in their original formats in, [`ClassDataset`]s out.
//!
//! Paths only, except [`hub`], which downloads a Hugging Face Hub dataset's Parquet files
//! into the Hub cache (the paper's datasets are fetched by `cargo xtask fetch-data`). Each
//! loader rejects malformed input with a [`DataError`] naming the file and what was wrong.
//!
//! [`ClassDataset`]: crate::ClassDataset

pub mod archive;
pub mod cifar;
#[cfg(feature = "hub")]
pub mod hub;
pub mod idx;
pub mod image_folder;
pub mod imdb;
pub mod split;
pub mod tabular;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, Result};

/// Per-channel normalisation applied to 8-bit pixels: `(p / 255 - mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalisation {
    /// Per-channel means of `p / 255`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviations.
    pub std: Vec<f32>,
}

impl Normalisation {
    /// `p / 255` in [0, 1] (reconstruction inputs and targets).
    pub fn unit(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// `(p / 255 - 0.5) / 0.5` in [-1, 1] (MNIST and Fashion-MNIST classification).
    pub fn half(channels: usize) -> Self {
        Self {
            mean: vec![0.5; channels],
            std: vec![0.5; channels],
        }
    }

    /// CIFAR's per-channel means and standard deviations (of the training set).
    pub fn cifar() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// ImageNet's per-channel means and standard deviations (Imagenette).
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn format_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Refuses anything but a regular file (following links): a FIFO would hang a reader and a
/// device such as `/dev/zero` would exhaust memory.
pub(crate) fn regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(format_err(
            path,
            format!(
                "not a regular file (it is a {}); expected a data file",
                if meta.is_dir() {
                    "folder"
                } else {
                    "FIFO, socket or device"
                }
            ),
        ))
    }
}

/// The most bytes a single dataset file (or archive entry) may hold once decompressed:
/// 4 GiB, far above any file of the paper's datasets (CIFAR-10's batches are 30 MiB,
/// MNIST's training images 47 MiB), and the bound on what a small gzip can expand to.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Reads a file whose first `header_len` bytes announce the size of the rest
/// (`announced(header)`), decompressing it when it starts with the gzip magic bytes. At
/// most the header, the announced bytes and one more (to tell an oversized file) are ever
/// read or decompressed, so a small gzip cannot expand past what its header promises, and
/// never past [`MAX_FILE_BYTES`].
pub(crate) fn read_announced(
    path: &Path,
    header_len: usize,
    announced: impl FnOnce(&[u8]) -> Result<usize>,
) -> Result<Vec<u8>> {
    use std::io::BufRead;
    regular_file(path)?;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut raw = std::io::BufReader::new(file);
    let gz = raw
        .fill_buf()
        .map_err(io_err(path))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let corrupt = |e: std::io::Error| {
        if gz {
            format_err(path, format!("corrupt gzip data: {e}"))
        } else {
            io_err(path)(e)
        }
    };
    let mut out = Vec::with_capacity(header_len);
    (&mut reader)
        .take(header_len as u64)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    let body = announced(&out)?;
    let total = (header_len as u64).saturating_add(body as u64);
    if total > MAX_FILE_BYTES {
        return Err(format_err(
            path,
            format!(
                "the header announces {total} bytes, more than the {MAX_FILE_BYTES} a dataset file may hold"
            ),
        ));
    }
    out.try_reserve_exact(body).map_err(|_| {
        format_err(
            path,
            format!("cannot allocate the {body} bytes its header announces"),
        )
    })?;
    (&mut reader)
        .take(body as u64 + 1)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

thread_local! {
    /// Set while [`catch_panics`] runs its closure on this thread.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, a call into a third-party decoder that may panic on malformed input (the
/// `parquet` crate does, as fuzzing found: negative column offsets, a missing dictionary
/// page, a division by zero, an index past a buffer), and turns a panic into an error
/// naming the file `path()` gives at that moment. The panic's own message is not printed
/// (a panic hook that defers to the previous one for every other panic is installed once).
pub(crate) fn catch_panics<T>(
    path: impl FnOnce() -> PathBuf,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    // The closure's state is discarded on a panic: only its error comes back.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(format_err(
            &path(),
            format!(
                "not a valid {what} file (its decoder failed: {})",
                clip(&message)
            ),
        ))
    })
}

/// The first of `names` (each tried as given and with `.gz`) that exists in `dir`.
pub(crate) fn find_in(dir: &Path, what: &str, names: &[&str]) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for name in names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    Err(DataError::Missing {
        what: what.to_string(),
        tried,
    })
}

/// A field as it appears in an error message: at most 60 characters, with an ellipsis and
/// the full length when it was cut (a malformed file can hold a field of megabytes).
/// Controls and bidirectional-format characters are escaped ([`crate::text`]).
pub(crate) fn clip(field: &str) -> String {
    crate::text::shorten(field, 60)
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn long_fields_are_cut_in_messages() {
        assert_eq!(super::clip("abc"), "abc");
        let long = "x".repeat(20_000_000);
        let c = super::clip(&long);
        assert!(
            c.len() < 100 && c.ends_with("... (20000000 characters)"),
            "{c}"
        );
    }
}

#[cfg(all(test, unix))]
mod regular_file_tests {
    #[test]
    fn devices_fifos_and_folders_are_refused_by_name() {
        let e = super::read_announced(std::path::Path::new("/dev/zero"), 8, |_| Ok(0))
            .expect_err("device");
        let e = e.to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let e = super::read_announced(dir.path(), 8, |_| Ok(0))
            .expect_err("folder")
            .to_string();
        assert!(e.contains("it is a folder"), "{e}");
    }
}
