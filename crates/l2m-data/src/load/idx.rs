//! The IDX format of MNIST and Fashion-MNIST (gzipped or not).
//!
//! An IDX file is a big-endian header (magic number, then one u32 per dimension) followed
//! by the raw bytes: magic 2051 (`0x00000803`) for `count x rows x cols` images, 2049
//! (`0x00000801`) for `count` labels.

use std::path::Path;

use crate::load::{Normalisation, find_in, format_err, read_announced};
use crate::{ClassDataset, DataError, Features, Result, Targets};

/// Magic number of an IDX image file (unsigned bytes, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX label file (unsigned bytes, 1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// Images of one IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, row-major.
    pub pixels: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>> {
    let need = 4 + 4 * dims;
    if bytes.len() < need {
        return Err(format_err(
            path,
            format!(
                "truncated IDX header: {} bytes, expected at least {need}",
                bytes.len()
            ),
        ));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(format_err(
            path,
            format!("bad IDX magic number {found}, expected {magic}"),
        ));
    }
    Ok((0..dims)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect())
}

/// Checks the body length, then drops the header in place (no second buffer).
fn body(path: &Path, mut bytes: Vec<u8>, offset: usize, expected: usize) -> Result<Vec<u8>> {
    let got = bytes.len() - offset;
    if got != expected {
        return Err(format_err(
            path,
            if got < expected {
                format!(
                    "truncated IDX file: the header announces {expected} data bytes, the file holds {got}"
                )
            } else {
                format!(
                    "oversized IDX file: the header announces {expected} data bytes, the file holds more"
                )
            },
        ));
    }
    bytes.drain(..offset);
    Ok(bytes)
}

/// The data bytes an image file's header announces: `count x rows x cols`, refused when
/// the product overflows.
fn image_bytes(path: &Path, head: &[u8]) -> Result<usize> {
    let dims = header(path, head, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    // Sizes from the file: their product may overflow, and must not wrap.
    count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| {
            format_err(
                path,
                format!("IDX header: {count} x {rows} x {cols} images overflow the address space"),
            )
        })
}

/// Reads an IDX image file; a gzipped one is decompressed only as far as its header
/// announces.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_announced(path, 16, |head| image_bytes(path, head))?;
    let dims = header(path, &bytes, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let expected = image_bytes(path, &bytes)?;
    let pixels = body(path, bytes, 16, expected)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Reads an IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_announced(path, 8, |head| Ok(header(path, head, LABELS_MAGIC, 1)?[0]))?;
    let count = header(path, &bytes, LABELS_MAGIC, 1)?[0];
    body(path, bytes, 8, count)
}

/// The class names of MNIST (the digits).
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The class names of Fashion-MNIST, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads `(train, test)` from a folder holding the four IDX files of MNIST or
/// Fashion-MNIST (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`). Images are `[1, 28, 28]`
/// bytes; the class is the label.
pub fn load_mnist_dir(
    name: &str,
    dir: &Path,
    class_names: &[&str],
    norm: Normalisation,
) -> Result<(ClassDataset, ClassDataset)> {
    let split = |prefix: &str| -> Result<ClassDataset> {
        let images_path = find_in(
            dir,
            &format!("{name} {prefix} images"),
            &[
                &format!("{prefix}-images-idx3-ubyte"),
                &format!("{prefix}-images.idx3-ubyte"),
            ],
        )?;
        let labels_path = find_in(
            dir,
            &format!("{name} {prefix} labels"),
            &[
                &format!("{prefix}-labels-idx1-ubyte"),
                &format!("{prefix}-labels.idx1-ubyte"),
            ],
        )?;
        let images = read_images(&images_path)?;
        let labels = read_labels(&labels_path)?;
        if labels.len() != images.count {
            return Err(format_err(
                &labels_path,
                format!(
                    "wrong count: {} labels for the {} images of {}",
                    labels.len(),
                    images.count,
                    images_path.display()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= class_names.len())
        {
            return Err(format_err(
                &labels_path,
                format!("label {l} at index {i}; expected 0..{}", class_names.len()),
            ));
        }
        let split_name = if prefix == "train" { "train" } else { "test" };
        ClassDataset::new(
            format!("{name}/{split_name}"),
            Features::Pixels {
                data: images.pixels,
                mean: norm.mean.clone(),
                std: norm.std.clone(),
            },
            vec![1, images.rows, images.cols],
            Targets::Classes,
            labels.iter().map(|&l| u32::from(l)).collect(),
            class_names.iter().map(|s| s.to_string()).collect(),
        )
        .map_err(|e| match e {
            DataError::EmptyClass { class, .. } => DataError::EmptyClass {
                class,
                context: format!(" in {}", labels_path.display()),
            },
            other => other,
        })
    };
    Ok((split("train")?, split("t10k")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, count, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [LABELS_MAGIC, labels.len() as u32] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(labels);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    fn write_set(dir: &Path, gzip: bool, labels: &[u8]) {
        let n = labels.len() as u32;
        let pixels: Vec<u8> = (0..n * 4).map(|i| i as u8).collect();
        for (name, bytes) in [
            ("train-images-idx3-ubyte", idx_images(n, 2, 2, &pixels)),
            ("train-labels-idx1-ubyte", idx_labels(labels)),
            ("t10k-images-idx3-ubyte", idx_images(n, 2, 2, &pixels)),
            ("t10k-labels-idx1-ubyte", idx_labels(labels)),
        ] {
            if gzip {
                std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).expect("write");
            } else {
                std::fs::write(dir.join(name), bytes).expect("write");
            }
        }
    }

    #[test]
    fn dimensions_whose_product_overflows_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad-images-idx3-ubyte");
        let mut bytes = Vec::new();
        for x in [IMAGES_MAGIC, u32::MAX, u32::MAX, u32::MAX] {
            bytes.extend(x.to_be_bytes());
        }
        bytes.extend([0u8; 16]);
        std::fs::write(&p, bytes).expect("write");
        let e = read_images(&p).expect_err("overflow").to_string();
        assert!(
            e.contains("overflow") && e.contains("bad-images-idx3-ubyte"),
            "{e}"
        );
    }

    #[test]
    fn loads_plain_and_gzipped() {
        for gzip in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            write_set(dir.path(), gzip, &[0, 1, 1, 0, 1]);
            let (train, test) =
                load_mnist_dir("tiny", dir.path(), &["a", "b"], Normalisation::unit(1))
                    .expect("loads");
            assert_eq!(train.class_sizes(), vec![2, 3]);
            assert_eq!(test.len(), 5);
            assert_eq!(train.samples().sample_shape(), &[1, 2, 2]);
            let Features::Pixels { data, .. } = train.samples().features() else {
                panic!("pixels expected");
            };
            assert_eq!(&data[4..8], &[4, 5, 6, 7]);
        }
    }

    /// A gzip that expands far past what its header announces is refused after reading
    /// one byte more than announced, and a header announcing more than a dataset file may
    /// hold is refused before anything is allocated.
    #[test]
    fn decompression_is_bounded_by_the_header() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bomb-labels-idx1-ubyte.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::best(),
        );
        gz.write_all(&[0, 0, 8, 1, 0, 0, 0, 100]).expect("header");
        // 256 MiB of zeros behind a header that announces 100 labels: about 250 KiB on disk.
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            gz.write_all(&zeros).expect("body");
        }
        gz.finish().expect("finish");
        assert!(std::fs::metadata(&path).expect("meta").len() < 1 << 20);
        let e = read_labels(&path).expect_err("oversized").to_string();
        assert!(
            e.contains(
                "oversized IDX file: the header announces 100 data bytes, the file holds more"
            ),
            "{e}"
        );
        let huge = dir.path().join("huge-images-idx3-ubyte");
        std::fs::write(&huge, idx_images(65_536, 256, 512, &[])).expect("write");
        let e = read_images(&huge).expect_err("huge").to_string();
        assert!(
            e.contains(
                "announces 8589934608 bytes, more than the 4294967296 a dataset file may hold"
            ),
            "{e}"
        );
    }

    #[test]
    fn malformed_files_are_named_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_set(dir.path(), false, &[0, 1, 1]);
        let train_images = dir.path().join("train-images-idx3-ubyte");
        let load = || load_mnist_dir("tiny", dir.path(), &["a", "b"], Normalisation::unit(1));

        // Bad magic number.
        let mut bytes = idx_images(3, 2, 2, &[0; 12]);
        bytes[3] = 1;
        std::fs::write(&train_images, &bytes).expect("write");
        let e = load().expect_err("bad magic").to_string();
        assert!(
            e.contains("train-images-idx3-ubyte: bad IDX magic number 2049, expected 2051"),
            "{e}"
        );

        // Truncated body.
        std::fs::write(&train_images, idx_images(3, 2, 2, &[0; 10])).expect("write");
        let e = load().expect_err("truncated").to_string();
        assert!(
            e.contains("truncated IDX file: the header announces 12 data bytes, the file holds 10"),
            "{e}"
        );

        // Truncated header.
        std::fs::write(&train_images, [0u8, 0, 8]).expect("write");
        assert!(
            load()
                .expect_err("header")
                .to_string()
                .contains("truncated IDX header")
        );

        // Wrong count between images and labels.
        std::fs::write(&train_images, idx_images(4, 2, 2, &[0; 16])).expect("write");
        let e = load().expect_err("count").to_string();
        assert!(e.contains("wrong count: 3 labels for the 4 images"), "{e}");

        // Label out of range.
        std::fs::write(&train_images, idx_images(3, 2, 2, &[0; 12])).expect("write");
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx_labels(&[0, 7, 1]),
        )
        .expect("write");
        let e = load().expect_err("label").to_string();
        assert!(e.contains("label 7 at index 1; expected 0..2"), "{e}");

        // Corrupt gzip.
        std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).expect("rm");
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte.gz"),
            [0x1f, 0x8b, 0, 1, 2],
        )
        .expect("write");
        assert!(
            load()
                .expect_err("gzip")
                .to_string()
                .contains("corrupt gzip data")
        );

        // Missing file.
        std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte.gz")).expect("rm");
        let e = load().expect_err("missing").to_string();
        assert!(
            e.starts_with("tiny train labels not found: looked for"),
            "{e}"
        );
    }

    #[test]
    fn a_class_without_samples_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_set(dir.path(), false, &[0, 0, 0]);
        let e = load_mnist_dir("tiny", dir.path(), &["a", "b"], Normalisation::unit(1))
            .expect_err("class b empty")
            .to_string();
        assert!(e.starts_with("class \"b\" has no samples in "), "{e}");
    }
}
