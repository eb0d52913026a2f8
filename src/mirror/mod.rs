//! The pull-through cache's upstream side: which upstream a name is cached from
//! ([`config`]), how this registry logs in to it ([`auth`]: the Docker token flow or Basic,
//! tokens cached per isolate) and the requests it makes ([`Mirror`], over the
//! [`http::UpstreamHttp`] port, with an in-memory upstream as its double in [`fake`]).
//!
//! It may call `oci` only. What is fetched is checked and stored by the registry core
//! (`registry::upstream`), and `api::mirror` decides when to ask: a miss, a tag older than
//! `UPSTREAM_TAG_TTL_SECONDS`, never a digest already held. Nothing an upstream sends is
//! passed to the client but the content itself: no upstream header, token or credential.

pub mod auth;
pub mod config;
pub mod fake;
pub mod http;

pub use config::{Credentials, MirrorConfig, Route, Upstream};

use self::auth::{Challenge, TokenCache};
use self::http::{UpstreamHttp, UpstreamRequest, UpstreamResponse};
use crate::oci::{Digest, Reference};
use ::http::Method;
use std::rc::Rc;

/// The manifests this cache asks for: an index and each platform's manifest, OCI's and
/// Docker's (the upstream picks; Docker Hub answers a schema-1 manifest to none of them).
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// Why an upstream gave no content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream says it has no such thing (`404`).
    #[error("{0}")]
    NotFound(String),
    /// No usable answer: a timeout, the network, a `429`, a `5xx`, a refused login, an
    /// answer that is not what was asked for. A cached tag is served instead (stale).
    #[error("{0}")]
    Failed(String),
}

/// A manifest as an upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamManifest {
    pub bytes: Vec<u8>,
    /// Its `Content-Type`.
    pub media_type: Option<String>,
    /// Its `Docker-Content-Digest`, if it sent one.
    pub digest: Option<Digest>,
}

/// A blob's body as an upstream streams it, with the length it announced.
pub struct UpstreamBlob<N> {
    pub length: u64,
    pub body: N,
}

/// The upstream side of the pull-through cache for one request.
pub struct Mirror<N> {
    config: MirrorConfig,
    http: Box<dyn UpstreamHttp<N>>,
    tokens: Rc<TokenCache>,
}

impl<N> Mirror<N> {
    pub fn new(config: MirrorConfig, http: Box<dyn UpstreamHttp<N>>, tokens: Rc<TokenCache>) -> Self {
        Mirror { config, http, tokens }
    }

    pub fn config(&self) -> &MirrorConfig {
        &self.config
    }

    /// Waits `ms` milliseconds.
    pub async fn pause(&self, ms: u64) {
        self.http.pause(ms).await
    }

    /// The digest an upstream's tag or digest names now (a `HEAD`, which Docker Hub does
    /// not count against its pull limit); `None` when it sent no `Docker-Content-Digest`.
    pub async fn head_manifest(
        &self,
        route: &Route<'_>,
        reference: &Reference,
        now_ms: u64,
    ) -> Result<Option<Digest>, UpstreamError> {
        let path = format!("manifests/{reference}");
        let response = self.exchange(route, Method::HEAD, &path, now_ms).await?;
        Ok(response.header("docker-content-digest").and_then(|d| d.parse().ok()))
    }

    /// A manifest by tag or digest, read whole (at most `limit` bytes).
    pub async fn get_manifest(
        &self,
        route: &Route<'_>,
        reference: &Reference,
        limit: usize,
        now_ms: u64,
    ) -> Result<UpstreamManifest, UpstreamError> {
        let response = self.exchange(route, Method::GET, &format!("manifests/{reference}"), now_ms).await?;
        if content_length(&response).is_some_and(|length| length > limit as u64) {
            return Err(failed(route, &format!("sent a manifest over this registry's {limit}-byte limit")));
        }
        let media_type = response.header("content-type").map(str::to_owned);
        let digest = response.header("docker-content-digest").and_then(|d| d.parse().ok());
        let body = response.body.ok_or_else(|| failed(route, "sent a manifest without a body"))?;
        let bytes = self.http.read_body(body, limit).await.map_err(|e| failed(route, &format!("manifest: {e}")))?;
        Ok(UpstreamManifest { bytes, media_type, digest })
    }

    /// A blob's size (a `HEAD`).
    pub async fn head_blob(&self, route: &Route<'_>, digest: &Digest, now_ms: u64) -> Result<u64, UpstreamError> {
        let response = self.exchange(route, Method::HEAD, &format!("blobs/{digest}"), now_ms).await?;
        content_length(&response).ok_or_else(|| failed(route, "answered a blob HEAD without Content-Length"))
    }

    /// A blob's body, to be stored as it streams (the store checks its digest).
    pub async fn get_blob(
        &self,
        route: &Route<'_>,
        digest: &Digest,
        now_ms: u64,
    ) -> Result<UpstreamBlob<N>, UpstreamError> {
        let response = self.exchange(route, Method::GET, &format!("blobs/{digest}"), now_ms).await?;
        let length = content_length(&response)
            .ok_or_else(|| failed(route, "sent a blob without Content-Length; it cannot be stored as it streams"))?;
        let body = response.body.ok_or_else(|| failed(route, "sent a blob without a body"))?;
        Ok(UpstreamBlob { length, body })
    }

    /// Whether the upstream's blob `digest` hashes to it: fetched and hashed, not stored (for
    /// content this registry holds already, which is linked only on that proof).
    pub async fn verify_blob(&self, route: &Route<'_>, digest: &Digest, now_ms: u64) -> Result<bool, UpstreamError> {
        let blob = self.get_blob(route, digest, now_ms).await?;
        let actual = self.http.digest_body(blob.body, digest.algorithm()).await;
        let actual = actual.map_err(|e| failed(route, &format!("broke off sending {digest}: {e}")))?;
        Ok(actual == *digest)
    }

    /// One request for `/v2/<remote>/<path>`, logging in when challenged: with a cached
    /// token first, else without, then once more with the credentials the challenge asks
    /// for. Any answer but a `200` is an [`UpstreamError`].
    async fn exchange(
        &self,
        route: &Route<'_>,
        method: Method,
        path: &str,
        now_ms: u64,
    ) -> Result<UpstreamResponse<N>, UpstreamError> {
        let upstream = route.upstream;
        let url = format!("{}/v2/{}/{}", upstream.url, route.remote, path);
        let scope = format!("repository:{}:pull", route.remote);
        let request = |authorization: Option<&str>| {
            let mut request = UpstreamRequest::new(method.clone(), url.clone())
                .header("accept", ACCEPT)
                .header("user-agent", "edge-registry (pull-through cache)");
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            request
        };
        let cached = self.tokens.get(&upstream.prefix, &scope, now_ms).map(|t| format!("Bearer {t}"));
        let (mut response, mut at) = self.send(route, request(cached.as_deref())).await?;
        let mut bearer = false;
        if response.status == 401 {
            // Only the upstream itself may ask for a login: never a host it redirected to.
            if !auth::same_origin(&at, &upstream.url) {
                return Err(failed(route, &format!("redirected to {} which asked for a login", auth::origin_of(&at))));
            }
            self.tokens.forget(&upstream.prefix, &scope);
            let challenge = response.header("www-authenticate").and_then(auth::parse_challenge);
            let authorization = match challenge {
                Some(Challenge::Bearer { realm, service, scope: asked }) => {
                    let asked = asked.unwrap_or_else(|| scope.clone());
                    let token = self.token(route, &realm, service.as_deref(), &asked, now_ms).await?;
                    // Kept under the scope this cache asks by too, so the next request uses it.
                    self.tokens.put(&upstream.prefix, &scope, &token, now_ms);
                    bearer = true;
                    format!("Bearer {}", token.token)
                }
                Some(Challenge::Basic) => match &upstream.credentials {
                    Some(credentials) => auth::basic(credentials),
                    None => return Err(failed(route, "asks for a login (Basic) and no credentials are set for it")),
                },
                None => return Err(failed(route, "answered 401 with a challenge this cache cannot answer")),
            };
            (response, at) = self.send(route, request(Some(&authorization))).await?;
        }
        let missing = || UpstreamError::NotFound(format!("{} has no {}/{path}", upstream.url, route.remote));
        let from_upstream = auth::same_origin(&at, &upstream.url);
        match response.status {
            200 => Ok(response),
            404 if from_upstream => Err(missing()),
            // Docker Hub answers a repository that does not exist (or that these credentials
            // cannot read) with 401 even to a token it just issued: not found, as docker
            // reports it. Not after Basic (that is a wrong password), nor from a CDN.
            401 | 403 if bearer && from_upstream => Err(missing()),
            401 | 403 => Err(failed(route, &format!("refused the login ({}); check its credentials", response.status))),
            429 => Err(failed(route, "answered 429 (too many requests)")),
            status => Err(failed(route, &format!("answered {status}"))),
        }
    }

    /// A token for `scope` from the upstream's token service, cached for its lifetime. The
    /// credentials go only to a realm on the upstream's own domain and scheme
    /// ([`auth::realm_may_see_credentials`]); an upstream naming any other realm is refused.
    async fn token(
        &self,
        route: &Route<'_>,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        now_ms: u64,
    ) -> Result<auth::IssuedToken, UpstreamError> {
        let mut request = UpstreamRequest::new(Method::GET, auth::token_url(realm, service, scope));
        if let Some(credentials) = &route.upstream.credentials {
            if !auth::realm_may_see_credentials(&route.upstream.url, realm, &route.upstream.token_hosts) {
                return Err(failed(route, &format!("names a token service ({realm}) outside its own domain or scheme; its credentials are not sent there")));
            }
            request = request.header("authorization", auth::basic(credentials));
        }
        let (response, _) = self.send(route, request).await?;
        if response.status != 200 {
            let status = response.status;
            return Err(failed(
                route,
                &format!("refused a token (its token service answered {status}); check its credentials"),
            ));
        }
        if content_length(&response).is_some_and(|length| length > TOKEN_LIMIT as u64) {
            return Err(failed(route, "sent a token answer over 64 KiB"));
        }
        let body = response.body.ok_or_else(|| failed(route, "sent an empty token answer"))?;
        let bytes =
            self.http.read_body(body, TOKEN_LIMIT).await.map_err(|e| failed(route, &format!("token answer: {e}")))?;
        let issued = auth::parse_token(&bytes).ok_or_else(|| failed(route, "sent a token answer without a token"))?;
        self.tokens.put(&route.upstream.prefix, scope, &issued, now_ms);
        Ok(issued)
    }

    /// One exchange, following redirects (Docker Hub and Quay send blobs from a CDN), and
    /// where it ended. `Authorization` goes only to the origin it was meant for: a hop to
    /// another host goes without it, and a hop from `https` to `http` is refused.
    async fn send(
        &self,
        route: &Route<'_>,
        request: UpstreamRequest,
    ) -> Result<(UpstreamResponse<N>, String), UpstreamError> {
        let unreachable = |e: String| failed(route, &format!("could not be reached: {e}"));
        let mut response = self.http.send(request.clone()).await.map_err(unreachable)?;
        let mut url = request.url.clone();
        for _ in 0..MAX_REDIRECTS {
            if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
                return Ok((response, url));
            }
            let Some(next) = response.header("location").and_then(|l| auth::resolve(&url, l)) else {
                return Err(failed(route, "redirected without a usable Location"));
            };
            if url.starts_with("https://") && !next.starts_with("https://") {
                return Err(failed(route, "redirected from https to http"));
            }
            let mut hop = UpstreamRequest::new(request.method.clone(), next.clone());
            let keep = |name: &str| name != "authorization" || auth::same_origin(&next, &request.url);
            hop.headers = request.headers.iter().filter(|(n, _)| keep(n)).cloned().collect();
            url = next;
            response = self.http.send(hop).await.map_err(unreachable)?;
        }
        Err(failed(route, &format!("redirected more than {MAX_REDIRECTS} times")))
    }
}

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;

/// The largest token answer read.
const TOKEN_LIMIT: usize = 64 * 1024;

fn content_length<N>(response: &UpstreamResponse<N>) -> Option<u64> {
    response.header("content-length")?.trim().parse().ok()
}

fn failed(route: &Route<'_>, what: &str) -> UpstreamError {
    UpstreamError::Failed(format!("upstream {} ({}) {what}", route.upstream.prefix, route.upstream.url))
}
