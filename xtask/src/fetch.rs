//! `cargo xtask fetch-data [NAMES...|--all] [--mirror DIR] [--data-dir DIR]`.
//!
//! Each file of `data/manifest.toml` is taken from a local mirror folder (`--mirror` or
//! `L2M_DATA_MIRROR`, same relative paths) or downloaded from its canonical URLs, written to
//! a temporary name beside its target while its checksum is computed, and renamed into
//! place only when the checksum matches. Files already present and valid are left alone,
//! so running the command again is a no-op.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use md5::Md5;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The manifest: every dataset and how to get it.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// The datasets, in the paper's order.
    pub dataset: Vec<Dataset>,
}

/// One dataset and its ways to be had.
#[derive(Debug, Deserialize)]
pub struct Dataset {
    /// The name used on the command line.
    pub name: String,
    /// Alternatives, preferred first.
    pub variant: Vec<Variant>,
}

/// One complete set of files that makes up the dataset.
#[derive(Debug, Deserialize)]
pub struct Variant {
    /// What this variant is.
    pub note: String,
    /// Its files.
    pub files: Vec<FileSpec>,
}

/// One file, its checksum and its sources.
#[derive(Debug, Deserialize)]
pub struct FileSpec {
    /// Path relative to the data folder (and to a mirror).
    pub path: String,
    /// Expected sha256, lower-case hex.
    pub sha256: Option<String>,
    /// Expected md5 where the source publishes no sha256.
    pub md5: Option<String>,
    /// Canonical download URLs, tried in order; empty for mirror-only files.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// Reads and checks the manifest.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let m: Manifest =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for d in &m.dataset {
        for v in &d.variant {
            for f in &v.files {
                if f.sha256.is_none() && f.md5.is_none() {
                    bail!(
                        "{}: file {} of {} has no checksum",
                        path.display(),
                        f.path,
                        d.name
                    );
                }
            }
        }
    }
    Ok(m)
}

/// Where files come from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A local folder with the same layout.
    Mirror(PathBuf),
    /// The network.
    Network,
}

/// What happened to one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every file was already present and valid.
    Present(String),
    /// Files were copied or downloaded (how many), and the variant used.
    Fetched(usize, String),
    /// The mirror holds no variant of it.
    NotInMirror,
}

struct Hashers {
    sha256: Sha256,
    md5: Md5,
}

impl Hashers {
    fn new() -> Self {
        Self {
            sha256: Sha256::new(),
            md5: Md5::new(),
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
    }
    fn check(self, spec: &FileSpec) -> Result<(), String> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        if let Some(want) = &spec.sha256 {
            let got = hex(&self.sha256.finalize());
            if &got != want {
                return Err(format!("sha256 {got}, expected {want}"));
            }
        } else if let Some(want) = &spec.md5 {
            let got = hex(&self.md5.finalize());
            if &got != want {
                return Err(format!("md5 {got}, expected {want}"));
            }
        }
        Ok(())
    }
}

/// Copies `reader` into `dest` through a temporary file, checking the checksum; the
/// temporary file is removed on any failure.
fn write_verified(
    mut reader: impl Read,
    dest: &Path,
    spec: &FileSpec,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = dest.with_file_name(format!(
        ".{}.part",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut out =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut hashers = Hashers::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).context("reading the source")?;
            if n == 0 {
                break;
            }
            hashers.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", tmp.display()))?;
            progress.inc(n as u64);
        }
        out.sync_all()?;
        hashers
            .check(spec)
            .map_err(|e| anyhow::anyhow!("{} failed verification: {e}", spec.path))?;
        fs::rename(&tmp, dest).with_context(|| format!("renaming into {}", dest.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `path` exists and has the expected checksum.
fn is_valid(path: &Path, spec: &FileSpec) -> anyhow::Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hashers = Hashers::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hashers.update(&buf[..n]);
    }
    Ok(hashers.check(spec).is_ok())
}

fn bar(len: u64, label: &str, quiet: bool) -> indicatif::ProgressBar {
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:40} [{bar:30}] {bytes}/{total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(label.to_string());
    pb
}

fn fetch_file(
    data_dir: &Path,
    spec: &FileSpec,
    origin: &Origin,
    quiet: bool,
) -> anyhow::Result<()> {
    let dest = data_dir.join(&spec.path);
    match origin {
        Origin::Mirror(dir) => {
            let src = dir.join(&spec.path);
            let f = fs::File::open(&src).with_context(|| format!("opening {}", src.display()))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let pb = bar(len, &spec.path, quiet);
            write_verified(f, &dest, spec, &pb)?;
            pb.finish_and_clear();
            Ok(())
        }
        Origin::Network => {
            let mut errors = Vec::new();
            for url in &spec.urls {
                match ureq::get(url).call() {
                    Ok(response) => {
                        let len = response
                            .headers()
                            .get("content-length")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let pb = bar(len, &spec.path, quiet);
                        let reader = response.into_body().into_reader();
                        match write_verified(reader, &dest, spec, &pb) {
                            Ok(()) => {
                                pb.finish_and_clear();
                                return Ok(());
                            }
                            Err(e) => errors.push(format!("{url}: {e:#}")),
                        }
                    }
                    Err(e) => errors.push(format!("{url}: {e}")),
                }
            }
            bail!(
                "could not download {}:\n    {}\n  Without network access, copy the files from a local folder with \
                 `cargo xtask fetch-data --mirror DIR` (or set L2M_DATA_MIRROR)",
                spec.path,
                errors.join("\n    ")
            )
        }
    }
}

/// Brings one dataset into `data_dir`.
pub fn fetch_dataset(
    data_dir: &Path,
    d: &Dataset,
    origin: &Origin,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    // Already there, in any variant?
    for v in &d.variant {
        let mut all = true;
        for f in &v.files {
            if !is_valid(&data_dir.join(&f.path), f)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Outcome::Present(v.note.clone()));
        }
    }
    let usable: Vec<&Variant> = d
        .variant
        .iter()
        .filter(|v| match origin {
            Origin::Mirror(dir) => v.files.iter().all(|f| dir.join(&f.path).is_file()),
            Origin::Network => v.files.iter().all(|f| !f.urls.is_empty()),
        })
        .collect();
    let Some(variant) = usable.first() else {
        return match origin {
            Origin::Mirror(_) => Ok(Outcome::NotInMirror),
            Origin::Network => bail!("dataset {} has no downloadable source", d.name),
        };
    };
    let mut fetched = 0;
    for f in &variant.files {
        if !is_valid(&data_dir.join(&f.path), f)? {
            fetch_file(data_dir, f, origin, quiet)?;
            fetched += 1;
        }
    }
    Ok(Outcome::Fetched(fetched, variant.note.clone()))
}

/// `cargo xtask fetch-data`: datasets into `data/`, verified against
/// `data/manifest.toml`.
#[derive(Debug, clap::Parser)]
#[command(name = "fetch-data")]
pub struct FetchArgs {
    /// The datasets to fetch (names in data/manifest.toml).
    names: Vec<String>,
    /// Every dataset of the manifest.
    #[arg(long)]
    all: bool,
    /// No progress bars.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// A folder holding the files (instead of the network; default: $L2M_DATA_MIRROR).
    #[arg(long, value_name = "DIR")]
    mirror: Option<PathBuf>,
    /// Where the datasets go (default: data/).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs the command; returns the report lines.
pub fn run(root: &Path, args: FetchArgs) -> anyhow::Result<Vec<String>> {
    let FetchArgs {
        names,
        all,
        quiet,
        mirror,
        data_dir,
    } = args;
    let mirror = mirror.or_else(|| std::env::var_os("L2M_DATA_MIRROR").map(PathBuf::from));
    let data_dir = data_dir.unwrap_or_else(|| root.join("data"));
    let manifest = read_manifest(&root.join("data/manifest.toml"))?;
    let known: Vec<&str> = manifest.dataset.iter().map(|d| d.name.as_str()).collect();
    if !all && names.is_empty() {
        bail!(
            "name the datasets to fetch ({}) or pass --all",
            known.join(", ")
        );
    }
    for n in &names {
        if !known.contains(&n.as_str()) {
            bail!(
                "unknown dataset {n:?}; expected one of {}",
                known.join(", ")
            );
        }
    }
    let origin = match &mirror {
        Some(dir) if !dir.is_dir() => bail!("--mirror {}: not a folder", dir.display()),
        Some(dir) => Origin::Mirror(dir.clone()),
        None => Origin::Network,
    };
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for d in manifest
        .dataset
        .iter()
        .filter(|d| all || names.contains(&d.name))
    {
        match fetch_dataset(&data_dir, d, &origin, quiet) {
            Ok(Outcome::Present(note)) => {
                report.push(format!("{:<20} present and verified ({note})", d.name))
            }
            Ok(Outcome::Fetched(n, note)) => report.push(format!(
                "{:<20} fetched {n} file(s) from {} and verified ({note})",
                d.name,
                match &origin {
                    Origin::Mirror(m) => m.display().to_string(),
                    Origin::Network => "the network".into(),
                }
            )),
            Ok(Outcome::NotInMirror) if !all => {
                // Named explicitly: a dataset that cannot be provided is a failure.
                report.push(format!("{:<20} FAILED: not in the mirror", d.name));
                failed.push(d.name.clone());
            }
            // With --all: every dataset the mirror has; the others are listed.
            Ok(Outcome::NotInMirror) => report.push(format!("{:<20} not in the mirror", d.name)),
            Err(e) => {
                report.push(format!("{:<20} FAILED: {e:#}", d.name));
                failed.push(d.name.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("{}\nfailed: {}", report.join("\n"), failed.join(", "));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }

    fn setup(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let mirror = root.path().join("mirror");
        for (p, b) in files {
            let f = mirror.join(p);
            fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            fs::write(f, b).expect("write");
        }
        fs::create_dir_all(root.path().join("data")).expect("mkdir");
        let manifest = format!(
            "[[dataset]]\nname = \"a\"\n[[dataset.variant]]\nnote = \"x\"\nfiles = [{{ path = \"a/one.bin\", sha256 = \"{}\", urls = [] }}]\n\
             [[dataset]]\nname = \"b\"\n[[dataset.variant]]\nnote = \"y\"\nfiles = [{{ path = \"b/two.bin\", sha256 = \"{}\", urls = [] }}]\n",
            sha(b"one"),
            sha(b"two")
        );
        fs::write(root.path().join("data/manifest.toml"), manifest).expect("write");
        (root, mirror)
    }

    fn args(v: &[&str]) -> FetchArgs {
        use clap::Parser;
        FetchArgs::try_parse_from(std::iter::once("fetch-data").chain(v.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn mirror_fetch_verifies_is_idempotent_and_reports_missing() {
        let (root, mirror) = setup(&[("a/one.bin", b"one")]);
        let m = mirror.to_str().expect("utf-8");
        let report = run(root.path(), args(&["--all", "--mirror", m, "-q"])).expect("runs");
        assert!(
            report[0].starts_with("a                    fetched 1 file(s) from"),
            "{report:?}"
        );
        assert_eq!(report[1], "b                    not in the mirror");
        assert_eq!(
            fs::read(root.path().join("data/a/one.bin")).expect("copied"),
            b"one"
        );
        let again = run(root.path(), args(&["a", "--mirror", m, "-q"])).expect("runs");
        assert_eq!(
            again,
            vec!["a                    present and verified (x)".to_string()]
        );
        // A dataset named explicitly that the mirror lacks fails the command.
        let e = run(root.path(), args(&["a", "b", "--mirror", m, "-q"])).expect_err("missing");
        let e = format!("{e:#}");
        assert!(
            e.contains("b                    FAILED: not in the mirror") && e.contains("failed: b"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_checksum_leaves_no_file_behind() {
        let (root, mirror) = setup(&[("a/one.bin", b"corrupted")]);
        let e = run(
            root.path(),
            args(&["a", "--mirror", mirror.to_str().expect("utf-8"), "-q"]),
        )
        .expect_err("checksum")
        .to_string();
        assert!(e.contains("a/one.bin failed verification: sha256"), "{e}");
        let left: Vec<_> = fs::read_dir(root.path().join("data/a"))
            .expect("dir")
            .collect();
        assert!(left.is_empty(), "no partial file: {left:?}");
    }

    #[test]
    fn usage_errors_are_clear() {
        let (root, _) = setup(&[]);
        assert!(
            run(root.path(), args(&[]))
                .expect_err("nothing")
                .to_string()
                .contains("or pass --all")
        );
        assert!(
            run(root.path(), args(&["zzz"]))
                .expect_err("unknown")
                .to_string()
                .contains("unknown dataset \"zzz\"")
        );
        let e = run(root.path(), args(&["a", "--mirror", "/nonexistent"]))
            .expect_err("mirror")
            .to_string();
        assert!(e.contains("--mirror /nonexistent: not a folder"), "{e}");
    }

    #[test]
    fn no_network_and_no_mirror_says_what_to_do() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(root.path().join("data")).expect("mkdir");
        // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        let manifest = format!(
            "[[dataset]]\nname = \"a\"\n[[dataset.variant]]\nnote = \"x\"\nfiles = [{{ path = \"a/one.bin\", sha256 = \"{}\", urls = [\"http://127.0.0.1:9/one.bin\"] }}]\n",
            sha(b"one")
        );
        fs::write(root.path().join("data/manifest.toml"), manifest).expect("write");
        let e = run(root.path(), args(&["a", "-q"]))
            .expect_err("no network")
            .to_string();
        assert!(
            e.contains("a                    FAILED: could not download a/one.bin"),
            "{e}"
        );
        assert!(e.contains("--mirror DIR` (or set L2M_DATA_MIRROR)"), "{e}");
    }

    #[test]
    fn the_committed_manifest_parses_and_names_every_dataset() {
        let m = read_manifest(&crate::project_root().join("data/manifest.toml")).expect("manifest");
        let names: Vec<&str> = m.dataset.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mnist",
                "fashion-mnist",
                "cifar10",
                "cifar100",
                "imagenette",
                "imdb",
                "wine-quality",
                "california-housing"
            ]
        );
    }

    #[test]
    fn the_shared_mirror_fills_a_data_folder() {
        let shared = crate::project_root().join("../shared/data");
        if !shared.is_dir() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        fs::copy(
            crate::project_root().join("data/manifest.toml"),
            dir.path().join("data/manifest.toml"),
        )
        .expect("copy");
        let report = run(
            dir.path(),
            args(&["--all", "--mirror", shared.to_str().expect("utf-8"), "-q"]),
        )
        .expect("fetches");
        let joined = report.join("\n");
        for name in [
            "mnist",
            "fashion-mnist",
            "cifar10",
            "imdb",
            "wine-quality",
            "california-housing",
        ] {
            assert!(joined.contains(&format!("{name:<20} fetched")), "{joined}");
        }
        for name in ["cifar100", "imagenette"] {
            assert!(
                joined.contains(&format!("{name:<20} not in the mirror")),
                "{joined}"
            );
        }
    }
}
