//! Route parsing. Repository names contain `/`, so a path is matched from its end: the
//! last one to three segments name the endpoint and everything before them is the name.

use super::error::ApiError;
use crate::oci::name::ReferenceError;
use crate::oci::{Digest, Reference, RepositoryName};
use http::Method;

/// An endpoint of the distribution API, with its validated path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// end-1 `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// end-8 `/v2/<name>/tags/list`
    Tags(RepositoryName),
    /// end-3, end-7, end-9 `/v2/<name>/manifests/<reference>`
    Manifest(RepositoryName, Reference),
    /// end-2, end-10 `/v2/<name>/blobs/<digest>`
    Blob(RepositoryName, Digest),
    /// end-4, end-11 `/v2/<name>/blobs/uploads/`
    UploadStart(RepositoryName),
    /// end-5, end-6, end-13, end-14 `/v2/<name>/blobs/uploads/<id>`
    Upload(RepositoryName, String),
    /// end-12 `/v2/<name>/referrers/<digest>`
    Referrers(RepositoryName, Digest),
    /// `/token`: the Docker token endpoint.
    Token,
    /// `/auth/tokens`: list and create access tokens (admins).
    AccessTokens,
    /// `/auth/tokens/<id>`: revoke an access token (admins).
    AccessToken(String),
    /// `/admin/replicas`: the replication status report (admins).
    Replicas,
    /// `/admin/replicas/<name>/routing`: the routing switch of one replica (admins).
    ReplicaRouting(String),
    /// `/admin/repair`: run the replication repair now (admins).
    Repair,
    /// `/admin/faults`: the fault-injection plan, when the test hooks are on (admins).
    Faults,
}

impl Route {
    /// Methods each endpoint answers; anything else is `405 UNSUPPORTED`.
    pub fn allowed_methods(&self) -> &'static [Method] {
        match self {
            Route::Base => &[Method::GET, Method::HEAD],
            Route::Catalog | Route::Tags(_) | Route::Referrers(..) => &[Method::GET],
            Route::Manifest(..) => &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE],
            Route::Blob(..) => &[Method::GET, Method::HEAD, Method::DELETE],
            Route::UploadStart(_) => &[Method::POST],
            Route::Upload(..) => &[Method::GET, Method::PATCH, Method::PUT, Method::DELETE],
            Route::Token | Route::AccessTokens => &[Method::GET, Method::POST],
            Route::AccessToken(_) => &[Method::DELETE],
            Route::Replicas => &[Method::GET],
            Route::ReplicaRouting(_) | Route::Faults => &[Method::GET, Method::PUT],
            Route::Repair => &[Method::POST],
        }
    }

    /// Whether this is one of the replication admin endpoints.
    pub fn is_admin(&self) -> bool {
        matches!(self, Route::Replicas | Route::ReplicaRouting(_) | Route::Repair | Route::Faults)
    }
}

/// Parses a request path (without query) into a route, as for a write: a manifest
/// reference that is neither a valid tag nor a valid digest is a `400`.
pub fn parse(path: &str) -> Result<Route, ApiError> {
    parse_path(path, false)
}

/// Parses the path of a request made with `method`. A `GET` or `HEAD` of a manifest whose
/// reference is not a valid tag or digest asks for something that cannot exist, so it is
/// simply not found: `404 MANIFEST_UNKNOWN` ("If the manifest is not found in the
/// repository, the response code MUST be `404 Not Found`"; the conformance suite's
/// `.INVALID_MANIFEST_NAME`). A `PUT` or `DELETE` of one stays a `400`.
pub fn parse_for(method: &Method, path: &str) -> Result<Route, ApiError> {
    parse_path(path, *method == Method::GET || *method == Method::HEAD)
}

fn parse_path(path: &str, read: bool) -> Result<Route, ApiError> {
    let rest = match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        "/token" => return Ok(Route::Token),
        "/auth/tokens" => return Ok(Route::AccessTokens),
        "/admin/replicas" => return Ok(Route::Replicas),
        "/admin/repair" => return Ok(Route::Repair),
        "/admin/faults" => return Ok(Route::Faults),
        p if p.starts_with("/admin/replicas/") => {
            let name = p["/admin/replicas/".len()..].strip_suffix("/routing").filter(|n| !n.is_empty());
            return name.map(|n| Route::ReplicaRouting(n.to_owned())).ok_or_else(|| ApiError::not_found(path));
        }
        p if p.starts_with("/auth/tokens/") => {
            return Ok(Route::AccessToken(p["/auth/tokens/".len()..].to_owned()));
        }
        p => p.strip_prefix("/v2/").ok_or_else(|| ApiError::not_found(path))?,
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let tail = |k: usize| segments.get(n.wrapping_sub(k)).copied();
    let name_before = |k: usize| -> Result<RepositoryName, ApiError> {
        if n <= k {
            return Err(ApiError::not_found(path));
        }
        let name = segments[..n - k].join("/");
        RepositoryName::parse(&name).map_err(|e| ApiError::name_invalid(e.to_string()))
    };
    match (tail(3), tail(2), tail(1)) {
        (Some("blobs"), Some("uploads"), Some("")) => Ok(Route::UploadStart(name_before(3)?)),
        (Some("blobs"), Some("uploads"), Some(id)) => Ok(Route::Upload(name_before(3)?, id.to_owned())),
        (_, Some("blobs"), Some("uploads")) => Ok(Route::UploadStart(name_before(2)?)),
        (_, Some("tags"), Some("list")) => Ok(Route::Tags(name_before(2)?)),
        (_, Some("manifests"), Some(reference)) => {
            let name = name_before(2)?;
            let reference = Reference::parse(&percent_decode(reference)).map_err(|e| match e {
                _ if read => {
                    let shown: String = reference.chars().take(200).collect();
                    ApiError::manifest_unknown(format!("manifest {shown:?} is not known: {e}"))
                }
                ReferenceError::Digest(e) => ApiError::digest_invalid(e.to_string()),
                ReferenceError::Tag(e) => ApiError::reference_invalid(e.to_string()),
            })?;
            Ok(Route::Manifest(name, reference))
        }
        (_, Some("blobs"), Some(digest)) => Ok(Route::Blob(name_before(2)?, parse_digest(digest)?)),
        (_, Some("referrers"), Some(digest)) => Ok(Route::Referrers(name_before(2)?, parse_digest(digest)?)),
        _ => Err(ApiError::not_found(path)),
    }
}

fn parse_digest(segment: &str) -> Result<Digest, ApiError> {
    percent_decode(segment).parse().map_err(|e: crate::oci::DigestError| ApiError::digest_invalid(e.to_string()))
}

/// Decodes `%XX` escapes; invalid escapes and non-UTF-8 results are kept literally.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn every_endpoint_parses() {
        let d: Digest = D.parse().unwrap();
        let cases: Vec<(String, Route)> = vec![
            ("/v2/".into(), Route::Base),
            ("/v2".into(), Route::Base),
            ("/v2/_catalog".into(), Route::Catalog),
            ("/v2/a/b/tags/list".into(), Route::Tags(name("a/b"))),
            ("/v2/a/manifests/latest".into(), Route::Manifest(name("a"), Reference::parse("latest").unwrap())),
            (format!("/v2/a/b/c/manifests/{D}"), Route::Manifest(name("a/b/c"), Reference::Digest(d.clone()))),
            (
                format!("/v2/a/manifests/{}", D.replace(':', "%3A")),
                Route::Manifest(name("a"), Reference::Digest(d.clone())),
            ),
            (format!("/v2/a/blobs/{D}"), Route::Blob(name("a"), d.clone())),
            ("/v2/a/blobs/uploads/".into(), Route::UploadStart(name("a"))),
            ("/v2/a/blobs/uploads".into(), Route::UploadStart(name("a"))),
            ("/v2/a/blobs/uploads/abc".into(), Route::Upload(name("a"), "abc".into())),
            (format!("/v2/a/referrers/{D}"), Route::Referrers(name("a"), d.clone())),
            ("/token".into(), Route::Token),
            ("/auth/tokens".into(), Route::AccessTokens),
            ("/auth/tokens/ab12".into(), Route::AccessToken("ab12".into())),
            ("/admin/replicas".into(), Route::Replicas),
            ("/admin/replicas/eu/routing".into(), Route::ReplicaRouting("eu".into())),
            ("/admin/repair".into(), Route::Repair),
            ("/admin/faults".into(), Route::Faults),
            // Names may contain endpoint words as components.
            ("/v2/blobs/manifests/tags/list".into(), Route::Tags(name("blobs/manifests"))),
            ("/v2/x/blobs/blobs/uploads/".into(), Route::UploadStart(name("x/blobs"))),
        ];
        for (path, want) in cases {
            assert_eq!(parse(&path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn bad_paths_get_specific_errors() {
        use crate::oci::ErrorCode::*;
        let cases = [
            ("/v1/", Unsupported),
            ("/v2/tags/list", Unsupported),
            ("/v2/A/tags/list", NameInvalid),
            ("/v2/a//b/tags/list", NameInvalid),
            ("/v2/a%2fb/tags/list", NameInvalid),
            ("/v2/a/manifests/bad:tag", DigestInvalid),
            ("/v2/a/manifests/-x", ManifestInvalid),
            ("/v2/a/blobs/sha256:xyz", DigestInvalid),
            ("/v2/a/referrers/nope", DigestInvalid),
            ("/v2/a/unknown/x", Unsupported),
            ("/admin/replicas/routing", Unsupported),
            ("/admin/replicas//routing", Unsupported),
            ("/admin/replicas/eu", Unsupported),
        ];
        for (path, code) in cases {
            assert_eq!(parse(path).unwrap_err().code, code, "{path}");
        }
    }

    #[test]
    fn a_reference_that_cannot_exist_is_not_found_on_reads_and_invalid_on_writes() {
        use crate::oci::ErrorCode::*;
        for reference in [".INVALID_MANIFEST_NAME", "-x", "sha256:123", "bad:tag"] {
            let path = format!("/v2/a/manifests/{reference}");
            for method in [Method::GET, Method::HEAD] {
                let e = parse_for(&method, &path).unwrap_err();
                assert_eq!((e.status.as_u16(), e.code), (404, ManifestUnknown), "{method} {path}");
            }
            for method in [Method::PUT, Method::DELETE] {
                let e = parse_for(&method, &path).unwrap_err();
                assert_eq!(e.status.as_u16(), 400, "{method} {path}");
                assert!(matches!(e.code, ManifestInvalid | DigestInvalid), "{method} {path}");
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}
