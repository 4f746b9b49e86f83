//! The binary versions of CIFAR-10 (`cifar-10-batches-bin`) and CIFAR-100
//! (`cifar-100-binary`, fine labels), from the folder or its `.tar.gz`.
//!
//! CIFAR-10 records are 3073 bytes (label, then 1024 red, 1024 green, 1024 blue pixels);
//! CIFAR-100 records are 3074 bytes (coarse label, fine label, pixels).

use std::collections::BTreeMap;
use std::path::Path;

use crate::load::archive::Source;
use crate::load::{Normalisation, format_err};
use crate::{ClassDataset, DataError, Features, Result, Targets};

/// CIFAR-10's classes in label order (`batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ten,
    Hundred,
}

impl Variant {
    fn record(self) -> usize {
        match self {
            Variant::Ten => 1 + PIXELS,
            Variant::Hundred => 2 + PIXELS,
        }
    }
    fn classes(self) -> usize {
        match self {
            Variant::Ten => 10,
            Variant::Hundred => 100,
        }
    }
    fn files(self) -> (Vec<&'static str>, Vec<&'static str>, &'static str) {
        match self {
            Variant::Ten => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                vec!["test_batch.bin"],
                "batches.meta.txt",
            ),
            Variant::Hundred => (vec!["train.bin"], vec!["test.bin"], "fine_label_names.txt"),
        }
    }
}

/// Loads CIFAR-10 `(train, test)` from `cifar-10-batches-bin/` (or the folder holding it)
/// or `cifar-10-binary.tar.gz`.
pub fn load_cifar10(path: &Path, norm: Normalisation) -> Result<(ClassDataset, ClassDataset)> {
    load(path, Variant::Ten, norm)
}

/// Loads CIFAR-100 `(train, test)` with the 100 fine labels from `cifar-100-binary/` (or
/// the folder holding it) or `cifar-100-binary.tar.gz`.
pub fn load_cifar100(path: &Path, norm: Normalisation) -> Result<(ClassDataset, ClassDataset)> {
    load(path, Variant::Hundred, norm)
}

fn base(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn load(
    path: &Path,
    variant: Variant,
    norm: Normalisation,
) -> Result<(ClassDataset, ClassDataset)> {
    let source = Source::open(path)?;
    let (train_files, test_files, meta) = variant.files();
    let wanted: Vec<&str> = train_files
        .iter()
        .chain(&test_files)
        .copied()
        .chain([meta])
        .collect();
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    source.for_each(
        |n| wanted.contains(&base(n)),
        |n, bytes| {
            found.insert(base(n).to_string(), bytes);
            Ok(())
        },
    )?;
    let names: Vec<String> = match found.get(meta) {
        Some(bytes) => String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None if variant == Variant::Ten => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        None => (0..100).map(|i| format!("class-{i}")).collect(),
    };
    if names.len() != variant.classes() {
        return Err(format_err(
            &path.join(meta),
            format!(
                "wrong count: {} class names, expected {}",
                names.len(),
                variant.classes()
            ),
        ));
    }
    let split = |files: &[&str], split: &str| -> Result<ClassDataset> {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for f in files {
            let bytes = found.get(*f).ok_or_else(|| DataError::Missing {
                what: format!("CIFAR file {f}"),
                tried: vec![path.to_path_buf()],
            })?;
            let file_path = path.join(f);
            let record = variant.record();
            if bytes.is_empty() || bytes.len() % record != 0 {
                return Err(format_err(
                    &file_path,
                    format!(
                        "truncated file: {} bytes is not a whole number of {record}-byte records",
                        bytes.len()
                    ),
                ));
            }
            pixels.reserve(bytes.len() / record * PIXELS);
            for (i, r) in bytes.chunks_exact(record).enumerate() {
                let label = r[record - PIXELS - 1];
                if usize::from(label) >= variant.classes() {
                    return Err(format_err(
                        &file_path,
                        format!(
                            "label {label} in record {i}; expected 0..{}",
                            variant.classes()
                        ),
                    ));
                }
                labels.push(u32::from(label));
                pixels.extend_from_slice(&r[record - PIXELS..]);
            }
        }
        ClassDataset::new(
            format!("cifar{}/{split}", variant.classes()),
            Features::Pixels {
                data: pixels,
                mean: norm.mean.clone(),
                std: norm.std.clone(),
            },
            vec![3, 32, 32],
            Targets::Classes,
            labels,
            names.clone(),
        )
    };
    Ok((split(&train_files, "train")?, split(&test_files, "test")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::archive::tests::{write_tar_gz, write_tree};

    fn record10(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, PIXELS));
        r
    }

    fn cifar10_files(prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for b in 1..=5u8 {
            let recs: Vec<u8> = (0..10u8).flat_map(|c| record10(c, b)).collect();
            files.push((format!("{prefix}data_batch_{b}.bin"), recs));
        }
        files.push((
            format!("{prefix}test_batch.bin"),
            (0..10u8).flat_map(|c| record10(c, 9)).collect(),
        ));
        files.push((
            format!("{prefix}batches.meta.txt"),
            CIFAR10_CLASSES.join("\n").into_bytes(),
        ));
        files
    }

    #[test]
    fn cifar10_from_folder_and_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &cifar10_files("cifar-10-batches-bin/"));
        let archive = dir.path().join("cifar-10-binary.tar.gz");
        write_tar_gz(&archive, &cifar10_files("cifar-10-batches-bin/"));
        for p in [
            dir.path().join("cifar-10-batches-bin"),
            dir.path().to_path_buf(),
            archive,
        ] {
            let (train, test) = load_cifar10(&p, Normalisation::cifar()).expect("loads");
            assert_eq!(train.class_sizes(), vec![5; 10]);
            assert_eq!(test.class_sizes(), vec![1; 10]);
            assert_eq!(train.class_names()[9], "truck");
            assert_eq!(train.samples().sample_shape(), &[3, 32, 32]);
        }
    }

    #[test]
    fn cifar100_fine_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = |fine: u8| {
            let mut r = vec![fine / 5, fine];
            r.extend(std::iter::repeat_n(fine, PIXELS));
            r
        };
        let all: Vec<u8> = (0..100u8).flat_map(rec).collect();
        let names: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        write_tree(
            dir.path(),
            &[
                ("train.bin".into(), all.clone()),
                ("test.bin".into(), all),
                ("fine_label_names.txt".into(), names.join("\n").into_bytes()),
            ],
        );
        let (train, _) = load_cifar100(dir.path(), Normalisation::cifar()).expect("loads");
        assert_eq!(train.num_classes(), 100);
        assert_eq!(train.class_sizes(), vec![1; 100]);
        assert_eq!(train.members()[42], vec![42]);
    }

    #[test]
    fn malformed_cifar_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = cifar10_files("");
        files[0].1.pop(); // truncate data_batch_1.bin
        write_tree(dir.path(), &files);
        let e = load_cifar10(dir.path(), Normalisation::cifar())
            .expect_err("truncated")
            .to_string();
        assert!(
            e.contains("data_batch_1.bin: truncated file: 30729 bytes"),
            "{e}"
        );

        let mut files = cifar10_files("");
        files[5].1[0] = 12; // bad label in test_batch.bin
        write_tree(dir.path(), &files);
        let e = load_cifar10(dir.path(), Normalisation::cifar())
            .expect_err("label")
            .to_string();
        assert!(
            e.contains("test_batch.bin: label 12 in record 0; expected 0..10"),
            "{e}"
        );

        std::fs::remove_file(dir.path().join("test_batch.bin")).expect("rm");
        let e = load_cifar10(dir.path(), Normalisation::cifar())
            .expect_err("missing")
            .to_string();
        assert!(e.contains("CIFAR file test_batch.bin not found"), "{e}");
    }
}
