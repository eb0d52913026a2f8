//! One blob's upload: skipped when the repository has it (HEAD); otherwise an upload
//! session (resumed from a saved one when the registry still knows it), chunks of at most
//! the session's `OCI-Chunk-Max-Length` with `Content-Range` and `Content-Length`, and a
//! closing `PUT ?digest=`. When a chunk gets no answer, a 5xx, a 401 or a 416, the upload
//! asks the session's status (`GET`, `Range`) and continues from the offset the registry
//! reports, waiting longer each time, up to [`MAX_TRIES`] times in a row.

use super::{Answer, Body, Client, SendError};
use crate::blob::Blob;
use crate::chunks::{chunk_end, ChunkLimits};
use crate::resume::{backoff, held_bytes, verdict, Verdict, MAX_TRIES};
use crate::state::{Saved, State};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the upload tells its watcher (the progress bar).
pub trait Watch: Sync {
    /// The registry holds, or is being sent, bytes up to `at`.
    fn position(&self, at: u64);
    /// Something worth a line: a resume, a retry.
    fn note(&self, line: String);
}

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The repository had it: nothing sent.
    Existed,
    /// Uploaded: chunks accepted, the offsets it resumed from (a saved session, or after a
    /// failure), and the body bytes sent in all (failed tries included).
    Uploaded { chunks: u32, resumed_at: Vec<u64>, sent: u64 },
}

/// A test-only knob: `EDGE_PUSH_TEST_EXIT_AFTER_BYTES=N` ends the process (exit code 86) once
/// N body bytes have been handed to the network, mid-chunk, as a crash or a kill would. The
/// e2e test of resuming uses it to stop a push at a known point.
pub const EXIT_AFTER_BYTES: &str = "EDGE_PUSH_TEST_EXIT_AFTER_BYTES";
static SENT_BY_PROCESS: AtomicU64 = AtomicU64::new(0);

struct Session {
    location: String,
    limits: ChunkLimits,
    offset: u64,
}

pub struct Uploader<'a> {
    pub client: &'a Client,
    pub state: &'a State,
    /// `--chunk-size`, if given.
    pub chunk_size: Option<u64>,
    /// The knob above, read once.
    pub exit_after: Option<u64>,
}

impl Uploader<'_> {
    pub fn push(&self, blob: &Blob, watch: &dyn Watch) -> Result<Pushed, String> {
        if self.exists(blob)? {
            self.state.forget(&blob.digest);
            return Ok(Pushed::Existed);
        }
        let sent = AtomicU64::new(0);
        let (mut chunks, mut resumed_at, mut tries) = (0u32, Vec::new(), 0u32);
        let mut session = self.open_session(blob, watch, &mut resumed_at)?;
        loop {
            // Each pass sends the next chunk, or closes; what it ends with decides whether to
            // go on or to ask the registry where the upload stands.
            let failure = if session.offset < blob.size {
                let size = session.limits.chunk_size(self.chunk_size);
                let end = chunk_end(session.offset, blob.size, size, session.limits.min.unwrap_or(1));
                match self.patch(&session, blob, end, &sent, watch) {
                    Ok(answer) if verdict(answer.status) == Verdict::Accepted => {
                        session.location = answer.header("location").map_or(session.location, str::to_string);
                        session.offset =
                            held_bytes(answer.header("range")).filter(|&h| h > session.offset).unwrap_or(end);
                        chunks += 1;
                        tries = 0;
                        continue;
                    }
                    Ok(answer) => self.judge(blob, answer)?,
                    Err(e) => e,
                }
            } else {
                let url = with_digest(&self.client.url(&session.location), &blob.digest);
                match self.client.send("PUT", &url, &[], Body::Empty) {
                    Ok(answer) if answer.status == 201 || answer.status == 204 => {
                        self.state.forget(&blob.digest);
                        return Ok(Pushed::Uploaded { chunks, resumed_at, sent: sent.into_inner() });
                    }
                    Ok(answer) => self.judge(blob, answer)?,
                    Err(e) => e,
                }
            };
            if !failure.transient {
                return Err(failure.message);
            }
            tries += 1;
            if tries >= MAX_TRIES {
                return Err(format!(
                    "{}: gave up after {tries} tries in a row; last: {}",
                    blob.short(),
                    failure.message
                ));
            }
            std::thread::sleep(backoff(tries, None));
            watch.note(format!("{}: {}; asking the registry where the upload stands", blob.short(), failure.message));
            // A closing PUT whose answer was lost may have completed the blob.
            if session.offset >= blob.size && self.exists(blob)? {
                self.state.forget(&blob.digest);
                return Ok(Pushed::Uploaded { chunks, resumed_at, sent: sent.into_inner() });
            }
            match self.status(&session.location) {
                Ok(Some((location, held))) => {
                    if held != session.offset {
                        watch.note(format!("{}: the registry holds {held} bytes; continuing from there", blob.short()));
                    }
                    session.location = location;
                    session.offset = held.min(blob.size);
                    resumed_at.push(session.offset);
                    watch.position(session.offset);
                }
                Ok(None) => {
                    watch.note(format!("{}: the registry no longer knows the upload; starting it again", blob.short()));
                    session = self.start(blob)?;
                }
                Err(e) if e.transient => {}
                Err(e) => return Err(e.message),
            }
        }
    }

    /// A chunk's or close's answer that is not a success: `Ok` with what to report before
    /// asking for the status (a transient failure), or `Err` when the upload must stop.
    fn judge(&self, blob: &Blob, answer: Answer) -> Result<SendError, String> {
        let message = format!("{} answered {}", blob.short(), answer.complaint());
        match verdict(answer.status) {
            Verdict::Retry | Verdict::Resync | Verdict::Reauthenticate => Ok(SendError { message, transient: true }),
            // The session is gone (expired, or never known): the status request says so.
            Verdict::Refused if answer.status == 404 => Ok(SendError { message, transient: true }),
            Verdict::Refused | Verdict::Accepted => Err(format!("uploading {}: {}", blob.digest, answer.complaint())),
        }
    }

    fn exists(&self, blob: &Blob) -> Result<bool, String> {
        let url = self.client.url(&format!("/v2/{}/blobs/{}", self.client.repository, blob.digest));
        for attempt in 1..=MAX_TRIES {
            match self.client.send("HEAD", &url, &[], Body::Empty) {
                Ok(a) if a.status == 200 => return Ok(true),
                Ok(a) if a.status == 404 => return Ok(false),
                Ok(a) if verdict(a.status) != Verdict::Retry => return Err(format!("HEAD {url}: {}", a.complaint())),
                Err(e) if !e.transient => return Err(e.message),
                _ => std::thread::sleep(backoff(attempt, None)),
            }
        }
        Err(format!("HEAD {url}: no usable answer after {MAX_TRIES} tries"))
    }

    /// The saved session for this blob if the registry still has it, else a new one.
    fn open_session(&self, blob: &Blob, watch: &dyn Watch, resumed_at: &mut Vec<u64>) -> Result<Session, String> {
        if let Some(saved) = self.state.load(&blob.digest) {
            if let Ok(Some((location, held))) = self.status(&saved.location) {
                if held <= blob.size {
                    watch.note(format!(
                        "{}: resuming the upload of an earlier run at byte {held} of {} (the registry's Range)",
                        blob.short(),
                        blob.size
                    ));
                    resumed_at.push(held);
                    watch.position(held);
                    return Ok(Session { location, limits: saved.limits, offset: held });
                }
            }
            self.state.forget(&blob.digest);
        }
        self.start(blob)
    }

    /// `POST /v2/<name>/blobs/uploads/`: a new session, remembered for a later run.
    fn start(&self, blob: &Blob) -> Result<Session, String> {
        let url = self.client.url(&format!("/v2/{}/blobs/uploads/", self.client.repository));
        for attempt in 1..=MAX_TRIES {
            let answer = match self.client.send("POST", &url, &[], Body::Empty) {
                Ok(answer) => answer,
                Err(e) if e.transient => {
                    std::thread::sleep(backoff(attempt, None));
                    continue;
                }
                Err(e) => return Err(e.message),
            };
            match (answer.status, answer.header("location")) {
                (202, Some(location)) => {
                    let limits = ChunkLimits::from_headers(
                        answer.header("oci-chunk-min-length"),
                        answer.header("oci-chunk-max-length"),
                    );
                    let saved = Saved { location: location.to_string(), limits };
                    self.state.save(&blob.digest, &saved);
                    return Ok(Session { location: saved.location, limits, offset: 0 });
                }
                (status, _) if verdict(status) == Verdict::Retry => {
                    std::thread::sleep(backoff(attempt, answer.header("retry-after")))
                }
                _ => return Err(format!("starting the upload of {}: {}", blob.digest, answer.complaint())),
            }
        }
        Err(format!("starting the upload of {}: no usable answer after {MAX_TRIES} tries", blob.digest))
    }

    /// `GET <session>`: its Location and the bytes it holds; `None` if the registry no longer
    /// knows it.
    fn status(&self, location: &str) -> Result<Option<(String, u64)>, SendError> {
        let answer = self.client.send("GET", &self.client.url(location), &[], Body::Empty)?;
        match answer.status {
            200 | 204 => {
                let held = held_bytes(answer.header("range")).unwrap_or(0);
                Ok(Some((answer.header("location").unwrap_or(location).to_string(), held)))
            }
            404 => Ok(None),
            status => Err(SendError {
                message: format!("upload status: {}", answer.complaint()),
                transient: verdict(status) != Verdict::Refused,
            }),
        }
    }

    fn patch(
        &self,
        session: &Session,
        blob: &Blob,
        end: u64,
        sent: &AtomicU64,
        watch: &dyn Watch,
    ) -> Result<Answer, SendError> {
        let start = session.offset;
        let reader = Counted { inner: blob.reader(start, end), at: start, sent, watch, exit_after: self.exit_after };
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-range", format!("{start}-{}", end - 1)),
        ];
        let body = Body::Reader { len: end - start, reader: Box::new(reader) };
        self.client.send("PATCH", &self.client.url(&session.location), &headers, body)
    }
}

/// `url` with `digest=<digest>` added to its query.
fn with_digest(url: &str, digest: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={}", digest.replace(':', "%3A"))
}

/// A chunk's reader that moves the progress bar and counts what was sent.
struct Counted<'a, R> {
    inner: R,
    at: u64,
    sent: &'a AtomicU64,
    watch: &'a dyn Watch,
    exit_after: Option<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        if let Some(limit) = self.exit_after {
            let left = limit.saturating_sub(SENT_BY_PROCESS.load(Ordering::SeqCst));
            if left == 0 {
                eprintln!("edge-push: {EXIT_AFTER_BYTES}={limit}: stopping here, mid-chunk");
                std::process::exit(86);
            }
            n = n.min(left as usize);
        }
        SENT_BY_PROCESS.fetch_add(n as u64, Ordering::SeqCst);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.at += n as u64;
        self.watch.position(self.at);
        Ok(n)
    }
}

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
