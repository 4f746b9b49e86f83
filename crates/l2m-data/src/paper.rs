//! The datasets of the learn2mix paper: where each lives under a data folder and how it
//! loads. Imbalancing is applied by the caller ([`crate::Imbalance`]), because it belongs to
//! the experiment, not to the data.
//!
//! Layout under the data folder (what `cargo xtask fetch-data` writes):
//!
//! | dataset | files |
//! |---|---|
//! | MNIST | `mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` |
//! | Fashion-MNIST | `fashion_mnist/` the same four names |
//! | CIFAR-10 | `cifar10/cifar-10-binary.tar.gz` (or unpacked), else the lossy `cifar10_jpeg/cifar10-jpeg.tar.gz` |
//! | CIFAR-100 | `cifar100/cifar-100-binary.tar.gz` (or unpacked) |
//! | Imagenette | `imagenette/imagenette2-160.tgz` (or unpacked) |
//! | IMDB | `imdb/aclImdb_v1.tar.gz`, `imdb/aclImdb_v1_labeled.tar.gz` or `imdb/aclImdb/` |
//! | Wine Quality | `wine_quality/winequality-{red,white}.csv` |
//! | California Housing | `california_housing/housing.csv` |

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::load::Normalisation;
use crate::load::cifar::{CIFAR10_CLASSES, load_cifar10, load_cifar100};
use crate::load::idx::{FASHION_CLASSES, MNIST_CLASSES, load_mnist_dir};
use crate::load::image_folder::{ImageFolderOptions, load_image_folder};
use crate::load::imdb::{ImdbOptions, Vocabulary, load_imdb};
use crate::load::tabular::{load_california_housing, load_wine_quality};
use crate::{ClassDataset, DataError, Result};

/// A dataset of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaperDataset {
    /// MNIST digits.
    Mnist,
    /// Fashion-MNIST.
    FashionMnist,
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100 (fine labels).
    Cifar100,
    /// Imagenette (10 ImageNet classes), 224 x 224.
    Imagenette,
    /// IMDB reviews.
    Imdb,
    /// Wine Quality (red and white).
    WineQuality,
    /// California Housing.
    CaliforniaHousing,
}

/// How pixels are presented: classification normalises, reconstruction keeps [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PixelUse {
    /// Normalised inputs (MNIST `(x - 0.5) / 0.5`, CIFAR per-channel statistics).
    Classification,
    /// Inputs and targets in [0, 1].
    Reconstruction,
}

/// A loaded paper dataset.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Training split (not yet imbalanced).
    pub train: ClassDataset,
    /// Test split (never imbalanced).
    pub test: ClassDataset,
    /// The file or folder read.
    pub source: PathBuf,
    /// Facts a user should know (a lossy copy was used, rows were dropped, ...).
    pub notes: Vec<String>,
    /// IMDB's vocabulary, to save with a run.
    pub vocab: Option<Vocabulary>,
}

/// All of them, in the paper's order.
pub const ALL: [PaperDataset; 8] = [
    PaperDataset::Mnist,
    PaperDataset::FashionMnist,
    PaperDataset::Cifar10,
    PaperDataset::Cifar100,
    PaperDataset::Imagenette,
    PaperDataset::Imdb,
    PaperDataset::WineQuality,
    PaperDataset::CaliforniaHousing,
];

impl PaperDataset {
    /// The name used on the command line and by `cargo xtask fetch-data`.
    pub fn name(self) -> &'static str {
        match self {
            PaperDataset::Mnist => "mnist",
            PaperDataset::FashionMnist => "fashion-mnist",
            PaperDataset::Cifar10 => "cifar10",
            PaperDataset::Cifar100 => "cifar100",
            PaperDataset::Imagenette => "imagenette",
            PaperDataset::Imdb => "imdb",
            PaperDataset::WineQuality => "wine-quality",
            PaperDataset::CaliforniaHousing => "california-housing",
        }
    }

    /// Candidate locations under `data_dir`, preferred first.
    pub fn candidates(self, data_dir: &Path) -> Vec<PathBuf> {
        let d = |p: &str| data_dir.join(p);
        match self {
            PaperDataset::Mnist => vec![d("mnist")],
            PaperDataset::FashionMnist => vec![d("fashion_mnist")],
            PaperDataset::Cifar10 => vec![
                d("cifar10/cifar-10-binary.tar.gz"),
                d("cifar10/cifar-10-batches-bin"),
                d("cifar10_jpeg/cifar10-jpeg.tar.gz"),
                d("cifar10_jpeg/cifar10"),
            ],
            PaperDataset::Cifar100 => vec![
                d("cifar100/cifar-100-binary.tar.gz"),
                d("cifar100/cifar-100-binary"),
            ],
            PaperDataset::Imagenette => vec![
                d("imagenette/imagenette2-160.tgz"),
                d("imagenette/imagenette2-160"),
            ],
            PaperDataset::Imdb => vec![
                d("imdb/aclImdb_v1.tar.gz"),
                d("imdb/aclImdb_v1_labeled.tar.gz"),
                d("imdb/aclImdb"),
            ],
            PaperDataset::WineQuality => vec![d("wine_quality")],
            PaperDataset::CaliforniaHousing => vec![d("california_housing/housing.csv")],
        }
    }

    /// The first candidate that exists.
    pub fn locate(self, data_dir: &Path) -> Result<PathBuf> {
        let tried = self.candidates(data_dir);
        tried
            .iter()
            .find(|p| p.exists())
            .cloned()
            .ok_or_else(|| DataError::Missing {
                what: format!(
                    "dataset {} (fetch it with `cargo xtask fetch-data {}`, or pass --data-dir)",
                    self.name(),
                    self.name()
                ),
                tried,
            })
    }

    /// Loads `(train, test)` from `data_dir`; `seed` drives the splits the paper defines
    /// itself (IMDB 80/20, Wine and Housing 50/50).
    pub fn load(self, data_dir: &Path, pixels: PixelUse, seed: u64) -> Result<Loaded> {
        let source = self.locate(data_dir)?;
        let mut notes = Vec::new();
        let mut vocab = None;
        let norm = |classification: Normalisation, channels: usize| match pixels {
            PixelUse::Classification => classification,
            PixelUse::Reconstruction => Normalisation::unit(channels),
        };
        let (train, test) = match self {
            PaperDataset::Mnist => load_mnist_dir(
                "mnist",
                &source,
                &MNIST_CLASSES,
                norm(Normalisation::half(1), 1),
            )?,
            PaperDataset::FashionMnist => load_mnist_dir(
                "fashion-mnist",
                &source,
                &FASHION_CLASSES,
                norm(Normalisation::half(1), 1),
            )?,
            PaperDataset::Cifar10 if source.to_string_lossy().contains("cifar10_jpeg") => {
                notes.push(
                    "CIFAR-10 read from a lossy JPEG copy: pixel values differ slightly from the original batches"
                        .into(),
                );
                let opts = ImageFolderOptions {
                    size: Some((32, 32)),
                    channels: 3,
                    classes: Some(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()),
                    norm: norm(Normalisation::cifar(), 3),
                };
                let mut sets = load_image_folder(&source, &["train", "test"], &opts)?;
                let test = sets.pop().ok_or_else(|| missing_split(&source))?;
                let train = sets.pop().ok_or_else(|| missing_split(&source))?;
                (train.renamed("cifar10/train"), test.renamed("cifar10/test"))
            }
            PaperDataset::Cifar10 => load_cifar10(&source, norm(Normalisation::cifar(), 3))?,
            PaperDataset::Cifar100 => load_cifar100(&source, norm(Normalisation::cifar(), 3))?,
            PaperDataset::Imagenette => {
                let opts = ImageFolderOptions {
                    size: Some((224, 224)),
                    channels: 3,
                    classes: None,
                    norm: norm(Normalisation::imagenet(), 3),
                };
                let mut sets = load_image_folder(&source, &["train", "val"], &opts)?;
                let test = sets.pop().ok_or_else(|| missing_split(&source))?;
                let train = sets.pop().ok_or_else(|| missing_split(&source))?;
                (
                    train.renamed("imagenette/train"),
                    test.renamed("imagenette/test"),
                )
            }
            PaperDataset::Imdb => {
                let imdb = load_imdb(
                    &source,
                    &ImdbOptions {
                        seed,
                        ..ImdbOptions::default()
                    },
                )?;
                notes.push(format!("vocabulary of {} tokens", imdb.vocab.len()));
                vocab = Some(imdb.vocab);
                (imdb.train, imdb.test)
            }
            PaperDataset::WineQuality => load_wine_quality(&source, seed)?,
            PaperDataset::CaliforniaHousing => {
                let (train, test, n) = load_california_housing(&source, seed)?;
                notes.push(format!(
                    "dropped {} rows with a missing value and {} ISLAND rows{}",
                    n.dropped_missing,
                    n.dropped_island,
                    if n.rescaled_target {
                        "; median_house_value divided by 100,000"
                    } else {
                        ""
                    }
                ));
                (train, test)
            }
        };
        Ok(Loaded {
            train,
            test,
            source,
            notes,
            vocab,
        })
    }
}

impl std::str::FromStr for PaperDataset {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        ALL.iter()
            .copied()
            .find(|d| d.name() == s)
            .ok_or_else(|| DataError::InvalidParameter {
                what: "dataset",
                reason: format!(
                    "unknown dataset {s:?}; expected one of {}",
                    ALL.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

fn missing_split(path: &Path) -> DataError {
    DataError::Missing {
        what: "a split".into(),
        tried: vec![path.to_path_buf()],
    }
}

#[cfg(test)]
mod real_data {
    //! Loads the real files where `../shared/data` (or `L2M_SHARED_DATA`) exists, as on CI,
    //! and checks them against the spec. Streams and counts; trains nothing.
    #![allow(
        clippy::print_stderr,
        reason = "says which real-data checks were skipped"
    )]

    use super::*;
    use crate::Imbalance;

    fn shared() -> Option<PathBuf> {
        let p = std::env::var_os("L2M_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
        if p.is_dir() {
            Some(p)
        } else {
            eprintln!("real-data checks skipped: {} not found", p.display());
            None
        }
    }

    /// The shared folder uses the same layout as data/, except CIFAR-10 (JPEG copy) and
    /// IMDB (repacked archive), which `candidates` also accepts.
    fn load(d: PaperDataset, pixels: PixelUse) -> Option<Loaded> {
        let root = shared()?;
        Some(d.load(&root, pixels, 0).expect("real dataset loads"))
    }

    const MNIST_TRAIN: [usize; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];

    #[test]
    fn mnist_counts_and_reconstruction_imbalance() {
        let Some(l) = load(PaperDataset::Mnist, PixelUse::Classification) else {
            return;
        };
        assert_eq!(l.train.class_sizes(), MNIST_TRAIN);
        assert_eq!(l.test.len(), 10_000);
        assert_eq!(l.train.samples().sample_shape(), &[1, 28, 28]);
        assert_eq!(
            l.train.samples().features().bytes(),
            60_000 * 784,
            "stored as bytes"
        );
        // MNIST reconstruction: digits 5-9 keep 20%.
        let keep: Vec<f64> = (0..10).map(|c| if c >= 5 { 0.2 } else { 1.0 }).collect();
        let imb = l
            .train
            .imbalanced(&Imbalance::Factors { keep }, 0)
            .expect("imbalance");
        let want: Vec<usize> = MNIST_TRAIN
            .iter()
            .enumerate()
            .map(|(c, &n)| if c >= 5 { n / 5 } else { n })
            .collect();
        assert_eq!(imb.class_sizes(), want);
        assert_eq!(
            l.test.class_sizes().iter().sum::<usize>(),
            10_000,
            "test untouched"
        );
    }

    #[test]
    fn fashion_mnist_is_balanced() {
        let Some(l) = load(PaperDataset::FashionMnist, PixelUse::Reconstruction) else {
            return;
        };
        assert_eq!(l.train.class_sizes(), vec![6000; 10]);
        assert_eq!(l.test.class_sizes(), vec![1000; 10]);
        assert_eq!(l.train.class_names()[9], "Ankle boot");
    }

    #[test]
    fn wine_quality_split_and_white_keeps_ten_percent() {
        let Some(l) = load(PaperDataset::WineQuality, PixelUse::Classification) else {
            return;
        };
        // 1599 red and 4898 white, split 50/50 by type (round half to even on 799.5 -> 800).
        assert_eq!(l.train.class_sizes(), vec![799, 2449]);
        assert_eq!(l.test.class_sizes(), vec![800, 2449]);
        assert_eq!(l.train.samples().sample_shape(), &[11]);
        let imb = l
            .train
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![1.0, 0.1],
                },
                0,
            )
            .expect("imbalance");
        assert_eq!(imb.class_sizes(), vec![799, 244]);
    }

    #[test]
    fn california_housing_groups_and_units() {
        let Some(l) = load(PaperDataset::CaliforniaHousing, PixelUse::Classification) else {
            return;
        };
        // 20640 rows, 207 with a missing total_bedrooms, ISLAND (5 rows) dropped.
        let total = l.train.len() + l.test.len();
        assert_eq!(total, 20640 - 207 - 5);
        assert!(
            l.notes[0].contains("dropped 207 rows with a missing value and 5 ISLAND rows"),
            "{:?}",
            l.notes
        );
        let crate::Targets::Regression(t) = l.train.samples().targets() else {
            panic!("regression")
        };
        assert!(
            t.iter().all(|&v| v > 0.1 && v <= 5.00001 + 1e-4),
            "target in units of 100,000"
        );
        // <1H OCEAN, NEAR BAY, NEAR OCEAN keep 5%; INLAND all.
        let imb = l
            .train
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![0.05, 1.0, 0.05, 0.05],
                },
                0,
            )
            .expect("imbalance");
        let sizes = l.train.class_sizes();
        assert_eq!(imb.class_sizes()[1], sizes[1]);
        assert_eq!(imb.class_sizes()[0], sizes[0] / 20);
    }

    #[test]
    fn imdb_split_vocabulary_and_positive_keeps_thirty_percent() {
        let Some(l) = load(PaperDataset::Imdb, PixelUse::Classification) else {
            return;
        };
        assert_eq!(l.train.class_sizes(), vec![20_000, 20_000]);
        assert_eq!(l.test.class_sizes(), vec![5_000, 5_000]);
        assert_eq!(l.train.samples().sample_shape(), &[500]);
        let vocab = l.vocab.expect("vocabulary");
        assert!(vocab.len() > 50_000, "{} tokens", vocab.len());
        assert!(vocab.id("movie") > 1 && vocab.id("the") > 1);
        let imb = l
            .train
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![1.0, 0.3],
                },
                0,
            )
            .expect("imbalance");
        assert_eq!(imb.class_sizes(), vec![20_000, 6_000]);
    }

    #[test]
    fn cifar10_jpeg_copy_counts_and_reconstruction_imbalance() {
        let Some(root) = shared() else { return };
        let l = PaperDataset::Cifar10
            .load(&root, PixelUse::Reconstruction, 0)
            .expect("CIFAR-10 JPEG copy loads");
        assert!(l.notes[0].contains("lossy JPEG copy"));
        assert_eq!(l.train.class_sizes(), vec![5000; 10]);
        assert_eq!(l.test.class_sizes(), vec![1000; 10]);
        assert_eq!(l.train.samples().sample_shape(), &[3, 32, 32]);
        // CIFAR-10 reconstruction: all but classes 4 and 5 keep 10%.
        let keep: Vec<f64> = (0..10)
            .map(|c| if c == 4 || c == 5 { 1.0 } else { 0.1 })
            .collect();
        let imb = l
            .train
            .imbalanced(&Imbalance::Factors { keep }, 0)
            .expect("imbalance");
        assert_eq!(
            imb.class_sizes(),
            vec![500, 500, 500, 500, 5000, 5000, 500, 500, 500, 500]
        );
    }
}
