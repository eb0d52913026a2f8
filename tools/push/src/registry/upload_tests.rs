//! The upload against a tiny in-process registry double (std TCP, HTTP/1.1): just enough of
//! the upload API to check chunking, status-driven resumes, retries and refusals. The real
//! registry is exercised by tests/e2e/test_push_tool.py.

use super::*;
use crate::blob::sha256_digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Registry {
    blobs: HashMap<String, Vec<u8>>,
    sessions: HashMap<String, Vec<u8>>,
    /// Requests seen: "PATCH 0-99", "GET status", ...
    log: Vec<String>,
    /// PATCH number n (1 = the first): keep this many body bytes, then drop the connection
    /// unanswered.
    drop_patch: Option<(usize, usize)>,
    /// The next PATCH gets this status without being read.
    fail_next: Option<u16>,
    max: Option<u64>,
}

struct Double {
    base: String,
    shared: Arc<Mutex<Registry>>,
}

impl Double {
    fn start(max: Option<u64>) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Registry { max, ..Registry::default() }));
        let for_server = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = for_server.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Double { base, shared }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.shared.lock().unwrap())
    }
}

fn serve(stream: TcpStream, shared: &Mutex<Registry>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let length: usize = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let id = path.rsplit('/').next().unwrap_or("").to_string();
        let mut reg = shared.lock().unwrap();
        let range = |held: usize| format!("Range: 0-{}\r\n", held.saturating_sub(1));
        let reply = match method.as_str() {
            "HEAD" => {
                if reg.blobs.contains_key(&id) {
                    "200 OK\r\n".into()
                } else {
                    "404 Not Found\r\n".into()
                }
            }
            "POST" => {
                let id = format!("s{}", reg.sessions.len());
                reg.sessions.insert(id.clone(), Vec::new());
                let max = reg.max.map_or(String::new(), |m| format!("OCI-Chunk-Max-Length: {m}\r\n"));
                format!("202 Accepted\r\nLocation: /v2/r/blobs/uploads/{id}\r\n{max}{}", range(0))
            }
            "GET" => {
                reg.log.push("GET status".into());
                match reg.sessions.get(&id) {
                    Some(held) => format!("204 No Content\r\n{}", range(held.len())),
                    None => "404 Not Found\r\n".into(),
                }
            }
            "PATCH" => {
                let (start, _) = headers["content-range"].split_once('-').unwrap();
                reg.log.push(format!("PATCH {}", headers["content-range"]));
                let held = reg.sessions[&id].len();
                if let Some(status) = reg.fail_next.take() {
                    drop(reg);
                    std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink()).unwrap();
                    write!(out, "HTTP/1.1 {status} Busy\r\nContent-Length: 0\r\n\r\n").unwrap();
                    continue;
                }
                if start.parse::<usize>().unwrap() != held {
                    format!("416 Range Not Satisfiable\r\n{}", range(held))
                } else {
                    let patches = reg.log.iter().filter(|l| l.starts_with("PATCH")).count();
                    let keep = reg.drop_patch.filter(|&(n, _)| n == patches).map(|(_, keep)| keep);
                    let mut body = vec![0; keep.unwrap_or(length).min(length)];
                    drop(reg);
                    reader.read_exact(&mut body).unwrap();
                    let mut reg = shared.lock().unwrap();
                    let session = reg.sessions.get_mut(&id).unwrap();
                    session.extend_from_slice(&body);
                    if keep.is_some() {
                        return; // the connection drops mid-body, unanswered
                    }
                    format!("202 Accepted\r\nLocation: /v2/r/blobs/uploads/{id}\r\n{}", range(session.len()))
                }
            }
            "PUT" => {
                let digest = query.strip_prefix("digest=").unwrap().replace("%3A", ":");
                let bytes = reg.sessions.remove(&id).unwrap();
                if sha256_digest(&bytes) == digest {
                    reg.blobs.insert(digest, bytes);
                    "201 Created\r\n".into()
                } else {
                    "400 Bad Request\r\n".into()
                }
            }
            _ => format!("405 Method Not Allowed\r\nX-Seen: {method:?} {line:?}\r\n"),
        };
        write!(out, "HTTP/1.1 {reply}Content-Length: 0\r\n\r\n").unwrap();
    }
}

#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Watch for Notes {
    fn position(&self, _: u64) {}
    fn note(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

fn blob(size: usize) -> Blob {
    Blob::in_memory("application/octet-stream", (0..size).map(|i| (i * 7 % 251) as u8).collect())
}

fn push(double: &Double, state: &State, blob: &Blob) -> Result<Pushed, String> {
    let client = Client::new(&double.base, "r", None);
    Uploader { client: &client, state, chunk_size: None, exit_after: None }.push(blob, &Notes::default())
}

fn no_state() -> State {
    State::open(Some(&tempfile::tempdir().unwrap().keep()), "double/r").0
}

#[test]
fn chunks_stay_under_the_advertised_maximum() {
    let double = Double::start(Some(1000));
    let blob = blob(2500);
    let pushed = push(&double, &no_state(), &blob).unwrap();
    assert_eq!(pushed, Pushed::Uploaded { chunks: 3, resumed_at: vec![], sent: 2500 });
    double.with(|r| {
        assert_eq!(r.log, ["PATCH 0-999", "PATCH 1000-1999", "PATCH 2000-2499"]);
        assert_eq!(r.blobs[&blob.digest], bytes_of(&blob, 0, 2500));
    });
    assert_eq!(push(&double, &no_state(), &blob).unwrap(), Pushed::Existed, "HEAD finds it");
}

#[test]
fn a_dropped_connection_resumes_from_the_offset_the_registry_reports() {
    let double = Double::start(Some(1000));
    // The second chunk (1000-1999) breaks after 234 bytes: the registry holds 1234.
    double.with(|r| r.drop_patch = Some((2, 234)));
    let blob = blob(2500);
    let client = Client::new(&double.base, "r", None);
    let notes = Notes::default();
    let pushed =
        Uploader { client: &client, state: &no_state(), chunk_size: None, exit_after: None }.push(&blob, &notes);
    let Pushed::Uploaded { resumed_at, sent, chunks } = pushed.unwrap() else { panic!("not uploaded") };
    let log = double.with(|r| r.log.clone());
    assert_eq!(log, ["PATCH 0-999", "PATCH 1000-1999", "GET status", "PATCH 1234-2233", "PATCH 2234-2499"]);
    assert_eq!((resumed_at, chunks), (vec![1234], 3));
    assert!((2500 + 234..=2500 + 1000).contains(&sent), "the broken try's bytes count too: {sent}");
    assert!(double.with(|r| r.blobs.contains_key(&blob.digest)));
    assert!(notes.0.lock().unwrap().iter().any(|n| n.contains("holds 1234 bytes")), "{:?}", notes.0);
}

#[test]
fn a_saved_session_of_an_earlier_run_is_continued_not_restarted() {
    let double = Double::start(None);
    let blob = blob(3000);
    let held = bytes_of(&blob, 0, 1100);
    double.with(|r| r.sessions.insert("s9".into(), held));
    let state = no_state();
    state.save(&blob.digest, &Saved { location: "/v2/r/blobs/uploads/s9".into(), limits: ChunkLimits::default() });
    let pushed = push(&double, &state, &blob).unwrap();
    assert_eq!(pushed, Pushed::Uploaded { chunks: 1, resumed_at: vec![1100], sent: 1900 });
    assert_eq!(double.with(|r| r.log.clone()), ["GET status", "PATCH 1100-2999"]);
    assert_eq!(state.load(&blob.digest), None, "forgotten once complete");
}

#[test]
fn a_503_is_retried_from_the_status_and_a_refusal_stops() {
    let double = Double::start(Some(1000));
    double.with(|r| r.fail_next = Some(503));
    let blob = blob(1500);
    let pushed = push(&double, &no_state(), &blob).unwrap();
    assert_eq!(double.with(|r| r.log.clone()), ["PATCH 0-999", "GET status", "PATCH 0-999", "PATCH 1000-1499"]);
    assert!(matches!(pushed, Pushed::Uploaded { chunks: 2, .. }), "{pushed:?}");

    double.with(|r| r.fail_next = Some(400));
    let err = push(&double, &no_state(), &blob_of(b"other")).unwrap_err();
    assert!(err.contains("400"), "{err}");
}

fn blob_of(bytes: &[u8]) -> Blob {
    Blob::in_memory("application/octet-stream", bytes.to_vec())
}

fn bytes_of(blob: &Blob, from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    blob.reader(from, to).read_to_end(&mut out).unwrap();
    out
}
