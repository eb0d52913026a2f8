//! The registry's HTTP API as this tool uses it: blob existence, upload sessions (start,
//! chunk, status, close), and the manifest. Every request carries the current
//! authorisation; a 401 is answered (token flow or Basic) and a bodiless request retried
//! once, while a chunk's 401 goes back to the upload, which continues from the status.

pub mod auth;
pub mod upload;

use crate::resume::{backoff, verdict, Verdict, MAX_TRIES};
use auth::{Auth, Credentials};
use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;
use ureq::http::Request;
use ureq::SendBody;

/// A registry answer: status, the headers this tool reads, and a short body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    headers: HashMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The spec's error body, shortened to its messages (`DENIED: requested access ...`),
    /// or the status and raw body.
    pub fn complaint(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<Error>,
        }
        #[derive(serde::Deserialize)]
        struct Error {
            code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_str::<Errors>(&self.body) {
            Ok(e) if !e.errors.is_empty() => {
                let parts: Vec<String> = e.errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect();
                format!("{} {}", self.status, parts.join("; "))
            }
            _ => format!("{} {}", self.status, self.body.chars().take(300).collect::<String>().trim()),
        }
    }
}

/// A request that got no answer (`transient`: the network, worth a retry) or that cannot
/// be made (credentials refused, a bad URL).
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub transient: bool,
}

impl SendError {
    fn fatal(message: String) -> Self {
        SendError { message, transient: false }
    }
}

impl From<SendError> for String {
    fn from(e: SendError) -> String {
        e.message
    }
}

/// What a request's body is: none, or `len` bytes from a reader made afresh per try.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader { len: u64, reader: Box<dyn Read + Send + 'a> },
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub repository: String,
    pub auth: Auth,
}

impl Client {
    pub fn new(base: &str, repository: &str, credentials: Option<Credentials>) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(3)
            .timeout_connect(Some(Duration::from_secs(30)))
            // A chunk of 100 MB is answered once the registry has stored it.
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .user_agent(concat!("edge-push/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent: ureq::Agent = config.into();
        Client {
            auth: Auth::new(agent.clone(), credentials, repository),
            agent,
            base: base.to_string(),
            repository: repository.to_string(),
        }
    }

    /// `path` (or an absolute URL, or a Location the registry sent) as a full URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// One request with the current authorisation. A 401 is answered (token or Basic) and
    /// the request sent once more if its body can be sent again (not a reader).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Answer, SendError> {
        let replay = match &body {
            Body::Empty => Some(Body::Empty),
            Body::Bytes(bytes) => Some(Body::Bytes(bytes)),
            Body::Reader { .. } => None,
        };
        let answer = self.send_once(method, url, headers, body)?;
        if answer.status != 401 {
            return Ok(answer);
        }
        self.auth.answer(answer.header("www-authenticate")).map_err(SendError::fatal)?;
        let Some(body) = replay else { return Ok(answer) };
        let answer = self.send_once(method, url, headers, body)?;
        if answer.status == 401 {
            // Authorised as the challenge asked and still refused: these credentials (or
            // none) will not do.
            return Err(SendError::fatal(format!(
                "{} ({method} {url}: {})",
                self.auth.unauthorized(),
                answer.complaint()
            )));
        }
        Ok(answer)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Answer, SendError> {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(authorization) = self.auth.header().map_err(SendError::fatal)? {
            request = request.header("authorization", authorization);
        }
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let result = match body {
            Body::Empty if matches!(method, "GET" | "HEAD" | "DELETE") => {
                self.agent.run(request.body(SendBody::none()).map_err(|e| SendError::fatal(e.to_string()))?)
            }
            // An empty POST or PUT says so (ureq would otherwise send an empty chunked body).
            Body::Empty => {
                let request = request.header("content-length", "0");
                self.agent.run(request.body(&[][..]).map_err(|e| SendError::fatal(e.to_string()))?)
            }
            Body::Bytes(bytes) => {
                let request = request.header("content-length", bytes.len().to_string());
                self.agent.run(request.body(bytes).map_err(|e| SendError::fatal(e.to_string()))?)
            }
            Body::Reader { len, mut reader } => {
                let request = request.header("content-length", len.to_string());
                self.agent.run(
                    request.body(SendBody::from_reader(&mut reader)).map_err(|e| SendError::fatal(e.to_string()))?,
                )
            }
        };
        let mut response =
            result.map_err(|e| SendError { message: format!("{method} {url}: {e}"), transient: true })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
            .collect();
        let body = if method == "HEAD" {
            String::new()
        } else {
            response.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default()
        };
        Ok(Answer { status, headers, body })
    }

    /// `GET /v2/`: reachable, and authorised as far as the registry tells at its root.
    pub fn check(&self) -> Result<(), String> {
        let url = self.url("/v2/");
        let answer = self.send("GET", &url, &[], Body::Empty).map_err(|e| e.message)?;
        match answer.status {
            200 => Ok(()),
            // A registry may refuse its root to anonymous callers and still let the
            // repository's own requests through once they are authorised.
            401 => Ok(()),
            _ => Err(format!("GET {url}: {} (is this an OCI registry?)", answer.complaint())),
        }
    }

    /// `PUT /v2/<name>/manifests/<tag>` (retried on a 5xx or no answer); the digest the
    /// registry reports.
    pub fn put_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) -> Result<Option<String>, String> {
        let url = self.url(&format!("/v2/{}/manifests/{tag}", self.repository));
        let headers = [("content-type", media_type.to_string())];
        let mut last = String::new();
        for attempt in 1..=MAX_TRIES {
            match self.send("PUT", &url, &headers, Body::Bytes(bytes)) {
                Ok(a) if a.status == 201 || a.status == 200 => {
                    return Ok(a.header("docker-content-digest").map(str::to_string));
                }
                Ok(a) if verdict(a.status) == Verdict::Retry => last = a.complaint(),
                Ok(a) => return Err(format!("pushing the manifest: {}", a.complaint())),
                Err(e) if e.transient => last = e.message,
                Err(e) => return Err(e.message),
            }
            std::thread::sleep(backoff(attempt, None));
        }
        Err(format!("pushing the manifest: gave up after {MAX_TRIES} tries; last: {last}"))
    }
}
