//! Manifest media types this registry accepts, and Content-Type handling.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty descriptor's media type (image-spec: "application/vnd.oci.empty.v1+json").
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the two bytes `{}`, the empty descriptor's content.
pub const EMPTY_JSON_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Whether a manifest lists blobs (an image) or other manifests (an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// The kind of a supported manifest media type, or `None` if unsupported.
pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

/// The media type of a Content-Type header value, without parameters, lowercased.
/// "The registry SHOULD ignore parameters on the `Content-Type` header."
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essence_drops_parameters() {
        assert_eq!(essence("Application/JSON; charset=utf-8"), "application/json");
        assert_eq!(essence(""), "");
    }

    #[test]
    fn kinds() {
        assert_eq!(manifest_kind(DOCKER_MANIFEST_LIST), Some(ManifestKind::Index));
        assert_eq!(manifest_kind(OCI_MANIFEST), Some(ManifestKind::Image));
        assert_eq!(manifest_kind("application/json"), None);
    }
}
