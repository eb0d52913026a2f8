//! An in-memory upstream registry, the double of [`super::http::UpstreamHttp`] for native
//! tests: it serves manifests by tag and digest and blobs, speaks the Docker token flow
//! when given credentials, and can be told to fail (down, `429`, `5xx`) or to corrupt a
//! blob. It records every request it is sent.

use super::http::{UpstreamHttp, UpstreamRequest, UpstreamResponse};
use crate::oci::Digest;
/// The native body of the in-memory store (`storage::ByteStream`), spelt out: this module
/// calls `oci` only.
pub type ByteStream = futures::stream::LocalBoxStream<'static, Result<Vec<u8>, String>>;
use base64::Engine;
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    /// No answer at all (a network failure or a timeout).
    Down,
    /// Every request answered with this status.
    Status(u16),
}

#[derive(Default)]
struct State {
    tags: RefCell<HashMap<(String, String), Digest>>,
    manifests: RefCell<HashMap<Digest, (String, Vec<u8>)>>,
    blobs: RefCell<HashMap<Digest, Vec<u8>>>,
    corrupt: RefCell<HashSet<Digest>>,
    login: RefCell<Option<(String, String)>>,
    health: Cell<Option<Health>>,
    log: RefCell<Vec<String>>,
    issued: Cell<u32>,
    hide_unknown: Cell<bool>,
    redirect_blobs: Cell<bool>,
    pauses: Cell<u32>,
}

/// The fake upstream; clones share one state, so a test keeps a handle to what the
/// mirror was given.
#[derive(Clone, Default)]
pub struct FakeUpstream {
    state: Rc<State>,
}

/// The origin the fake pretends to be at, and its token realm.
pub const FAKE_ORIGIN: &str = "https://upstream.test";
const REALM: &str = "https://auth.upstream.test/token";
const CDN: &str = "https://cdn.example/";

impl FakeUpstream {
    /// Adds a manifest under `name`, tagged `tag` if given; returns its digest.
    pub fn put_manifest(&self, name: &str, tag: Option<&str>, media_type: &str, bytes: &[u8]) -> Digest {
        let digest = crate::oci::Algorithm::Sha256.digest_of(bytes);
        self.state.manifests.borrow_mut().insert(digest.clone(), (media_type.to_owned(), bytes.to_vec()));
        if let Some(tag) = tag {
            self.state.tags.borrow_mut().insert((name.to_owned(), tag.to_owned()), digest.clone());
        }
        digest
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Digest {
        let digest = crate::oci::Algorithm::Sha256.digest_of(bytes);
        self.state.blobs.borrow_mut().insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// Serves `digest` altered: a blob's first byte changed, a manifest with a space added.
    pub fn corrupt(&self, digest: &Digest) {
        self.state.corrupt.borrow_mut().insert(digest.clone());
    }

    /// Serves `digest` intact again.
    pub fn serve_intact(&self, digest: &Digest) {
        self.state.corrupt.borrow_mut().remove(digest);
    }

    /// Answers `401` for what it does not have, even to a valid token, as Docker Hub does
    /// for a repository that does not exist.
    pub fn hide_unknown(&self) {
        self.state.hide_unknown.set(true);
    }

    /// Sends blobs from another host (a CDN, as Docker Hub does) by a `307`; that host
    /// refuses a request that carries an `Authorization` header.
    pub fn redirect_blobs(&self) {
        self.state.redirect_blobs.set(true);
    }

    /// Requires the Docker token flow with these Basic credentials.
    pub fn require_login(&self, username: &str, password: &str) {
        *self.state.login.borrow_mut() = Some((username.to_owned(), password.to_owned()));
    }

    pub fn set_health(&self, health: Health) {
        self.state.health.set(Some(health));
    }

    /// How many pauses the mirror took (waits for another request's fill).
    pub fn pauses(&self) -> u32 {
        self.state.pauses.get()
    }

    /// Every request so far, as `METHOD url` (with its `authorization` value, if any).
    pub fn log(&self) -> Vec<String> {
        self.state.log.borrow().clone()
    }

    pub fn clear_log(&self) {
        self.state.log.borrow_mut().clear();
    }

    fn answer(&self, request: &UpstreamRequest) -> UpstreamResponse<ByteStream> {
        let header = |name: &str| request.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        if let Some(Health::Status(status)) = self.state.health.get() {
            return reply(status, vec![], None);
        }
        if let Some(query) = request.url.strip_prefix(REALM) {
            return self.issue_token(header("authorization"), query);
        }
        if let Some(path) = request.url.strip_prefix(CDN) {
            if header("authorization").is_some() {
                return reply(400, vec![], Some(b"credentials sent to the CDN".to_vec()));
            }
            let found = path.rsplit('/').next().and_then(|d| d.parse().ok()).and_then(|d| self.blob(&d));
            let Some((digest, media_type, bytes)) = found else { return reply(404, vec![], None) };
            return found_reply(digest, media_type, bytes, request.method == http::Method::HEAD);
        }
        let Some(path) = request.url.strip_prefix(&format!("{FAKE_ORIGIN}/v2/")) else {
            return reply(404, vec![], None);
        };
        if self.state.login.borrow().is_some() {
            let issued = self.state.issued.get();
            let valid = (1..=issued).any(|n| header("authorization") == Some(format!("Bearer token-{n}")));
            if !valid {
                let scope = path.rsplitn(3, '/').nth(2).unwrap_or_default();
                let challenge =
                    format!(r#"Bearer realm="{REALM}",service="upstream.test",scope="repository:{scope}:pull""#);
                return reply(401, vec![("www-authenticate".into(), challenge)], None);
            }
        }
        let head = request.method == http::Method::HEAD;
        if self.state.redirect_blobs.get() && path.contains("/blobs/") && header("authorization").is_some() {
            return reply(307, vec![("location".into(), format!("{CDN}{path}"))], None);
        }
        let mut parts = path.rsplitn(3, '/');
        let (reference, kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
        let Some(name) = name else { return reply(404, vec![], None) };
        let found = match kind {
            "manifests" => self.manifest(name, reference),
            "blobs" => reference.parse::<Digest>().ok().and_then(|digest| self.blob(&digest)),
            _ => None,
        };
        let Some((digest, media_type, bytes)) = found else {
            return reply(if self.state.hide_unknown.get() { 401 } else { 404 }, vec![], None);
        };
        found_reply(digest, media_type, bytes, head)
    }

    fn blob(&self, digest: &Digest) -> Option<(Digest, String, Vec<u8>)> {
        let mut bytes = self.state.blobs.borrow().get(digest)?.clone();
        if self.state.corrupt.borrow().contains(digest) && !bytes.is_empty() {
            bytes[0] ^= 0xff;
        }
        Some((digest.clone(), "application/octet-stream".to_owned(), bytes))
    }

    fn manifest(&self, name: &str, reference: &str) -> Option<(Digest, String, Vec<u8>)> {
        let digest = match reference.parse::<Digest>() {
            Ok(digest) => digest,
            Err(_) => self.state.tags.borrow().get(&(name.to_owned(), reference.to_owned()))?.clone(),
        };
        let (media_type, mut bytes) = self.state.manifests.borrow().get(&digest)?.clone();
        if self.state.corrupt.borrow().contains(&digest) {
            bytes.push(b' ');
        }
        Some((digest, media_type, bytes))
    }

    fn issue_token(&self, authorization: Option<String>, query: &str) -> UpstreamResponse<ByteStream> {
        let Some((user, password)) = self.state.login.borrow().clone() else { return reply(404, vec![], None) };
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if authorization != Some(format!("Basic {expected}")) || !query.contains("scope=repository") {
            return reply(401, vec![], Some(b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}".to_vec()));
        }
        let n = self.state.issued.get() + 1;
        self.state.issued.set(n);
        let body = format!(r#"{{"token": "token-{n}", "expires_in": 300}}"#).into_bytes();
        reply(200, vec![("content-type".into(), "application/json".into())], Some(body))
    }
}

fn found_reply(digest: Digest, media_type: String, bytes: Vec<u8>, head: bool) -> UpstreamResponse<ByteStream> {
    let headers = vec![
        ("content-type".into(), media_type),
        ("content-length".into(), bytes.len().to_string()),
        ("docker-content-digest".into(), digest.to_string()),
    ];
    reply(200, headers, (!head).then_some(bytes))
}

fn reply(status: u16, headers: Vec<(String, String)>, body: Option<Vec<u8>>) -> UpstreamResponse<ByteStream> {
    let body = body.map(|bytes| -> ByteStream { Box::pin(futures::stream::once(async move { Ok(bytes) })) });
    UpstreamResponse { status, headers, body }
}

impl UpstreamHttp<ByteStream> for FakeUpstream {
    fn send(&self, request: UpstreamRequest) -> LocalBoxFuture<'_, Result<UpstreamResponse<ByteStream>, String>> {
        let auth = request.headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| format!(" [{v}]"));
        self.state.log.borrow_mut().push(format!("{} {}{}", request.method, request.url, auth.unwrap_or_default()));
        let answer = match self.state.health.get() {
            Some(Health::Down) => Err("connection refused".to_owned()),
            _ => Ok(self.answer(&request)),
        };
        Box::pin(async move { answer })
    }

    /// Returns at once, after one `Pending` (so that a test polling by hand can run another
    /// request in between); counted in [`FakeUpstream::pauses`].
    fn pause(&self, _ms: u64) -> LocalBoxFuture<'_, ()> {
        self.state.pauses.set(self.state.pauses.get() + 1);
        let mut yielded = false;
        Box::pin(futures::future::poll_fn(move |cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }))
    }

    fn digest_body(
        &self,
        body: ByteStream,
        algorithm: crate::oci::Algorithm,
    ) -> LocalBoxFuture<'_, Result<Digest, String>> {
        Box::pin(async move {
            let bytes = self.read_body(body, usize::MAX).await?;
            Ok(algorithm.digest_of(&bytes))
        })
    }

    fn read_body(&self, mut body: ByteStream, limit: usize) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                bytes.extend(chunk?);
                if bytes.len() > limit {
                    return Err(format!("over {limit} bytes"));
                }
            }
            Ok(bytes)
        })
    }
}
