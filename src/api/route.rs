//! Path shapes and how a request path is matched against one. Repository names contain
//! `/`, so a distribution path is matched from its end: the last one to three segments
//! name the endpoint and everything before them is the name.

use super::error::ApiError;
use crate::oci::name::ReferenceError;
use crate::oci::{Digest, Reference, RepositoryName};
use http::Method;

/// The path of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathShape {
    /// Exactly this path.
    Exact(&'static str),
    /// `<prefix><text><suffix>`: the text is taken as it is (it may contain `/`), and must
    /// not be empty when a suffix follows it.
    Text { prefix: &'static str, suffix: &'static str },
    /// `/v2/<name>/` and then these segments.
    Name(&'static [Segment]),
}

/// A path segment after the repository name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// This literal word.
    Lit(&'static str),
    /// A digest, percent-decoded: `400 DIGEST_INVALID` when it is not one.
    Digest,
    /// A tag or a digest, percent-decoded (see [`PathShape::matches`] for its errors).
    Reference,
    /// Any text, taken as it is (an upload session's id).
    Id,
}

/// The validated parameters of a matched path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub name: Option<RepositoryName>,
    pub reference: Option<Reference>,
    pub digest: Option<Digest>,
    /// The text of a [`PathShape::Text`] path or of a [`Segment::Id`].
    pub text: Option<String>,
}

/// A parameter the route table promised a handler but did not deliver: a bug.
fn missing(what: &str) -> ApiError {
    let message = format!("the route table gave this endpoint no {what}");
    ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, crate::oci::ErrorCode::Unsupported, message)
}

impl Params {
    pub fn name(&self) -> Result<&RepositoryName, ApiError> {
        self.name.as_ref().ok_or_else(|| missing("repository name"))
    }

    pub fn reference(&self) -> Result<&Reference, ApiError> {
        self.reference.as_ref().ok_or_else(|| missing("reference"))
    }

    pub fn digest(&self) -> Result<&Digest, ApiError> {
        self.digest.as_ref().ok_or_else(|| missing("digest"))
    }

    pub fn text(&self) -> Result<&str, ApiError> {
        self.text.as_deref().ok_or_else(|| missing("path text"))
    }
}

impl PathShape {
    /// Whether this is matched from the end of a `/v2/<name>/...` path. Such shapes are
    /// tried after every fixed one, so a fixed path is never taken for a name.
    pub fn is_name(&self) -> bool {
        matches!(self, PathShape::Name(_))
    }

    /// `None` when `path` does not have this shape. A name shape whose literal segments
    /// match claims the path: its parameter errors are final. A missing name is `404`, an
    /// invalid one `400 NAME_INVALID`, a bad digest `400 DIGEST_INVALID`. A `GET` or `HEAD`
    /// of a manifest whose reference is not a valid tag or digest asks for something that
    /// cannot exist, so it is simply not found: `404 MANIFEST_UNKNOWN` ("If the manifest is
    /// not found in the repository, the response code MUST be `404 Not Found`"; the
    /// conformance suite's `.INVALID_MANIFEST_NAME`). A `PUT` or `DELETE` of one is a `400`.
    pub fn matches(&self, method: &Method, path: &str) -> Option<Result<Params, ApiError>> {
        match *self {
            PathShape::Exact(exact) => (path == exact).then(|| Ok(Params::default())),
            PathShape::Text { prefix, suffix } => {
                let text = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
                if text.is_empty() && !suffix.is_empty() {
                    return None;
                }
                Some(Ok(Params { text: Some(text.to_owned()), ..Params::default() }))
            }
            PathShape::Name(segments) => {
                let read = *method == Method::GET || *method == Method::HEAD;
                match_name(segments, path, read)
            }
        }
    }
}

fn match_name(shape: &[Segment], path: &str, read: bool) -> Option<Result<Params, ApiError>> {
    let rest = path.strip_prefix("/v2/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (n, k) = (parts.len(), shape.len());
    if n < k {
        return None;
    }
    let tail = &parts[n - k..];
    if shape.iter().zip(tail).any(|(segment, part)| matches!(segment, Segment::Lit(word) if word != part)) {
        return None;
    }
    Some(name_params(shape, path, &parts, read))
}

fn name_params(shape: &[Segment], path: &str, parts: &[&str], read: bool) -> Result<Params, ApiError> {
    let (n, k) = (parts.len(), shape.len());
    if n <= k {
        return Err(ApiError::not_found(path));
    }
    let name = parts[..n - k].join("/");
    let name = RepositoryName::parse(&name).map_err(|e| ApiError::name_invalid(e.to_string()))?;
    let mut params = Params { name: Some(name), ..Params::default() };
    for (segment, part) in shape.iter().zip(&parts[n - k..]) {
        match segment {
            Segment::Lit(_) => {}
            Segment::Digest => params.digest = Some(parse_digest(part)?),
            Segment::Reference => params.reference = Some(parse_reference(part, read)?),
            Segment::Id => params.text = Some((*part).to_owned()),
        }
    }
    Ok(params)
}

fn parse_reference(segment: &str, read: bool) -> Result<Reference, ApiError> {
    Reference::parse(&percent_decode(segment)).map_err(|e| match e {
        _ if read => {
            let shown: String = segment.chars().take(200).collect();
            ApiError::manifest_unknown(format!("manifest {shown:?} is not known: {e}"))
        }
        ReferenceError::Digest(e) => ApiError::digest_invalid(e.to_string()),
        ReferenceError::Tag(e) => ApiError::reference_invalid(e.to_string()),
    })
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

    #[test]
    fn shapes_match_from_the_end_of_the_name() {
        const TAGS: PathShape = PathShape::Name(&[Segment::Lit("tags"), Segment::Lit("list")]);
        let params = TAGS.matches(&Method::GET, "/v2/a/tags/list/tags/list").unwrap().unwrap();
        assert_eq!(params.name.unwrap().as_str(), "a/tags/list");
        assert_eq!(TAGS.matches(&Method::GET, "/v2/a/tags/lists"), None);
        assert_eq!(TAGS.matches(&Method::GET, "/v3/a/tags/list"), None);
        assert_eq!(TAGS.matches(&Method::GET, "/v2/tags/list").unwrap().unwrap_err().status, 404);
    }

    #[test]
    fn text_shapes_take_the_text_as_it_is() {
        const ROUTING: PathShape = PathShape::Text { prefix: "/admin/replicas/", suffix: "/routing" };
        let text = |path| ROUTING.matches(&Method::GET, path).map(|p| p.unwrap().text.unwrap());
        assert_eq!(text("/admin/replicas/eu%2F/routing").as_deref(), Some("eu%2F"));
        assert_eq!(text("/admin/replicas//routing"), None);
        const ANY: PathShape = PathShape::Text { prefix: "/auth/tokens/", suffix: "" };
        assert_eq!(ANY.matches(&Method::GET, "/auth/tokens/").unwrap().unwrap().text.as_deref(), Some(""));
    }

    #[test]
    fn a_missing_parameter_is_a_server_error_not_a_panic() {
        assert_eq!(Params::default().digest().unwrap_err().status, 500);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }
}
