//! A tiny Hugging Face Hub stand-in for tests: an HTTP/1.1 server on `127.0.0.1` (a free port)
//! that serves a folder in the Hub's URL layout, answering as hf-hub's blocking client (and
//! `huggingface_hub`) expect. Standard library only, so other test crates can include it with
//! `#[path = "../../l2m-data/tests/support/hub_server.rs"] mod hub_server;`.
//!
//! The served folder:
//!
//! - `ROOT/OWNER/NAME/...`: the files of dataset `OWNER/NAME` at revision `main`;
//! - `ROOT/OWNER/NAME@REV/...`: its files at revision `REV`, where a `/` in `REV` is written
//!   `%2F` (the parquet conversion branch is `ROOT/OWNER/NAME@refs%2Fconvert%2Fparquet/`);
//! - `ROOT/OWNER/NAME/.private-token` (optional): the repository is private, and requests
//!   without `Authorization: Bearer <the file's content>` get the Hub's 401 "not found".
//!
//! Each revision's commit (`sha`) is a hash of its files; a revision can also be named by it.
//!
//! Routes (`GET`, and `HEAD` for files):
//!
//! - `/api/datasets/OWNER/NAME/revision/REV`: `{"id", "sha", "siblings": [{"rfilename"}]}`;
//! - `/datasets/OWNER/NAME/resolve/REV/FILE`: the file, with `ETag`, `X-Repo-Commit`,
//!   `Accept-Ranges` and, for a `Range` request, 206 and `Content-Range`. `*.parquet` files are
//!   stored "in LFS", as on the Hub: a 302 to `/lfs/...` (absolute URL) carrying `X-Repo-Commit`,
//!   `X-Linked-Etag` and `X-Linked-Size`;
//! - `/lfs/OWNER/NAME/REV/FILE`: the file's bytes (the CDN's part), with `Range` support.
//!
//! Errors are the Hub's: 404 with `X-Error-Code: RepoNotFound` and
//! `{"error": "Repository not found"}` for unknown repositories, `RevisionNotFound` and
//! `EntryNotFound` for unknown revisions and files. Every request is counted ([`Server::requests`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Name of the file that makes a repository private (its content is the token).
pub const PRIVATE_TOKEN_FILE: &str = ".private-token";

/// A running server; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// Serves `root` (laid out as the module documentation says) on `127.0.0.1`, on a free port.
pub fn serve(root: &Path) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("the listener's address");
    let requests = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let root = root.to_path_buf();
    let accept = {
        let requests = Arc::clone(&requests);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                let requests = Arc::clone(&requests);
                std::thread::spawn(move || {
                    // A client that hangs up early is not the test's concern.
                    let _ = handle(stream, &root, addr, &requests);
                });
            }
        })
    };
    Server {
        addr,
        requests,
        stop,
        accept: Some(accept),
    }
}

impl Server {
    /// The address to use as the Hub endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many HTTP requests the server has received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, error_code: Option<&str>, body: String) -> Self {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(code) = error_code {
            headers.push(("X-Error-Code", code.to_string()));
        }
        Self {
            status,
            headers,
            body: body.into_bytes(),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        let body = format!("{{\"error\":{}}}", json_string(message));
        let mut response = Self::json(status, Some(code), body);
        response
            .headers
            .push(("X-Error-Message", message.to_string()));
        response
    }
}

/// One connection, one request (the answer says `Connection: close`).
fn handle(
    stream: TcpStream,
    root: &Path,
    addr: SocketAddr,
    requests: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    requests.fetch_add(1, Ordering::SeqCst);
    let head_only = method == "HEAD";
    let response = if method == "GET" || head_only {
        route(root, addr, target, &headers)
    } else {
        Response::error(405, "MethodNotAllowed", "only GET and HEAD are served")
    };
    write_response(stream, &response, head_only)
}

fn write_response(
    mut stream: TcpStream,
    response: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Unknown",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

fn route(
    root: &Path,
    addr: SocketAddr,
    target: &str,
    headers: &BTreeMap<String, String>,
) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let Some(segments) = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<String>>>()
    else {
        return Response::error(400, "BadRequest", "malformed %-escape");
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let auth = headers.get("authorization").map(String::as_str);
    match segments.as_slice() {
        ["api", "datasets", owner, name, "revision", revision @ ..] if !revision.is_empty() => {
            match lookup(root, owner, name, &revision.join("/"), auth) {
                Ok(found) => info(owner, name, &found),
                Err(response) => response,
            }
        }
        ["datasets", owner, name, "resolve", revision, file @ ..] if !file.is_empty() => {
            let found = match lookup(root, owner, name, revision, auth) {
                Ok(found) => found,
                Err(response) => return response,
            };
            let Some(bytes) = read_file(&found.dir, file) else {
                return Response::error(404, "EntryNotFound", "Entry not found");
            };
            let file = file.join("/");
            if file.ends_with(".parquet") {
                let location = format!(
                    "http://{addr}/lfs/{owner}/{name}/{}/{file}",
                    revision.replace('/', "%2F")
                );
                Response {
                    status: 302,
                    headers: vec![
                        ("Location", location),
                        ("X-Repo-Commit", found.sha.clone()),
                        ("X-Linked-Etag", format!("\"{}\"", lfs_etag(&bytes))),
                        ("X-Linked-Size", bytes.len().to_string()),
                        ("ETag", format!("\"{}\"", digest(40, &[b"pointer", &bytes]))),
                    ],
                    body: Vec::new(),
                }
            } else {
                let etag = digest(40, &[b"blob", &bytes]);
                file_response(bytes, headers.get("range"), &etag, Some(&found.sha))
            }
        }
        ["lfs", owner, name, revision, file @ ..] if !file.is_empty() => {
            let found = match lookup(root, owner, name, revision, auth) {
                Ok(found) => found,
                Err(response) => return response,
            };
            match read_file(&found.dir, file) {
                Some(bytes) => {
                    let etag = lfs_etag(&bytes);
                    file_response(bytes, headers.get("range"), &etag, None)
                }
                None => Response::error(404, "EntryNotFound", "Entry not found"),
            }
        }
        _ => Response::error(404, "NotFound", "Not found"),
    }
}

/// A revision's folder and commit.
struct Found {
    dir: PathBuf,
    sha: String,
}

/// Finds revision `revision` (a name or a commit) of `OWNER/NAME`, or the Hub's error answer.
fn lookup(
    root: &Path,
    owner: &str,
    name: &str,
    revision: &str,
    auth: Option<&str>,
) -> Result<Found, Response> {
    let not_found = || Response::error(404, "RepoNotFound", "Repository not found");
    let safe = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains(['/', '\\', '@']);
    if !safe(owner) || !safe(name) {
        return Err(not_found());
    }
    let owner_dir = root.join(owner);
    // (revision, folder) of every revision of the repository.
    let mut revisions = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&owner_dir) {
        for entry in entries.flatten() {
            let Some(dir_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let revision = if dir_name == name {
                Some("main".to_string())
            } else {
                dir_name
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('@'))
                    .and_then(percent_decode)
            };
            if let Some(revision) = revision.filter(|_| entry.path().is_dir()) {
                revisions.push((revision, entry.path()));
            }
        }
    }
    if revisions.is_empty() {
        return Err(not_found());
    }
    if let Ok(token) = std::fs::read_to_string(owner_dir.join(name).join(PRIVATE_TOKEN_FILE))
        && auth != Some(format!("Bearer {}", token.trim()).as_str())
    {
        // What the Hub answers for a private repository without a valid token.
        return Err(Response::error(401, "RepoNotFound", "Repository not found"));
    }
    revisions.sort();
    for (revision_name, dir) in revisions {
        let sha = revision_sha(&dir);
        if revision_name == revision || sha == revision {
            return Ok(Found { dir, sha });
        }
    }
    Err(Response::error(
        404,
        "RevisionNotFound",
        &format!("Invalid rev id: {revision}"),
    ))
}

fn info(owner: &str, name: &str, found: &Found) -> Response {
    let siblings: Vec<String> = files(&found.dir)
        .iter()
        .map(|f| format!("{{\"rfilename\":{}}}", json_string(f)))
        .collect();
    let body = format!(
        "{{\"id\":{},\"sha\":{},\"private\":false,\"siblings\":[{}]}}",
        json_string(&format!("{owner}/{name}")),
        json_string(&found.sha),
        siblings.join(",")
    );
    Response::json(200, None, body)
}

/// The file's bytes, or the requested range of them.
fn file_response(
    bytes: Vec<u8>,
    range: Option<&String>,
    etag: &str,
    commit: Option<&str>,
) -> Response {
    let size = bytes.len();
    let mut headers = vec![
        ("ETag", format!("\"{etag}\"")),
        ("Accept-Ranges", "bytes".to_string()),
        ("Content-Type", "application/octet-stream".to_string()),
    ];
    if let Some(commit) = commit {
        headers.push(("X-Repo-Commit", commit.to_string()));
    }
    let Some(range) = range else {
        return Response {
            status: 200,
            headers,
            body: bytes,
        };
    };
    if size == 0 {
        // No byte range of an empty file exists; this tells a ranged client the size (0).
        headers.push(("Content-Range", "bytes */0".to_string()));
        return Response {
            status: 200,
            headers,
            body: bytes,
        };
    }
    match parse_range(range, size) {
        // A malformed or multi-part range is ignored, as RFC 9110 allows.
        RangeRequest::Ignored => Response {
            status: 200,
            headers,
            body: bytes,
        },
        RangeRequest::Part(start, end) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            Response {
                status: 206,
                headers,
                body: bytes[start..=end].to_vec(),
            }
        }
        RangeRequest::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{size}")));
            Response {
                status: 416,
                headers,
                body: Vec::new(),
            }
        }
    }
}

enum RangeRequest {
    Ignored,
    Part(usize, usize),
    Unsatisfiable,
}

/// One `bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX` range of a non-empty file.
fn parse_range(spec: &str, size: usize) -> RangeRequest {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let number = |s: &str| s.trim().parse::<usize>().ok();
    let (start, end) = if first.trim().is_empty() {
        match number(last) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size - 1),
            None => return RangeRequest::Ignored,
        }
    } else {
        let Some(start) = number(first) else {
            return RangeRequest::Ignored;
        };
        let end = if last.trim().is_empty() {
            size - 1
        } else {
            match number(last) {
                Some(end) if end >= start => end.min(size - 1),
                _ => return RangeRequest::Ignored,
            }
        };
        (start, end)
    };
    if start >= size {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(start, end)
    }
}

/// The content of `dir/segments...`, unless a segment could leave the folder or is hidden.
fn read_file(dir: &Path, segments: &[&str]) -> Option<Vec<u8>> {
    if segments
        .iter()
        .any(|s| s.is_empty() || s.starts_with('.') || s.contains('\\'))
    {
        return None;
    }
    let path = segments.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
    if path.is_file() {
        std::fs::read(path).ok()
    } else {
        None
    }
}

/// The `/`-separated paths of the files under `dir`, sorted, without hidden ones.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &relative, out);
            } else {
                out.push(relative);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// A revision's commit: a hash of its files' paths and contents.
fn revision_sha(dir: &Path) -> String {
    let mut parts: Vec<Vec<u8>> = vec![b"revision".to_vec()];
    for file in files(dir) {
        let content = std::fs::read(dir.join(&file)).unwrap_or_default();
        parts.push(file.into_bytes());
        parts.push(content);
    }
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    digest(40, &parts)
}

/// An LFS file's etag (the Hub's is its SHA-256: 64 hex digits).
fn lfs_etag(bytes: &[u8]) -> String {
    digest(64, &[b"lfs", bytes])
}

/// `len` hex digits of FNV-1a hashes of `parts` (a stand-in for SHA-1 and SHA-256).
fn digest(len: usize, parts: &[&[u8]]) -> String {
    let mut out = String::new();
    let mut round: u64 = 0;
    while out.len() < len {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for part in parts {
            for &byte in part.iter().chain(&(part.len() as u64).to_le_bytes()) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        out.push_str(&format!("{hash:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
