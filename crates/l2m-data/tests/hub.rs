//! Hugging Face Hub datasets, against a local stand-in of the Hub (`support/hub_server.rs`):
//! no real host is contacted, every cache is a temporary folder, and the access settings are
//! passed explicitly (no environment variable is read or set).

#[path = "support/hub_server.rs"]
mod hub_server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hub_server::{PRIVATE_TOKEN_FILE, Server, serve};
use l2m_data::DataError;
use l2m_data::load::hub::{
    FileSplit, HubAccess, HubDataset, PARQUET_CONVERSION_REVISION, file_split, split_files, splits,
};

/// Writes `content` to `root/relative`, creating folders.
fn write(root: &Path, relative: &str, content: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("create folders");
    std::fs::write(&path, content).expect("write a served file");
}

/// Dummy content of a served parquet file (the loader never parses it here).
fn content(name: &str) -> Vec<u8> {
    format!("PAR1 dummy content of {name} PAR1").into_bytes()
}

/// `acme/tiny`: two train shards and one test shard under `data/`, plus a README.
fn tiny(root: &Path) {
    write(root, "acme/tiny/README.md", b"# tiny\n");
    for file in TINY_TRAIN.iter().chain(&[TINY_TEST]) {
        write(root, &format!("acme/tiny/{file}"), &content(file));
    }
}

const TINY_TRAIN: [&str; 2] = [
    "data/train-00000-of-00002.parquet",
    "data/train-00001-of-00002.parquet",
];
const TINY_TEST: &str = "data/test-00000-of-00001.parquet";

fn online(server: &Server, cache: &Path) -> HubAccess {
    HubAccess {
        endpoint: server.endpoint(),
        cache_dir: cache.join("hub"),
        token: None,
        offline: false,
    }
}

fn offline(access: &HubAccess) -> HubAccess {
    HubAccess {
        offline: true,
        ..access.clone()
    }
}

fn dataset(uri: &str) -> HubDataset {
    HubDataset::parse(uri).expect("a valid URI")
}

/// Asserts that `paths` are files of the cache's snapshots of `repo_folder` ending in
/// `expected` (in order) with the dummy contents.
fn assert_cached(paths: &[PathBuf], access: &HubAccess, repo_folder: &str, expected: &[&str]) {
    assert_eq!(paths.len(), expected.len(), "{paths:?}");
    let snapshots = access.cache_dir.join(repo_folder).join("snapshots");
    for (path, file) in paths.iter().zip(expected) {
        assert!(
            path.starts_with(&snapshots),
            "{path:?} is not under {snapshots:?}"
        );
        assert!(path.ends_with(file), "{path:?} is not {file}");
        assert_eq!(
            std::fs::read(path).expect("read a downloaded file"),
            content(file)
        );
    }
}

#[test]
fn downloads_the_files_of_each_split_into_the_cache() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/tiny");

    let train = split_files(&ds, "train", &access).expect("train files");
    assert_cached(&train, &access, "datasets--acme--tiny", &TINY_TRAIN);
    let test = split_files(&ds, "test", &access).expect("test files");
    assert_cached(&test, &access, "datasets--acme--tiny", &[TINY_TEST]);
    assert_eq!(splits(&ds, &access).expect("splits"), ["test", "train"]);

    // The cache's layout is hf-hub's (and huggingface_hub's): the ref names the snapshot.
    let repo_dir = access.cache_dir.join("datasets--acme--tiny");
    let commit = std::fs::read_to_string(repo_dir.join("refs/main")).expect("refs/main");
    assert!(train[0].starts_with(repo_dir.join("snapshots").join(commit.trim())));
    assert!(repo_dir.join("blobs").is_dir());

    // A second run finds the files cached: one request, the file listing.
    let before = server.requests();
    assert_eq!(
        split_files(&ds, "train", &access).expect("train again"),
        train
    );
    assert_eq!(server.requests(), before + 1);
}

#[test]
fn offline_after_a_download_returns_the_same_paths_without_requests() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/tiny");
    let train = split_files(&ds, "train", &access).expect("train files");
    let test = split_files(&ds, "test", &access).expect("test files");

    let before = server.requests();
    let off = offline(&access);
    assert_eq!(
        split_files(&ds, "train", &off).expect("offline train"),
        train
    );
    assert_eq!(split_files(&ds, "test", &off).expect("offline test"), test);
    assert_eq!(
        splits(&ds, &off).expect("offline splits"),
        ["test", "train"]
    );
    assert_eq!(server.requests(), before, "offline mode made requests");
}

#[test]
fn offline_only_knows_the_cached_splits() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/tiny");
    split_files(&ds, "train", &access).expect("train files");

    let message = split_files(&ds, "test", &offline(&access))
        .expect_err("test was never downloaded")
        .to_string();
    for part in ["acme/tiny", "\"test\"", "HF_HUB_OFFLINE=1", "splits train"] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn offline_with_an_empty_cache_names_the_repo_and_offline_mode() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = offline(&online(&server, cache.path()));
    let ds = dataset("hf://datasets/acme/tiny");

    let error = split_files(&ds, "train", &access).expect_err("nothing is cached");
    assert!(
        matches!(&error, DataError::Hub { repo, .. } if repo == "acme/tiny"),
        "{error:?}"
    );
    let message = error.to_string();
    let cache_dir = access.cache_dir.join("datasets--acme--tiny");
    let cache_dir = cache_dir.display().to_string();
    for part in [
        "acme/tiny",
        "not in the Hugging Face cache",
        &cache_dir,
        "HF_HUB_OFFLINE=1",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    assert!(splits(&ds, &access).is_err());
    assert_eq!(server.requests(), 0);
}

#[test]
fn an_unknown_repo_does_not_exist() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());

    let error = split_files(&dataset("hf://datasets/acme/missing"), "train", &access)
        .expect_err("no such repository");
    assert!(
        matches!(&error, DataError::Hub { repo, .. } if repo == "acme/missing"),
        "{error:?}"
    );
    let message = error.to_string();
    for part in [
        "acme/missing",
        "does not exist",
        &server.endpoint(),
        "HF_TOKEN",
        "\"train\"",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn an_unknown_split_lists_the_splits() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());

    let message = split_files(&dataset("hf://datasets/acme/tiny"), "validation", &access)
        .expect_err("no validation split")
        .to_string();
    for part in ["acme/tiny", "no split \"validation\"", "splits test, train"] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn an_unknown_revision_is_named() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    let server = serve(root.path());
    let access = online(&server, cache.path());

    let message = split_files(&dataset("hf://datasets/acme/tiny@nope"), "train", &access)
        .expect_err("no such revision")
        .to_string();
    for part in ["acme/tiny", "no revision \"nope\""] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn an_unreachable_endpoint_is_named() {
    let cache = tempfile::tempdir().expect("tmp");
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let access = HubAccess {
        endpoint: format!("http://127.0.0.1:{port}"),
        cache_dir: cache.path().join("hub"),
        token: None,
        offline: false,
    };
    let message = split_files(&dataset("hf://datasets/acme/tiny"), "train", &access)
        .expect_err("nothing listens")
        .to_string();
    for part in [
        "acme/tiny",
        "cannot reach",
        &access.endpoint,
        "HF_HUB_OFFLINE=1",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn a_named_revision_is_read() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    write(
        root.path(),
        "acme/tiny@v1/train.parquet",
        &content("train.parquet"),
    );
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/tiny@v1");
    assert_eq!(ds.to_string(), "hf://datasets/acme/tiny@v1");

    let train = split_files(&ds, "train", &access).expect("train files of v1");
    assert_cached(&train, &access, "datasets--acme--tiny", &["train.parquet"]);
    let off = offline(&access);
    assert_eq!(split_files(&ds, "train", &off).expect("offline v1"), train);
    // Revision main was never downloaded.
    assert!(split_files(&dataset("hf://datasets/acme/tiny"), "train", &off).is_err());
}

#[test]
fn a_dataset_without_parquet_files_is_read_from_the_conversion_branch() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write(root.path(), "acme/csvonly/README.md", b"# csv only\n");
    write(root.path(), "acme/csvonly/data.csv", b"x,y\n1,2\n");
    let converted = [
        "default/train/0000.parquet",
        "default/train/0001.parquet",
        "default/partial-test/0000.parquet",
    ];
    for file in converted {
        let served = format!("acme/csvonly@refs%2Fconvert%2Fparquet/{file}");
        write(root.path(), &served, &content(file));
    }
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/csvonly");

    let train = split_files(&ds, "train", &access).expect("converted train files");
    assert_cached(&train, &access, "datasets--acme--csvonly", &converted[..2]);
    let test = split_files(&ds, "test", &access).expect("converted test files");
    assert_cached(&test, &access, "datasets--acme--csvonly", &converted[2..]);
    assert_eq!(splits(&ds, &access).expect("splits"), ["test", "train"]);
    // hf-hub's cache keeps the branch's ref at refs/refs/convert/parquet, as huggingface_hub.
    let repo_dir = access.cache_dir.join("datasets--acme--csvonly");
    assert!(
        repo_dir
            .join("refs")
            .join(PARQUET_CONVERSION_REVISION)
            .is_file()
    );

    // The branch named explicitly, URL-encoded or not, gives the same files.
    for uri in [
        "hf://datasets/acme/csvonly@refs/convert/parquet",
        "hf://datasets/acme/csvonly@refs%2Fconvert%2Fparquet",
    ] {
        assert_eq!(
            split_files(&dataset(uri), "train", &access).expect(uri),
            train
        );
    }

    // Offline falls back to the cached conversion the same way.
    let before = server.requests();
    assert_eq!(
        split_files(&ds, "train", &offline(&access)).expect("offline"),
        train
    );
    assert_eq!(server.requests(), before);
}

#[test]
fn a_dataset_without_any_parquet_files_says_so() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write(root.path(), "acme/csvonly/data.csv", b"x,y\n1,2\n");
    let server = serve(root.path());
    let access = online(&server, cache.path());

    let message = split_files(&dataset("hf://datasets/acme/csvonly"), "train", &access)
        .expect_err("no parquet anywhere")
        .to_string();
    for part in [
        "acme/csvonly",
        "no parquet files",
        "data.csv",
        PARQUET_CONVERSION_REVISION,
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn configs_default_first_then_sorted_and_named_when_ambiguous() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    for file in [
        "cola/train-00000-of-00001.parquet",
        "cola/test-00000-of-00001.parquet",
        "ax/test-00000-of-00001.parquet",
    ] {
        write(root.path(), &format!("acme/glue/{file}"), &content(file));
    }
    for file in [
        "extra/train-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
    ] {
        write(
            root.path(),
            &format!("acme/withdefault/{file}"),
            &content(file),
        );
    }
    let server = serve(root.path());
    let access = online(&server, cache.path());

    let glue = dataset("hf://datasets/acme/glue");
    assert_eq!(splits(&glue, &access).expect("splits"), ["test"]);
    let test = split_files(&glue, "test", &access).expect("ax's test files");
    assert_cached(
        &test,
        &access,
        "datasets--acme--glue",
        &["ax/test-00000-of-00001.parquet"],
    );
    let message = split_files(&glue, "train", &access)
        .expect_err("ax has no train split")
        .to_string();
    for part in [
        "acme/glue",
        "\"train\"",
        "config \"ax\"",
        "configs ax, cola",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }

    let with_default = dataset("hf://datasets/acme/withdefault");
    let train = split_files(&with_default, "train", &access).expect("default's train files");
    let expected = ["data/train-00000-of-00001.parquet"];
    assert_cached(&train, &access, "datasets--acme--withdefault", &expected);
}

#[test]
fn a_private_dataset_needs_its_token() {
    let (root, cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    tiny(root.path());
    write(
        root.path(),
        &format!("acme/tiny/{PRIVATE_TOKEN_FILE}"),
        b"hf_secret\n",
    );
    let server = serve(root.path());
    let access = online(&server, cache.path());
    let ds = dataset("hf://datasets/acme/tiny");

    let message = split_files(&ds, "train", &access)
        .expect_err("no token")
        .to_string();
    for part in ["acme/tiny", "does not exist", "private", "HF_TOKEN"] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    let with_token = HubAccess {
        token: Some("hf_secret".into()),
        ..access.clone()
    };
    assert!(
        !format!("{with_token:?}").contains("hf_secret"),
        "Debug shows the token"
    );
    let train = split_files(&ds, "train", &with_token).expect("train files with the token");
    assert_cached(&train, &access, "datasets--acme--tiny", &TINY_TRAIN);
}

#[test]
fn parse_accepts_dataset_uris_and_explains_the_rest() {
    let parsed = dataset("hf://datasets/a/b");
    assert_eq!(
        (parsed.repo.as_str(), parsed.revision.as_str()),
        ("a/b", "main")
    );
    assert_eq!(parsed.to_string(), "hf://datasets/a/b");
    let parsed = dataset("hf://datasets/acme-lab/my_data.v2@rev");
    assert_eq!(
        (parsed.repo.as_str(), parsed.revision.as_str()),
        ("acme-lab/my_data.v2", "rev")
    );
    for uri in [
        "hf://datasets/a/b@refs/convert/parquet",
        "hf://datasets/a/b@refs%2Fconvert%2Fparquet",
    ] {
        assert_eq!(dataset(uri).revision, PARQUET_CONVERSION_REVISION);
    }
    assert!(HubDataset::is_hub_uri("hf://datasets/a/b"));
    assert!(HubDataset::is_hub_uri("hf://models/a/b"));
    assert!(!HubDataset::is_hub_uri("data/train.parquet"));

    for (uri, problem) in [
        ("hf://models/a/b", "model"),
        ("hf://spaces/a/b", "Space"),
        ("hf://a/b", "does not start with hf://datasets/"),
        ("datasets/a/b", "not an hf:// URI"),
        ("hf://datasets/a", "no OWNER"),
        ("hf://datasets/", "no OWNER"),
        ("hf://datasets//b", "empty OWNER"),
        ("hf://datasets/a/", "no OWNER"),
        ("hf://datasets/a/b/c", "more than OWNER/NAME"),
        ("hf://datasets/a/b@", "empty REVISION"),
        ("hf://datasets/a/b@x/../y", "REVISION"),
        ("hf://datasets/a/b@%zz", "%-escape"),
        ("hf://datasets/a b/c", "may only contain"),
        ("hf://datasets/a--x/b", "'--'"),
    ] {
        let error = HubDataset::parse(uri).expect_err(uri);
        assert!(
            matches!(error, DataError::InvalidParameter { .. }),
            "{uri}: {error:?}"
        );
        let message = error.to_string();
        for part in [problem, "hf://datasets/OWNER/NAME", "@REVISION"] {
            assert!(message.contains(part), "{uri}: {part:?} not in {message:?}");
        }
    }
}

#[test]
fn file_names_follow_the_hub_conventions() {
    let split = |config: &str, split: &str| {
        Some(FileSplit {
            config: config.into(),
            split: split.into(),
        })
    };
    for (path, expected) in [
        (
            "data/train-00000-of-00001.parquet",
            split("default", "train"),
        ),
        (
            "data/validation-00003-of-00004-1a2b3c.parquet",
            split("default", "validation"),
        ),
        ("train-00000-of-00002.parquet", split("default", "train")),
        ("test.parquet", split("default", "test")),
        ("train/0000.parquet", split("default", "train")),
        ("data/train/0000.parquet", split("default", "train")),
        (
            "plain_text/train-00000-of-00001.parquet",
            split("plain_text", "train"),
        ),
        ("cola/test/0000.parquet", split("cola", "test")),
        ("en/partial-train/0001.parquet", split("en", "train")),
        (
            "20231101.en/train-00000-of-00041.parquet",
            split("20231101.en", "train"),
        ),
        (
            "data/train_sft-00000-of-00003.parquet",
            split("default", "train_sft"),
        ),
        ("data/TRAIN-0.PARQUET", split("default", "TRAIN")),
        ("README.md", None),
        ("data/train.csv", None),
        ("0000.parquet", None),
        (".cache/train.parquet", None),
        ("data/../train.parquet", None),
        ("data//train.parquet", None),
        ("/train.parquet", None),
    ] {
        assert_eq!(file_split(path), expected, "{path}");
    }
}

#[test]
fn access_reads_the_huggingface_hub_variables() {
    let home = tempfile::tempdir().expect("tmp");
    let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let from = |map: HashMap<String, String>| HubAccess::from_vars(|name| map.get(name).cloned());
    let hf_home = home.path().display().to_string();

    let access = from(vars(&[("HF_HOME", &hf_home)]));
    assert_eq!(access.endpoint, "https://huggingface.co");
    assert_eq!(access.cache_dir, home.path().join("hub"));
    assert_eq!(access.token, None);
    assert!(!access.offline);

    // The token file huggingface-cli login writes, then HF_TOKEN over it.
    std::fs::write(home.path().join("token"), "hf_from_file\n").expect("token file");
    let access = from(vars(&[("HF_HOME", &hf_home)]));
    assert_eq!(access.token.as_deref(), Some("hf_from_file"));
    let access = from(vars(&[
        ("HF_HOME", &hf_home),
        ("HF_TOKEN", "hf_from_env"),
        ("HF_ENDPOINT", "http://mirror.example/"),
        ("HF_HUB_CACHE", "/elsewhere/hub"),
        ("HF_HUB_OFFLINE", "1"),
    ]));
    assert_eq!(access.token.as_deref(), Some("hf_from_env"));
    assert_eq!(access.endpoint, "http://mirror.example");
    assert_eq!(access.cache_dir, PathBuf::from("/elsewhere/hub"));
    assert!(access.offline);
    for (value, offline) in [("true", true), ("ON", true), ("0", false), ("", false)] {
        let access = from(vars(&[("HF_HOME", &hf_home), ("HF_HUB_OFFLINE", value)]));
        assert_eq!(access.offline, offline, "HF_HUB_OFFLINE={value}");
    }
    let access = from(vars(&[("XDG_CACHE_HOME", &hf_home)]));
    assert_eq!(
        access.cache_dir,
        home.path().join("huggingface").join("hub")
    );
}
