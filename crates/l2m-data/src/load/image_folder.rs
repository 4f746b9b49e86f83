//! Image folders: `split/class/*.jpg|jpeg|png`, unpacked or in a `.tar.gz`.
//!
//! This layout serves Imagenette (`imagenette2-160/{train,val}/<wnid>/*.JPEG`), the JPEG
//! copy of CIFAR-10 (`{train,test}/<class>/*.jpg`), and any user's own folder of images.
//! Images are decoded in parallel, converted to 1 or 3 channels, optionally resized
//! (bilinear), and stored as `[C, H, W]` bytes.

use std::path::Path;

use image::imageops::FilterType;
use rayon::prelude::*;

use crate::load::archive::Source;
use crate::load::{Normalisation, format_err};
use crate::{ClassDataset, DataError, Features, Result, Targets};

/// How to read an image folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolderOptions {
    /// Resize every image to `(width, height)`; `None` requires all images to share one
    /// size.
    pub size: Option<(u32, u32)>,
    /// 1 (grey) or 3 (RGB) channels.
    pub channels: usize,
    /// The classes in label order; a folder not listed is an error. `None`: the folder
    /// names found, sorted.
    pub classes: Option<Vec<String>>,
    /// Pixel normalisation the model sees.
    pub norm: Normalisation,
}

struct Entry {
    split: usize,
    class: String,
    name: String,
    bytes: Vec<u8>,
}

fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e))
}

/// Decodes one image into `[C, H, W]` bytes (1 or 3 channels), resized (bilinear) to
/// `size` when given; returns the bytes and `(width, height)`.
pub(crate) fn decode(
    bytes: &[u8],
    size: Option<(u32, u32)>,
    channels: usize,
) -> std::result::Result<(Vec<u8>, (u32, u32)), String> {
    let img =
        image::load_from_memory(bytes).map_err(|err| format!("cannot decode image: {err}"))?;
    let img = match size {
        Some((w, h)) if (img.width(), img.height()) != (w, h) => {
            img.resize_exact(w, h, FilterType::Triangle)
        }
        _ => img,
    };
    let (w, h) = (img.width(), img.height());
    let hwc: Vec<u8> = if channels == 1 {
        img.to_luma8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    // HWC -> CHW.
    let plane = (w * h) as usize;
    let mut chw = vec![0u8; hwc.len()];
    for (i, px) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            chw[c * plane + i] = v;
        }
    }
    Ok((chw, (w, h)))
}

/// Whether a file name has an image extension this loader decodes.
pub(crate) fn is_image_name(name: &str) -> bool {
    is_image(name)
}

/// Loads one dataset per name in `splits` (for example `["train", "test"]`) from the folder
/// or archive at `path`. Files are matched by their last three path components
/// `split/class/file`, so a leading folder (such as `imagenette2-160/`) is allowed. With no
/// split names, files are matched as `class/file` and one dataset is returned.
pub fn load_image_folder(
    path: &Path,
    splits: &[&str],
    opts: &ImageFolderOptions,
) -> Result<Vec<ClassDataset>> {
    Ok(load_named(path, splits, opts)?
        .0
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// One split's dataset with the file name of every sample.
pub(crate) type NamedSplit = (ClassDataset, Vec<String>);

/// Where an image file named `name` (its `/`-separated path in the folder or archive)
/// belongs: its split's position in `splits` and its class. The class is the first folder
/// under the split (under the root without split names, after `skip` leading folders);
/// folders below it are part of that class, never classes of their own.
fn place<'a>(name: &'a str, splits: &[&str], skip: usize) -> Option<(usize, &'a str, bool)> {
    if !is_image(name) {
        return None;
    }
    let parts: Vec<&str> = name.split('/').collect();
    if splits.is_empty() {
        let parts = parts.get(skip..)?;
        return (parts.len() >= 2).then(|| (0, parts[0], parts.len() > 2));
    }
    // The first folder named like a split (a leading folder such as `imagenette2-160/`
    // may come before it), then the class folder, then at least the file.
    let i = parts.iter().position(|p| splits.contains(p))?;
    let split = splits.iter().position(|s| *s == parts[i])?;
    (parts.len() >= i + 3).then(|| (split, parts[i + 1], parts.len() > i + 3))
}

/// The number of leading folders every image name shares (0 or 1) when the images come
/// from an archive: an archive is usually made of one folder (`photos/` in
/// `photos/cat/1.jpg`, `photos/dog/2.jpg`), which is not a class.
fn wrapping_folder(source: &Source, names: &[&str]) -> usize {
    if !matches!(source, Source::Archive(_)) {
        return 0;
    }
    let first = |n: &str| n.split('/').next().map(str::to_string);
    let lead = names.first().and_then(|n| first(n));
    let common = names
        .iter()
        .all(|n| n.split('/').count() >= 3 && first(n) == lead);
    usize::from(common && lead.is_some())
}

/// [`load_image_folder`], with the file name of every stored sample, and notes on how
/// images were labelled (images in nested folders).
pub(crate) fn load_named(
    path: &Path,
    splits: &[&str],
    opts: &ImageFolderOptions,
) -> Result<(Vec<NamedSplit>, Vec<String>)> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(DataError::InvalidParameter {
            what: "channels",
            reason: format!("expected 1 or 3, got {}", opts.channels),
        });
    }
    let source = Source::open(path)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    source.for_each(
        |n| place(n, splits, 0).is_some(),
        |n, bytes| {
            files.push((n.to_string(), bytes));
            Ok(())
        },
    )?;
    let skip = if splits.is_empty() {
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        wrapping_folder(&source, &names)
    } else {
        0
    };
    let mut entries = Vec::with_capacity(files.len());
    let mut nested: Option<(usize, String)> = None;
    for (name, bytes) in files {
        let Some((split, class, deeper)) = place(&name, splits, skip) else {
            continue;
        };
        if deeper {
            let (count, _) = nested.get_or_insert_with(|| {
                let folder = name.rsplit_once('/').map_or(name.as_str(), |(d, _)| d);
                (0, format!("{folder}/ is labelled {class}"))
            });
            *count += 1;
        }
        entries.push(Entry {
            split,
            class: class.to_string(),
            name: name.clone(),
            bytes,
        });
    }
    let notes: Vec<String> = nested
        .map(|(count, example)| {
            format!(
                "{count} image(s) sit in folders nested inside a class folder; each is labelled by its class folder (for example {})",
                crate::text::terminal_safe(&example)
            )
        })
        .into_iter()
        .collect();
    entries.sort_by(|a, b| (a.split, &a.class, &a.name).cmp(&(b.split, &b.class, &b.name)));

    let classes: Vec<String> = match &opts.classes {
        Some(c) => c.clone(),
        None => {
            let mut c: Vec<String> = entries.iter().map(|e| e.class.clone()).collect();
            c.sort();
            c.dedup();
            c
        }
    };
    if classes.is_empty() {
        return Err(DataError::Missing {
            what: if splits.is_empty() {
                "images under <class>/".to_string()
            } else {
                format!(
                    "images under {}",
                    splits
                        .iter()
                        .map(|s| format!("{s}/<class>/"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            },
            tried: vec![path.to_path_buf()],
        });
    }
    for e in &entries {
        if !classes.contains(&e.class) {
            return Err(DataError::UnknownClass {
                path: path.join(&e.name),
                class: e.class.clone(),
                expected: classes.join(", "),
            });
        }
    }

    let decoded: Vec<(usize, Vec<u8>, (u32, u32))> = entries
        .par_iter()
        .map(|e| {
            let file = path.join(&e.name);
            let (chw, size) =
                decode(&e.bytes, opts.size, opts.channels).map_err(|err| format_err(&file, err))?;
            let class = classes.iter().position(|c| *c == e.class).unwrap_or(0);
            Ok((class, chw, size))
        })
        .collect::<Result<_>>()?;

    let mut out = Vec::with_capacity(splits.len());
    let whole = [""];
    let names: &[&str] = if splits.is_empty() { &whole } else { splits };
    for (s, split) in names.iter().enumerate() {
        let idx: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].split == s)
            .collect();
        let Some(&first) = idx.first() else {
            return Err(DataError::Missing {
                what: format!("images in split {split:?}"),
                tried: vec![path.join(split)],
            });
        };
        let (w, h) = decoded[first].2;
        let mut pixels = Vec::with_capacity(idx.len() * (w * h) as usize * opts.channels);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in &idx {
            let (class, chw, size) = &decoded[i];
            if *size != (w, h) {
                return Err(format_err(
                    &path.join(&entries[i].name),
                    format!(
                        "image is {}x{}, but {} is {w}x{h}; give a size to resize to",
                        size.0, size.1, entries[first].name
                    ),
                ));
            }
            pixels.extend_from_slice(chw);
            labels.push(*class as u32);
        }
        let dataset = ClassDataset::new(
            format!(
                "{}{}{split}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                if split.is_empty() { "" } else { "/" }
            ),
            Features::Pixels {
                data: pixels,
                mean: opts.norm.mean.clone(),
                std: opts.norm.std.clone(),
            },
            vec![opts.channels, h as usize, w as usize],
            Targets::Classes,
            labels,
            classes.clone(),
        )
        .map_err(|e| match e {
            DataError::EmptyClass { class, .. } => DataError::EmptyClass {
                class,
                context: format!(" in split {split:?} of {}", path.display()),
            },
            other => other,
        })?;
        out.push((
            dataset,
            idx.iter().map(|&i| entries[i].name.clone()).collect(),
        ));
    }
    Ok((out, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::archive::tests::{write_tar_gz, write_tree};

    fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("root/train/cat/1.png".into(), png(4, 4, [255, 0, 0])),
            ("root/train/cat/2.PNG".into(), png(4, 4, [255, 0, 0])),
            ("root/train/dog/1.png".into(), png(4, 4, [0, 0, 255])),
            ("root/test/cat/1.png".into(), png(4, 4, [255, 0, 0])),
            ("root/test/dog/1.png".into(), png(4, 4, [0, 0, 255])),
            ("root/notes.csv".into(), b"ignored".to_vec()),
        ]
    }

    fn opts() -> ImageFolderOptions {
        ImageFolderOptions {
            size: None,
            channels: 3,
            classes: None,
            norm: Normalisation::unit(3),
        }
    }

    #[test]
    fn folder_and_archive_load_the_same_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &files());
        write_tar_gz(&dir.path().join("images.tar.gz"), &files());
        for p in [dir.path().join("root"), dir.path().join("images.tar.gz")] {
            let sets = load_image_folder(&p, &["train", "test"], &opts()).expect("loads");
            assert_eq!(
                sets[0].class_names(),
                &["cat".to_string(), "dog".to_string()]
            );
            assert_eq!(sets[0].class_sizes(), vec![2, 1]);
            assert_eq!(sets[1].class_sizes(), vec![1, 1]);
            assert_eq!(sets[0].samples().sample_shape(), &[3, 4, 4]);
            let Features::Pixels { data, .. } = sets[0].samples().features() else {
                panic!("pixels");
            };
            // Channel-first: the red plane of a red image is 255, its blue plane 0.
            assert_eq!(&data[0..16], &[255; 16]);
            assert_eq!(&data[32..48], &[0; 16]);
        }
    }

    #[test]
    fn resizes_and_converts_to_grey() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = files();
        f[1].1 = png(8, 6, [255, 0, 0]); // another size, fixed by resizing
        write_tree(dir.path(), &f);
        let o = ImageFolderOptions {
            size: Some((2, 3)),
            channels: 1,
            norm: Normalisation::unit(1),
            ..opts()
        };
        let sets = load_image_folder(&dir.path().join("root"), &["train"], &o).expect("loads");
        assert_eq!(sets[0].samples().sample_shape(), &[1, 3, 2]);
        let e = load_image_folder(&dir.path().join("root"), &["train"], &opts())
            .expect_err("mixed sizes");
        assert!(e.to_string().contains("image is 8x6, but"), "{e}");
    }

    #[test]
    fn unknown_class_folder_and_bad_image_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &files());
        let o = ImageFolderOptions {
            classes: Some(vec!["cat".into(), "bird".into()]),
            ..opts()
        };
        let e = load_image_folder(&dir.path().join("root"), &["train"], &o)
            .expect_err("dog")
            .to_string();
        assert!(
            e.contains("train/dog/1.png: unknown class folder \"dog\"; expected one of cat, bird"),
            "{e}"
        );

        std::fs::write(dir.path().join("root/train/dog/1.png"), b"not an image").expect("write");
        let e = load_image_folder(&dir.path().join("root"), &["train"], &opts())
            .expect_err("bad")
            .to_string();
        assert!(e.contains("dog/1.png: cannot decode image"), "{e}");

        let e = load_image_folder(&dir.path().join("root"), &["val"], &opts())
            .expect_err("no split")
            .to_string();
        assert!(e.contains("images under val/<class>/ not found"), "{e}");
    }
}
