//! Hugging Face Hub datasets: `hf://datasets/OWNER/NAME[@REVISION]` resolved to local parquet
//! files.
//!
//! [`split_files`] lists the dataset repository at its revision (the Hub's
//! `/api/datasets/OWNER/NAME/revision/REVISION` endpoint), picks the parquet files of one split
//! by the Hub's file-naming conventions ([`file_split`]) and downloads them with [`hf_hub`]'s
//! blocking client into the Hub cache that Python's `huggingface_hub` also uses
//! (`HF_HOME/hub/datasets--OWNER--NAME/{blobs,refs,snapshots}`). Files already in the cache's
//! snapshot of the listed commit are not downloaded again, so a second run costs one request.
//!
//! A dataset whose revision `main` has no parquet files (one stored as CSV, JSON or a loading
//! script) is read from the Hub's parquet conversion branch, [`PARQUET_CONVERSION_REVISION`].
//!
//! In offline mode ([`HubAccess::offline`], `HF_HUB_OFFLINE=1`) nothing is requested: the files
//! come from the cached snapshot that the cache's `refs/REVISION` file names.
//!
//! ```no_run
//! use l2m_data::load::hub::{HubAccess, HubDataset, split_files};
//!
//! let ds = HubDataset::parse("hf://datasets/stanfordnlp/imdb")?;
//! let train = split_files(&ds, "train", &HubAccess::from_env())?;
//! # Ok::<(), l2m_data::DataError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use hf_hub::api::RepoInfo;
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::{DataError, Result};

/// The Hub reached when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The revision of a URI that names none.
pub const DEFAULT_REVISION: &str = "main";

/// The branch where the Hub keeps a parquet conversion of every dataset it can convert (files
/// `CONFIG/SPLIT/0000.parquet`); read when revision `main` has no parquet files.
pub const PARQUET_CONVERSION_REVISION: &str = "refs/convert/parquet";

const URI_PREFIX: &str = "hf://datasets/";
const EXPECTED_FORM: &str = "hf://datasets/OWNER/NAME or hf://datasets/OWNER/NAME@REVISION \
     (for example hf://datasets/stanfordnlp/imdb)";

/// A dataset repository on the Hugging Face Hub, named by a URI
/// `hf://datasets/OWNER/NAME`, optionally `@REVISION` (a branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HubDataset {
    /// The repository id, `OWNER/NAME`.
    pub repo: String,
    /// The branch, tag or commit; [`DEFAULT_REVISION`] when the URI names none.
    pub revision: String,
}

impl HubDataset {
    /// Parses `hf://datasets/OWNER/NAME` or `hf://datasets/OWNER/NAME@REVISION`.
    ///
    /// The revision may contain `/` (`@refs/convert/parquet`), also written `%2F` as in
    /// `huggingface_hub`'s file-system URIs. Anything else (a model or Space URI, a missing
    /// owner, a path inside the repository) is an [`DataError::InvalidParameter`] that gives the
    /// expected form.
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |problem: &str| DataError::InvalidParameter {
            what: "Hugging Face Hub dataset URI",
            reason: format!("{uri:?} {problem}; expected {EXPECTED_FORM}"),
        };
        let Some(rest) = uri.strip_prefix(URI_PREFIX) else {
            let problem = match uri.strip_prefix("hf://") {
                Some(r) if r.starts_with("models/") => "names a model repository, not a dataset",
                Some(r) if r.starts_with("spaces/") => "names a Space, not a dataset",
                Some(_) => "does not start with hf://datasets/",
                None => "is not an hf:// URI",
            };
            return Err(invalid(problem));
        };
        let (path, revision) = match rest.split_once('@') {
            Some((path, revision)) => (path, Some(revision)),
            None => (rest, None),
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [owner, name] => {
                check_repo_part(owner, "OWNER").map_err(|p| invalid(&p))?;
                check_repo_part(name, "NAME").map_err(|p| invalid(&p))?;
            }
            [_] => return Err(invalid("names no OWNER (Hub datasets are OWNER/NAME)")),
            _ => {
                return Err(invalid(
                    "has more than OWNER/NAME before the revision (paths inside the repository \
                     are not supported)",
                ));
            }
        }
        let revision = match revision {
            None => DEFAULT_REVISION.to_string(),
            Some(raw) => {
                let revision = percent_decode(raw)
                    .ok_or_else(|| invalid("has a malformed %-escape in its REVISION"))?;
                check_revision(&revision).map_err(|p| invalid(&p))?;
                revision
            }
        };
        Ok(Self {
            repo: path.to_string(),
            revision,
        })
    }

    /// Whether `s` is meant as a Hub URI: it starts with `hf://`.
    ///
    /// Deliberately loose, so that a malformed Hub URI goes to [`HubDataset::parse`], whose
    /// error explains the expected form, instead of being taken for a local path.
    pub fn is_hub_uri(s: &str) -> bool {
        s.starts_with("hf://")
    }
}

impl fmt::Display for HubDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URI_PREFIX}{}", self.repo)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

/// Where and how to reach the Hub: its address, the local cache, the token, offline mode.
///
/// [`HubAccess::from_env`] reads the environment variables `huggingface_hub` reads. The
/// [`Debug`] output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct HubAccess {
    /// The Hub's address, without a trailing `/` (`HF_ENDPOINT`; [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// The Hub cache folder holding `datasets--OWNER--NAME/` (`HF_HUB_CACHE`; `HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// The access token sent as `Authorization: Bearer` (needed for private and gated datasets).
    pub token: Option<String>,
    /// Make no request: use only what the cache holds (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
}

impl fmt::Debug for HubAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubAccess")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .finish()
    }
}

impl HubAccess {
    /// Reads the process environment; see [`HubAccess::from_vars`].
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds the access from variables looked up with `var` (empty values count as unset):
    ///
    /// - `endpoint`: `HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`];
    /// - `cache_dir`: `HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`,
    ///   where `HF_HOME` defaults to `XDG_CACHE_HOME/huggingface`, else
    ///   `~/.cache/huggingface`;
    /// - `token`: `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), else the content of the
    ///   file `HF_TOKEN_PATH`, else of `HF_HOME/token` (written by `huggingface-cli login`);
    /// - `offline`: `HF_HUB_OFFLINE` is `1`, `true`, `yes` or `on`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoint = get("HF_ENDPOINT").map_or_else(
            || DEFAULT_ENDPOINT.to_string(),
            |e| e.trim_end_matches('/').to_string(),
        );
        let home = get("HF_HOME").map_or_else(
            || {
                get("XDG_CACHE_HOME")
                    .map_or_else(
                        || std::env::home_dir().unwrap_or_default().join(".cache"),
                        PathBuf::from,
                    )
                    .join("huggingface")
            },
            PathBuf::from,
        );
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map_or_else(|| home.join("hub"), PathBuf::from);
        let token = get("HF_TOKEN")
            .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = get("HF_TOKEN_PATH").map_or_else(|| home.join("token"), PathBuf::from);
                std::fs::read_to_string(path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
        let offline = get("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        Self {
            endpoint,
            cache_dir,
            token,
            offline,
        }
    }
}

/// The config and split a parquet file of a Hub dataset belongs to (see [`file_split`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileSplit {
    /// The config (subset): the file's folder, `default` for the repository root and `data/`.
    pub config: String,
    /// The split, such as `train`, `validation` or `test`.
    pub split: String,
}

/// The config and split of the parquet file at `repo_path` (`/`-separated, inside the
/// repository), by the Hub's conventions; `None` for other files.
///
/// The split is the file name up to its first `-` (`train-00000-of-00002.parquet`,
/// `test.parquet`); where that is a number (`0000.parquet`), it is the file's folder instead,
/// without the `partial-` prefix the parquet conversion gives truncated splits. The config is
/// the folder above: the repository root and `data/` are config `default`.
///
/// | file | config | split |
/// |---|---|---|
/// | `data/train-00000-of-00001.parquet` | `default` | `train` |
/// | `test-00000-of-00001.parquet` | `default` | `test` |
/// | `validation/0000.parquet` | `default` | `validation` |
/// | `plain_text/train-00000-of-00001.parquet` | `plain_text` | `train` |
/// | `cola/test/0000.parquet` | `cola` | `test` |
/// | `en/partial-train/0000.parquet` | `en` | `train` |
///
/// Hidden files and folders (`.`-prefixed) and paths with empty or `..` components are ignored.
/// Splits declared in a dataset card's YAML `configs:` are not read.
pub fn file_split(repo_path: &str) -> Option<FileSplit> {
    if repo_path.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = repo_path.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || p.starts_with('.')) {
        return None;
    }
    let (file, dirs) = parts.split_last()?;
    let stem = strip_suffix_ignore_case(file, ".parquet")?;
    let prefix = stem.split('-').next().unwrap_or(stem);
    let (split, config_dirs) = if prefix.is_empty() || prefix.bytes().all(|b| b.is_ascii_digit()) {
        let (dir, above) = dirs.split_last()?;
        (dir.strip_prefix("partial-").unwrap_or(dir), above)
    } else {
        (prefix, dirs)
    };
    if split.is_empty() {
        return None;
    }
    let config = match config_dirs.join("/") {
        c if c.is_empty() || c == "data" => "default".to_string(),
        c => c,
    };
    Some(FileSplit {
        config,
        split: split.to_string(),
    })
}

/// The local paths, sorted by their path in the repository, of the parquet files of `split`:
/// downloaded into the Hub cache (files already cached for the listed commit are reused), or,
/// when `access.offline`, found in the cache without any request.
///
/// The files are those of one config ([`splits`] says how it is chosen). Errors
/// ([`DataError::Hub`]) name the repository and say what was expected: a dataset that does not
/// exist, an unknown split (listing the splits found), an unreachable endpoint, a dataset or
/// split missing from the cache in offline mode.
pub fn split_files(ds: &HubDataset, split: &str, access: &HubAccess) -> Result<Vec<PathBuf>> {
    let cache_dir = absolute(&access.cache_dir)?;
    let wanted = format!("split {split:?}");
    if access.offline {
        let listing = cached_listing(ds, &cache_dir, &wanted)?;
        let files = listing.split_paths(ds, split, Some(&cache_dir))?;
        let snapshot = snapshot_dir(&cache_dir, &ds.repo, &listing.commit);
        return Ok(files.iter().map(|f| join_repo_path(&snapshot, f)).collect());
    }
    let remote = Remote::new(ds, access, cache_dir, wanted)?;
    let listing = remote.listing()?;
    let files = listing.split_paths(ds, split, None)?;
    remote.fetch(&listing, files)
}

/// The split names, sorted, that the dataset's parquet files define (for error messages and
/// `--help`); in offline mode, those of the parquet files in the cache.
///
/// When the files define several configs, the splits are those of config `default`, else
/// `plain_text`, else the first config in sorted order: the config [`split_files`] reads.
pub fn splits(ds: &HubDataset, access: &HubAccess) -> Result<Vec<String>> {
    let cache_dir = absolute(&access.cache_dir)?;
    let wanted = "the split names".to_string();
    let listing = if access.offline {
        cached_listing(ds, &cache_dir, &wanted)?
    } else {
        Remote::new(ds, access, cache_dir, wanted)?.listing()?
    };
    Ok(listing
        .layout
        .chosen()
        .map(|(_, splits)| splits.keys().cloned().collect())
        .unwrap_or_default())
}

/// Parquet files of one revision grouped by config and split (`BTreeMap`s: sorted).
#[derive(Debug, Default)]
struct Layout {
    configs: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Layout {
    fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut layout = Self::default();
        for path in paths {
            if let Some(FileSplit { config, split }) = file_split(path) {
                let files = layout
                    .configs
                    .entry(config)
                    .or_default()
                    .entry(split)
                    .or_default();
                files.push(path.to_string());
            }
        }
        for files in layout.configs.values_mut().flat_map(|s| s.values_mut()) {
            files.sort();
        }
        layout
    }

    fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The config read: `default`, else `plain_text`, else the first in sorted order.
    fn chosen(&self) -> Option<(&str, &BTreeMap<String, Vec<String>>)> {
        ["default", "plain_text"]
            .iter()
            .find_map(|c| self.configs.get_key_value(*c))
            .or_else(|| self.configs.iter().next())
            .map(|(c, s)| (c.as_str(), s))
    }
}

/// One revision's parquet files, as listed by the Hub or found in the cache.
struct Listing {
    /// The revision listed: the requested one or [`PARQUET_CONVERSION_REVISION`].
    revision: String,
    /// Its commit.
    commit: String,
    layout: Layout,
}

impl Listing {
    /// The repository paths of `split`'s files; `cache_dir` is set in offline mode.
    fn split_paths(
        &self,
        ds: &HubDataset,
        split: &str,
        cache_dir: Option<&Path>,
    ) -> Result<&[String]> {
        let Some((config, splits)) = self.layout.chosen() else {
            return Err(hub_error(
                ds,
                format!("has no parquet files at revision {}", self.revision),
            ));
        };
        if let Some(files) = splits.get(split) {
            return Ok(files);
        }
        let found = join_names(splits.keys());
        let mut reason = match cache_dir {
            None => format!(
                "has no split {split:?} at revision {}: its parquet files define the splits {found}",
                self.revision
            ),
            Some(cache_dir) => format!(
                "has no split {split:?} in the Hugging Face cache at {} (offline mode: \
                 HF_HUB_OFFLINE=1 is set); the cached parquet files of revision {} define the \
                 splits {found} (run once without HF_HUB_OFFLINE to download others)",
                snapshot_dir(cache_dir, &ds.repo, &self.commit).display(),
                self.revision
            ),
        };
        if self.layout.configs.len() > 1 {
            reason.push_str(&format!(
                " of config {config:?}, the one read (of the configs {})",
                join_names(self.layout.configs.keys())
            ));
        }
        Err(hub_error(ds, reason))
    }
}

/// hf-hub's blocking client set up for one dataset.
struct Remote<'a> {
    api: Api,
    ds: &'a HubDataset,
    access: &'a HubAccess,
    cache_dir: PathBuf,
    /// What the caller wanted, for error messages (`split "train"`).
    wanted: String,
}

impl<'a> Remote<'a> {
    fn new(
        ds: &'a HubDataset,
        access: &'a HubAccess,
        cache_dir: PathBuf,
        wanted: String,
    ) -> Result<Self> {
        // `ApiBuilder::new` and `from_env` would panic without a home folder and read the
        // environment; `from_cache` reads only the token file beside the cache, which the
        // explicit token below replaces.
        let api = ApiBuilder::from_cache(Cache::new(cache_dir.clone()))
            .with_endpoint(access.endpoint.trim_end_matches('/').to_string())
            .with_token(access.token.clone())
            .with_progress(false)
            .with_retries(3)
            .with_user_agent("l2m-data", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| hub_error(ds, format!("cannot set up the Hub client: {e}")))?;
        Ok(Self {
            api,
            ds,
            access,
            cache_dir,
            wanted,
        })
    }

    fn repo(&self, revision: &str) -> Repo {
        Repo::with_revision(
            self.ds.repo.clone(),
            RepoType::Dataset,
            revision.to_string(),
        )
    }

    fn info(&self, revision: &str) -> std::result::Result<RepoInfo, Failure> {
        self.api
            .repo(self.repo(revision))
            .info()
            .map_err(Failure::from)
    }

    /// The parquet files of the requested revision, else (for `main`) of the conversion branch.
    fn listing(&self) -> Result<Listing> {
        let revision = &self.ds.revision;
        let info = self
            .info(revision)
            .map_err(|f| self.error(f, revision, None))?;
        let layout = Layout::new(info.siblings.iter().map(|s| s.rfilename.as_str()));
        if !layout.is_empty() {
            return Ok(Listing {
                revision: revision.clone(),
                commit: info.sha,
                layout,
            });
        }
        let files = some_names(info.siblings.iter().map(|s| s.rfilename.as_str()));
        if revision != DEFAULT_REVISION {
            return Err(hub_error(
                self.ds,
                format!(
                    "has no parquet files at revision {revision} (its files: {files}); the Hub's \
                     parquet conversion is hf://datasets/{}@{PARQUET_CONVERSION_REVISION}; \
                     wanted {}",
                    self.ds.repo, self.wanted
                ),
            ));
        }
        match self.info(PARQUET_CONVERSION_REVISION) {
            Ok(converted) => {
                let layout = Layout::new(converted.siblings.iter().map(|s| s.rfilename.as_str()));
                if !layout.is_empty() {
                    return Ok(Listing {
                        revision: PARQUET_CONVERSION_REVISION.to_string(),
                        commit: converted.sha,
                        layout,
                    });
                }
            }
            Err(Failure::RevisionNotFound) => {}
            Err(f) => return Err(self.error(f, PARQUET_CONVERSION_REVISION, None)),
        }
        Err(hub_error(
            self.ds,
            format!(
                "has no parquet files at revision {revision} (its files: {files}) and no parquet \
                 conversion on branch {PARQUET_CONVERSION_REVISION}; wanted {}",
                self.wanted
            ),
        ))
    }

    /// Downloads `files` of `listing` (reusing those cached for its commit) and returns their
    /// local paths, in order.
    fn fetch(&self, listing: &Listing, files: &[String]) -> Result<Vec<PathBuf>> {
        let snapshot = snapshot_dir(&self.cache_dir, &self.ds.repo, &listing.commit);
        let cache = Cache::new(self.cache_dir.clone()).repo(self.repo(&listing.revision));
        // The ref lets offline runs find this commit even when nothing is downloaded (hf-hub
        // writes it only on download); a download rewrites it with the commit it got.
        cache.create_ref(&listing.commit).map_err(|e| {
            hub_error(
                self.ds,
                format!(
                    "cannot write to the Hugging Face cache at {}: {e}",
                    self.cache_dir.display()
                ),
            )
        })?;
        let api_repo = self.api.repo(self.repo(&listing.revision));
        let mut paths = Vec::with_capacity(files.len());
        for file in files {
            let cached = join_repo_path(&snapshot, file);
            if cached.is_file() {
                paths.push(cached);
                continue;
            }
            // hf-hub 0.4 unwraps a few things a misbehaving server controls (a redirect without
            // `Location`); a panic there becomes an error here.
            let downloaded = catch_unwind(AssertUnwindSafe(|| api_repo.download(file)));
            match downloaded {
                Ok(Ok(path)) => paths.push(path),
                Ok(Err(e)) => {
                    return Err(self.error(Failure::from(e), &listing.revision, Some(file)));
                }
                Err(_) => {
                    return Err(hub_error(
                        self.ds,
                        format!(
                            "downloading {file} from {} failed inside hf-hub (an unexpected \
                             answer from the server); wanted {}",
                            self.access.endpoint, self.wanted
                        ),
                    ));
                }
            }
        }
        Ok(paths)
    }

    /// A [`DataError::Hub`] saying what `failure` means, for `revision` (and `file`).
    fn error(&self, failure: Failure, revision: &str, file: Option<&str>) -> DataError {
        let endpoint = &self.access.endpoint;
        let not_found = || {
            let hint = match self.access.token {
                None => "or it is private or gated: set HF_TOKEN to a token that can read it",
                Some(_) => "or the token in use cannot read it",
            };
            format!("does not exist on {endpoint} ({hint})")
        };
        let reason = match failure {
            Failure::RepoNotFound => not_found(),
            Failure::NotFound(message) => match file {
                None => not_found(),
                Some(file) => format!(
                    "file {file} is not at revision {revision} on {endpoint} (HTTP 404: {message})"
                ),
            },
            Failure::RevisionNotFound => format!("has no revision {revision:?} on {endpoint}"),
            Failure::EntryNotFound => match file {
                Some(file) => format!("file {file} is not at revision {revision} on {endpoint}"),
                None => format!("{endpoint} found no revision {revision:?}"),
            },
            Failure::Denied { status, message } => format!(
                "{endpoint} refused access (HTTP {status}: {message}): the dataset is private or \
                 gated; accept its conditions on the Hub and set HF_TOKEN to a token that can \
                 read it"
            ),
            Failure::Status { status, message } => {
                format!("{endpoint} answered HTTP {status} for revision {revision}: {message}")
            }
            Failure::Network(message) => format!(
                "cannot reach the Hugging Face Hub at {endpoint} ({message}); check the network \
                 or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the files already in the cache \
                 at {}",
                self.cache_dir.display()
            ),
            Failure::MissingHeader(header) => format!(
                "{endpoint} did not send the {header} header a download needs (is it a Hugging \
                 Face Hub?)"
            ),
            Failure::Io(message) => match file {
                Some(_) => format!(
                    "cannot write to the Hugging Face cache at {}: {message}",
                    self.cache_dir.display()
                ),
                None => format!(
                    "unexpected file list from {endpoint} for revision {revision}: {message}"
                ),
            },
            Failure::Other(message) => format!("{endpoint}: {message}"),
        };
        let reason = match file {
            Some(file) => format!("downloading {file}: {reason}; wanted {}", self.wanted),
            None => format!("{reason}; wanted {}", self.wanted),
        };
        hub_error(self.ds, reason)
    }
}

/// What went wrong in an hf-hub call, read from its [`ApiError`] (the Hub's `X-Error-Code`
/// header, the HTTP status and the `{"error": ...}` body).
enum Failure {
    RepoNotFound,
    RevisionNotFound,
    EntryNotFound,
    /// 404 without an error code.
    NotFound(String),
    Denied {
        status: u16,
        message: String,
    },
    Status {
        status: u16,
        message: String,
    },
    Network(String),
    MissingHeader(String),
    Io(String),
    Other(String),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::RequestError(error) => {
                let text = error.to_string();
                // `ureq::Error` (ureq 2, hf-hub's) is not nameable without depending on ureq 2;
                // its methods are enough.
                let Some(response) = error.into_response() else {
                    return Self::Network(text);
                };
                let status = response.status();
                let code = response.header("x-error-code").map(str::to_owned);
                let header_message = response.header("x-error-message").map(str::to_owned);
                let body = response.into_string().unwrap_or_default();
                let message = header_message
                    .or_else(|| {
                        serde_json::from_str::<serde_json::Value>(&body)
                            .ok()?
                            .get("error")?
                            .as_str()
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| {
                        let body = body.trim();
                        if body.is_empty() {
                            text
                        } else {
                            body.chars().take(200).collect()
                        }
                    });
                match (code.as_deref(), status) {
                    (Some("RepoNotFound" | "RepositoryNotFound"), _) => Self::RepoNotFound,
                    (Some("RevisionNotFound"), _) => Self::RevisionNotFound,
                    (Some("EntryNotFound"), _) => Self::EntryNotFound,
                    (Some("GatedRepo"), _) | (_, 401 | 403) => Self::Denied { status, message },
                    (_, 404) => Self::NotFound(message),
                    _ => Self::Status { status, message },
                }
            }
            ApiError::MissingHeader(header) | ApiError::InvalidHeader(header) => {
                Self::MissingHeader(header.to_string())
            }
            ApiError::IoError(e) => Self::Io(e.to_string()),
            ApiError::TooManyRetries(inner) => Self::from(*inner),
            other => Self::Other(other.to_string()),
        }
    }
}

/// The newest cached parquet files of the requested revision, else (for `main`) of the
/// conversion branch; no request is made.
fn cached_listing(ds: &HubDataset, cache_dir: &Path, wanted: &str) -> Result<Listing> {
    let repo_dir = repo_cache_dir(cache_dir, &ds.repo);
    if !repo_dir.is_dir() {
        return Err(hub_error(
            ds,
            format!(
                "is not in the Hugging Face cache at {}, and offline mode is on (HF_HUB_OFFLINE=1 \
                 is set): run once without HF_HUB_OFFLINE to download it; wanted {wanted}",
                repo_dir.display()
            ),
        ));
    }
    let mut revisions = vec![ds.revision.as_str()];
    if ds.revision == DEFAULT_REVISION {
        revisions.push(PARQUET_CONVERSION_REVISION);
    }
    for revision in revisions {
        let Some(commit) = cached_commit(&repo_dir, revision) else {
            continue;
        };
        let snapshot = repo_dir.join("snapshots").join(&commit);
        let mut files = Vec::new();
        list_files(&snapshot, "", &mut files)?;
        let layout = Layout::new(files.iter().map(String::as_str));
        if !layout.is_empty() {
            return Ok(Listing {
                revision: revision.to_string(),
                commit,
                layout,
            });
        }
    }
    Err(hub_error(
        ds,
        format!(
            "has no parquet files of revision {} in the Hugging Face cache at {}, and offline \
             mode is on (HF_HUB_OFFLINE=1 is set): run once without HF_HUB_OFFLINE to download \
             them; wanted {wanted}",
            ds.revision,
            repo_dir.display()
        ),
    ))
}

/// The commit the cache's `refs/REVISION` names, or `revision` itself when it is a cached
/// commit.
fn cached_commit(repo_dir: &Path, revision: &str) -> Option<String> {
    let is_commit = |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric());
    let ref_path = join_repo_path(&repo_dir.join("refs"), revision);
    if let Ok(commit) = std::fs::read_to_string(ref_path) {
        let commit = commit.trim();
        if is_commit(commit) {
            return Some(commit.to_string());
        }
    }
    (revision.len() == 40
        && revision.bytes().all(|b| b.is_ascii_hexdigit())
        && repo_dir.join("snapshots").join(revision).is_dir())
    .then(|| revision.to_string())
}

/// Appends the `/`-separated paths, relative to `root`, of the files under `dir` (following
/// file symlinks, as snapshots hold them; skipping dangling ones and symlinked folders).
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry.file_type().map_err(io)?;
        if file_type.is_dir() {
            list_files(&path, &relative, out)?;
        } else if path.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

fn hub_error(ds: &HubDataset, reason: String) -> DataError {
    DataError::Hub {
        repo: ds.repo.clone(),
        reason,
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn repo_cache_dir(cache_dir: &Path, repo: &str) -> PathBuf {
    cache_dir.join(Repo::new(repo.to_string(), RepoType::Dataset).folder_name())
}

fn snapshot_dir(cache_dir: &Path, repo: &str, commit: &str) -> PathBuf {
    repo_cache_dir(cache_dir, repo)
        .join("snapshots")
        .join(commit)
}

fn join_repo_path(base: &Path, repo_path: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    path.extend(repo_path.split('/'));
    path
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most ten names, for error messages.
fn some_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    if total == 0 {
        return "none".to_string();
    }
    let mut shown: Vec<&str> = names.take(10).collect();
    shown.sort_unstable();
    let mut text = shown.join(", ");
    if total > shown.len() {
        text.push_str(&format!(" and {} more", total - shown.len()));
    }
    text
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..cut)?, s.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

/// Checks an OWNER or NAME as the Hub accepts them.
fn check_repo_part(part: &str, what: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err(format!("has an empty {what}"));
    }
    if part.len() > 96 {
        return Err(format!("has a {what} longer than 96 characters"));
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "has {what} {part:?}, which may only contain letters, digits, '-', '_' and '.'"
        ));
    }
    if part.contains("--")
        || part.contains("..")
        || part.starts_with(['-', '.'])
        || part.ends_with(['-', '.'])
    {
        return Err(format!(
            "has {what} {part:?}, which may not start or end with '-' or '.' nor contain '--' or '..'"
        ));
    }
    Ok(())
}

/// Checks a revision: a branch, tag or commit, `/`-separated.
fn check_revision(revision: &str) -> std::result::Result<(), String> {
    if revision.is_empty() {
        return Err("has an empty REVISION after '@'".to_string());
    }
    let bad_char = !revision
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    let bad_part = revision
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..");
    if bad_char || bad_part {
        return Err(format!(
            "has REVISION {revision:?}; a branch, tag or commit has letters, digits, '-', '_', \
             '.' and '/'-separated non-empty parts"
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let digit = |b: u8| char::from(b).to_digit(16);
            let value = digit(hex[0])? * 16 + digit(hex[1])?;
            out.push(u8::try_from(value).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
