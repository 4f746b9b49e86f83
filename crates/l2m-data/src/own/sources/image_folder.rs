//! A folder (or `.tar`, `.tar.gz` archive) of images in class folders: `DIR/<class>/*`, or
//! `DIR/train/<class>/` with `DIR/test/` or `DIR/val/`.

use std::path::Path;

use super::{Source, SourceKind};
use crate::own::{InputKind, Inspection, OwnData, OwnLoaded};
use crate::{Result, TaskKind};

/// Images in class folders.
pub struct ImageFolder;

impl SourceKind {
    /// A folder (or archive) of images in class folders.
    pub const IMAGE_FOLDER: SourceKind = SourceKind("image-folder");
}

impl Source for ImageFolder {
    fn name(&self) -> &'static str {
        "image-folder"
    }

    fn about(&self) -> &'static str {
        "a folder, .tar or .tar.gz of images in class folders"
    }

    fn claims(&self, data: &str) -> bool {
        let lower = data.to_ascii_lowercase();
        Path::new(data).is_dir()
            || lower.ends_with(".tar.gz")
            || lower.ends_with(".tgz")
            || lower.ends_with(".tar")
    }

    fn inspect(&self, spec: &OwnData) -> Result<Inspection> {
        spec.check()?;
        let ((size, _), channels) = spec.image_shape();
        // In a folder the images are counted by name (no file is opened), so that a small
        // folder gets a batch it can fill. An archive is not read twice for this: listing
        // its names means decompressing it whole, so its estimate stays 0 (the default
        // batch).
        let images = std::cell::Cell::new(0usize);
        let source = crate::load::archive::Source::open(Path::new(&spec.path))?;
        if matches!(source, crate::load::archive::Source::Dir(_)) {
            source.for_each(
                |n| {
                    if crate::load::image_folder::is_image_name(n) {
                        images.set(images.get() + 1);
                    }
                    false
                },
                |_, _| Ok(()),
            )?;
        }
        Ok(Inspection {
            task: TaskKind::Classification,
            why: "an image folder's class folders are the classes".into(),
            input: InputKind::Image { size, channels },
            rows_estimate: images.get(),
        })
    }

    fn load(&self, spec: &OwnData, seed: u64) -> Result<OwnLoaded> {
        spec.check()?;
        crate::own::prep::load_image_folder(spec, seed)
    }
}
