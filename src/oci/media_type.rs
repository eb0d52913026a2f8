//! Media types: the ones this registry knows by name, any other kept verbatim, and the
//! media type a `Content-Type` header names.
//!
//! A [`MediaType`] is its string: converting never fails, an unknown type is kept exactly
//! as written in [`MediaType::Other`], and it serialises as the plain string, so whatever
//! is written back (a referrers index, a descriptor, a header) carries the bytes it was
//! read from. Image-spec: "Implementations storing or copying image manifests MUST NOT
//! error on encountering a `mediaType` that is unknown to the implementation."

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// The digest of the two bytes `{}`, the empty descriptor's content: "The blob digest of
/// `{}` is `sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a`."
pub const EMPTY_JSON_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Whether a manifest lists blobs (an image) or other manifests (an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// Declares [`MediaType`] from one list of `Variant => "string"`, so the enum, `as_str`
/// and the parsing can never disagree.
macro_rules! media_types {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)+) => {
        /// A media type (RFC 6838), as found in a descriptor's or manifest's `mediaType`,
        /// an `artifactType`, or a `Content-Type` header.
        ///
        /// Equality is that of the strings ([`MediaType::as_str`]), exactly as the spec's
        /// values are compared: case and every byte count.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum MediaType {
            $($(#[$doc])* $variant,)+
            /// Any media type not named above, kept byte for byte. Built by
            /// [`MediaType::from`], it never holds one of the named types.
            Other(String),
        }

        impl MediaType {
            /// Every media type this registry knows by name.
            pub const KNOWN: &'static [MediaType] = &[$(MediaType::$variant,)+];

            /// The media type as written.
            pub fn as_str(&self) -> &str {
                match self {
                    $(MediaType::$variant => $text,)+
                    MediaType::Other(text) => text,
                }
            }

            fn known(text: &str) -> Option<MediaType> {
                match text {
                    $($text => Some(MediaType::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

media_types! {
    /// "`application/vnd.oci.descriptor.v1+json`: Content Descriptor".
    Descriptor => "application/vnd.oci.descriptor.v1+json",
    /// "`application/vnd.oci.layout.header.v1+json`: OCI Layout".
    LayoutHeader => "application/vnd.oci.layout.header.v1+json",
    /// "`application/vnd.oci.image.index.v1+json`: Image Index". In an index's own
    /// `mediaType`: "When used, this field MUST contain the media type
    /// `application/vnd.oci.image.index.v1+json`."
    ImageIndex => "application/vnd.oci.image.index.v1+json",
    /// "`application/vnd.oci.image.manifest.v1+json`: Image manifest". In a manifest's own
    /// `mediaType`: "When used, this field MUST contain the media type
    /// `application/vnd.oci.image.manifest.v1+json`."
    ImageManifest => "application/vnd.oci.image.manifest.v1+json",
    /// "`application/vnd.oci.image.config.v1+json`: Image config". A manifest's `config`:
    /// "Implementations MUST support at least the following media types:
    /// `application/vnd.oci.image.config.v1+json`".
    ImageConfig => "application/vnd.oci.image.config.v1+json",
    /// "`application/vnd.oci.image.layer.v1.tar`: "Layer", as a tar archive".
    ImageLayer => "application/vnd.oci.image.layer.v1.tar",
    /// "`application/vnd.oci.image.layer.v1.tar+gzip`: "Layer", as a tar archive
    /// compressed with gzip".
    ImageLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    /// "`application/vnd.oci.image.layer.v1.tar+zstd`: "Layer", as a tar archive
    /// compressed with zstd".
    ImageLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    /// "`application/vnd.oci.image.layer.nondistributable.v1.tar`: "Layer", as a tar
    /// archive". A layer "with distribution restrictions", "**deprecated** and not
    /// recommended for future use".
    ImageLayerNondistributable => "application/vnd.oci.image.layer.nondistributable.v1.tar",
    /// "`application/vnd.oci.image.layer.nondistributable.v1.tar+gzip`: "Layer", as a tar
    /// archive with distribution restrictions compressed with gzip". Deprecated.
    ImageLayerNondistributableGzip => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    /// "`application/vnd.oci.image.layer.nondistributable.v1.tar+zstd`: "Layer", as a tar
    /// archive with distribution restrictions compressed with zstd". Deprecated.
    ImageLayerNondistributableZstd => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    /// "`application/vnd.oci.empty.v1+json`: Empty for unused descriptors". "The blob
    /// payload is the most minimal content that is still a valid JSON object: `{}`
    /// (`size` of 2)", whose digest is [`EMPTY_JSON_DIGEST`].
    EmptyJson => "application/vnd.oci.empty.v1+json",
    /// Docker's image manifest, schema 2: "Similar/related schema" to the OCI image manifest.
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
    /// Docker's manifest list: "Similar/related schema" to the OCI image index.
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
    /// Docker's image config: "Similar/related schema" to the OCI image config.
    DockerConfig => "application/vnd.docker.container.image.v1+json",
    /// Docker's gzipped layer: "Interchangeable and fully compatible" with
    /// `application/vnd.oci.image.layer.v1.tar+gzip`.
    DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    /// Plain JSON, which some clients send as a manifest's `Content-Type`; it says nothing
    /// about which manifest the body is.
    Json => "application/json",
    /// Arbitrary bytes: "consider the referenced content as arbitrary binary data (e.g.: as
    /// `application/octet-stream`)". As a manifest's `Content-Type` it says nothing.
    OctetStream => "application/octet-stream",
}

impl MediaType {
    /// The media type a `Content-Type` header value names: its essence, parameters dropped
    /// and lowercased; `None` when it names none. "The registry SHOULD ignore parameters
    /// on the `Content-Type` header."
    pub fn from_content_type(value: &str) -> Option<MediaType> {
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        (!essence.is_empty()).then(|| MediaType::from(essence))
    }

    /// Whether this is a manifest type this registry accepts, and which kind: the OCI image
    /// manifest and index, and their Docker v2 counterparts.
    pub fn manifest_kind(&self) -> Option<ManifestKind> {
        match self {
            MediaType::ImageManifest | MediaType::DockerManifest => Some(ManifestKind::Image),
            MediaType::ImageIndex | MediaType::DockerManifestList => Some(ManifestKind::Index),
            _ => None,
        }
    }

    /// An image manifest this registry accepts (OCI or Docker v2).
    pub fn is_image_manifest(&self) -> bool {
        self.manifest_kind() == Some(ManifestKind::Image)
    }

    /// An index this registry accepts (OCI image index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        self.manifest_kind() == Some(ManifestKind::Index)
    }

    /// A generic type (`application/json`, `application/octet-stream`) that names no
    /// particular format.
    pub fn is_generic(&self) -> bool {
        matches!(self, MediaType::Json | MediaType::OctetStream)
    }
}

impl From<&str> for MediaType {
    fn from(text: &str) -> Self {
        MediaType::known(text).unwrap_or_else(|| MediaType::Other(text.to_owned()))
    }
}

impl From<String> for MediaType {
    fn from(text: String) -> Self {
        MediaType::known(&text).unwrap_or(MediaType::Other(text))
    }
}

impl From<MediaType> for String {
    fn from(media_type: MediaType) -> Self {
        match media_type {
            MediaType::Other(text) => text,
            known => known.as_str().to_owned(),
        }
    }
}

/// Never fails: an unknown type is [`MediaType::Other`].
impl FromStr for MediaType {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(MediaType::from(text))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for MediaType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for MediaType {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MediaType {}

impl PartialEq<str> for MediaType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl Hash for MediaType {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Serialize for MediaType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(MediaType::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::mem::discriminant;

    #[test]
    fn every_known_type_round_trips_through_its_string() {
        let mut seen = HashSet::new();
        for known in MediaType::KNOWN {
            let text = known.as_str();
            assert!(seen.insert(text), "{text} is named twice");
            for back in [MediaType::from(text), MediaType::from(text.to_owned()), text.parse().unwrap()] {
                assert_eq!(discriminant(&back), discriminant(known), "{text} came back as {back:?}");
                assert!(!matches!(back, MediaType::Other(_)), "{text} came back as Other");
            }
            assert_eq!(known.to_string(), text);
            assert_eq!(String::from(known.clone()), text);
        }
        assert_eq!(MediaType::ImageManifest.as_str(), "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(MediaType::DockerManifestList.as_str(), "application/vnd.docker.distribution.manifest.list.v2+json");
    }

    #[test]
    fn unknown_types_are_kept_verbatim() {
        for text in [
            "application/vnd.example+type",
            "Application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
            " application/json",
            "application/vnd.docker.distribution.manifest.v1+json",
            "",
        ] {
            let parsed = MediaType::from(text);
            assert_eq!(parsed, MediaType::Other(text.to_owned()));
            assert!(matches!(&parsed, MediaType::Other(kept) if kept == text), "{text:?} became {parsed:?}");
            assert_eq!(parsed.as_str(), text);
            assert_eq!(String::from(parsed), text);
        }
    }

    #[test]
    fn equality_is_that_of_the_strings() {
        assert_eq!(MediaType::Other(MediaType::ImageIndex.as_str().to_owned()), MediaType::ImageIndex);
        assert_ne!(MediaType::from("Application/vnd.oci.image.index.v1+json"), MediaType::ImageIndex);
        assert_ne!(MediaType::ImageIndex, MediaType::DockerManifestList);
        assert!(MediaType::ImageConfig == *"application/vnd.oci.image.config.v1+json");
        let other = MediaType::from("x/y");
        assert!(other == *"x/y" && other != *"x/Y");
        let set: HashSet<MediaType> = [MediaType::EmptyJson].into();
        assert!(set.contains(&MediaType::Other("application/vnd.oci.empty.v1+json".to_owned())));
    }

    #[test]
    fn serialises_as_the_plain_string() {
        for text in ["application/vnd.oci.image.index.v1+json", "application/vnd.example.sig", ""] {
            let json = serde_json::to_string(&MediaType::from(text)).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<MediaType>(&json).unwrap().as_str(), text);
        }
        let wrong = serde_json::from_str::<MediaType>("5").unwrap_err().to_string();
        assert_eq!(wrong, serde_json::from_str::<String>("5").unwrap_err().to_string());
    }

    #[test]
    fn content_type_drops_parameters_and_case() {
        assert_eq!(MediaType::from_content_type("Application/JSON; charset=utf-8"), Some(MediaType::Json));
        assert_eq!(
            MediaType::from_content_type(" application/vnd.OCI.image.manifest.v1+json ;x=y"),
            Some(MediaType::ImageManifest)
        );
        assert_eq!(MediaType::from_content_type("text/Plain"), Some(MediaType::from("text/plain")));
        assert_eq!(MediaType::from_content_type(""), None);
        assert_eq!(MediaType::from_content_type(" ; charset=utf-8"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(MediaType::DockerManifestList.manifest_kind(), Some(ManifestKind::Index));
        assert_eq!(MediaType::ImageIndex.manifest_kind(), Some(ManifestKind::Index));
        assert_eq!(MediaType::ImageManifest.manifest_kind(), Some(ManifestKind::Image));
        assert_eq!(MediaType::DockerManifest.manifest_kind(), Some(ManifestKind::Image));
        assert_eq!(MediaType::Json.manifest_kind(), None);
        assert_eq!(MediaType::from("application/vnd.docker.distribution.manifest.v1+json").manifest_kind(), None);
        assert!(MediaType::DockerManifest.is_image_manifest() && !MediaType::DockerManifest.is_index());
        assert!(MediaType::ImageIndex.is_index() && !MediaType::ImageIndex.is_image_manifest());
        assert!(MediaType::Json.is_generic() && MediaType::OctetStream.is_generic());
        assert!(!MediaType::ImageManifest.is_generic() && !MediaType::from("text/json").is_generic());
    }
}
