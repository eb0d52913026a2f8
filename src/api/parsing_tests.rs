//! The route table's parsing, checked path by path: every endpoint's paths give its
//! parameters, and bad paths their specific errors. The cases are stated as the `Route`
//! values the parser gave before the table existed; [`parse_for`] reads the table and
//! names what it found that way.

use super::endpoint::find;
use super::error::ApiError;
use super::route::Params;
use super::table::sections;
use crate::auth::MemoryTokenStore;
use crate::oci::{Digest, Reference, RepositoryName};
use crate::storage::memory::MemoryBlobStore;
use crate::storage::memory_kv::MemoryMetaStore;
use http::Method;

/// An endpoint with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(RepositoryName),
    Manifest(RepositoryName, Reference),
    Blob(RepositoryName, Digest),
    UploadStart(RepositoryName),
    Upload(RepositoryName, String),
    Referrers(RepositoryName, Digest),
    Token,
    AccessTokens,
    AccessToken(String),
    Replicas,
    ReplicaRouting(String),
    Repair,
    Faults,
}

/// As for a write: a manifest reference that is neither a tag nor a digest is a `400`.
fn parse(path: &str) -> Result<Route, ApiError> {
    parse_for(&Method::PUT, path)
}

fn parse_for(method: &Method, path: &str) -> Result<Route, ApiError> {
    let table = sections::<MemoryBlobStore, MemoryMetaStore, MemoryTokenStore, super::admin::NoReplication>();
    let found = find(&table, method, path)?;
    let Params { name, reference, digest, text } = found.params;
    let route = match (found.endpoint.name, name, reference, digest, text) {
        ("base", None, None, None, None) => Route::Base,
        ("catalog", None, None, None, None) => Route::Catalog,
        ("tags", Some(n), None, None, None) => Route::Tags(n),
        ("manifest", Some(n), Some(r), None, None) => Route::Manifest(n, r),
        ("blob", Some(n), None, Some(d), None) => Route::Blob(n, d),
        ("upload start", Some(n), None, None, None) => Route::UploadStart(n),
        ("upload session", Some(n), None, None, Some(id)) => Route::Upload(n, id),
        ("referrers", Some(n), None, Some(d), None) => Route::Referrers(n, d),
        ("token", None, None, None, None) => Route::Token,
        ("access tokens", None, None, None, None) => Route::AccessTokens,
        ("access token", None, None, None, Some(id)) => Route::AccessToken(id),
        ("replicas", None, None, None, None) => Route::Replicas,
        ("replica routing", None, None, None, Some(name)) => Route::ReplicaRouting(name),
        ("repair", None, None, None, None) => Route::Repair,
        ("faults", None, None, None, None) => Route::Faults,
        other => panic!("{path} gave {other:?}"),
    };
    Ok(route)
}

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
