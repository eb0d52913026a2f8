//! Parsing a pushed manifest for validation and indexing. The raw bytes stay the truth:
//! nothing here is ever re-serialised and stored.

use super::digest::Digest;
use super::media_type::{ManifestKind, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A content descriptor (image-spec descriptor.md): media type, digest and size, plus the
/// optional fields the referrers API copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<MediaType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    /// Foreign layers carry `urls`; their bytes need not be in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// What a manifest says about itself and what it references.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: MediaType,
    pub kind: ManifestKind,
    /// Blobs that must exist in the repository (config and layers of an image).
    pub blobs: Vec<Descriptor>,
    /// Manifests that must exist in the repository (children of an index).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to; it may dangle.
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<MediaType>,
    pub config_media_type: Option<MediaType>,
    pub annotations: Option<Map<String, Value>>,
}

/// Why a manifest was refused; all of these are `MANIFEST_INVALID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest must be a JSON object")]
    NotAnObject,
    #[error("manifest media type {:?} is not supported; push an OCI or Docker v2 image manifest or index", .0.as_str())]
    UnsupportedMediaType(MediaType),
    #[error("Content-Type {:?} does not match the manifest's mediaType {:?}", .header.as_str(), .body.as_str())]
    MediaTypeMismatch { header: MediaType, body: MediaType },
    #[error("manifest has no media type: set Content-Type or the mediaType field")]
    NoMediaType,
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("field {field} is invalid: {reason}")]
    Field { field: &'static str, reason: String },
}

/// Parses and validates `bytes`, given the media type the request's Content-Type names
/// (see [`MediaType::from_content_type`]), if any.
pub fn parse(bytes: &[u8], content_type: Option<&MediaType>) -> Result<ParsedManifest, ManifestError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let object = value.as_object().ok_or(ManifestError::NotAnObject)?;
    let media_type = resolve_media_type(object, content_type)?;
    let kind = media_type.manifest_kind().ok_or_else(|| ManifestError::UnsupportedMediaType(media_type.clone()))?;
    if object.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    let subject = optional_descriptor(object, "subject")?;
    let artifact_type = optional_string(object, "artifactType")?.map(MediaType::from);
    let annotations = match object.get("annotations") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err(field_error("annotations", "must be an object")),
    };
    let mut parsed = ParsedManifest {
        media_type,
        kind,
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject,
        artifact_type,
        config_media_type: None,
        annotations,
    };
    match kind {
        ManifestKind::Image => {
            let config = optional_descriptor(object, "config")?
                .ok_or_else(|| field_error("config", "is required in an image manifest"))?;
            parsed.config_media_type = Some(config.media_type.clone());
            parsed.blobs.push(config);
            let layers = descriptor_list(object, "layers")?;
            parsed.blobs.extend(layers.into_iter().filter(|l| l.urls.is_none()));
        }
        ManifestKind::Index => {
            if object.get("manifests").is_none() {
                return Err(field_error("manifests", "is required in an index"));
            }
            parsed.manifests = descriptor_list(object, "manifests")?;
        }
    }
    Ok(parsed)
}

impl ParsedManifest {
    /// The `artifactType` a referrers listing reports: "If the `artifactType` is empty or
    /// missing in the image manifest, the value of `artifactType` MUST be set to the config
    /// descriptor `mediaType` value. If the `artifactType` is empty or missing in an index,
    /// the `artifactType` MUST be omitted."
    pub fn referrer_artifact_type(&self) -> Option<MediaType> {
        match (&self.artifact_type, self.kind) {
            (Some(t), _) if !t.as_str().is_empty() => Some(t.clone()),
            (_, ManifestKind::Image) => self.config_media_type.clone(),
            (_, ManifestKind::Index) => None,
        }
    }
}

/// The manifest's media type: the Content-Type's unless that is generic (it then says
/// nothing), else the body's `mediaType`; the two must agree. "If a manifest includes a
/// `mediaType` field, clients MUST set the `Content-Type` header to the value specified by
/// the `mediaType` field." With neither, the body's shape decides.
fn resolve_media_type(
    object: &Map<String, Value>,
    content_type: Option<&MediaType>,
) -> Result<MediaType, ManifestError> {
    let body = optional_string(object, "mediaType")?.map(MediaType::from);
    let header = content_type.filter(|t| !t.is_generic()).cloned();
    match (header, body) {
        (Some(header), Some(body)) if header != body => Err(ManifestError::MediaTypeMismatch { header, body }),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) if object.contains_key("manifests") => Ok(MediaType::ImageIndex),
        (None, None) if object.contains_key("config") => Ok(MediaType::ImageManifest),
        (None, None) => Err(ManifestError::NoMediaType),
    }
}

fn field_error(field: &'static str, reason: &str) -> ManifestError {
    ManifestError::Field { field, reason: reason.to_owned() }
}

fn optional_string(object: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ManifestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field_error(field, "must be a string")),
    }
}

fn optional_descriptor(object: &Map<String, Value>, field: &'static str) -> Result<Option<Descriptor>, ManifestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| field_error(field, &e.to_string())),
    }
}

fn descriptor_list(object: &Map<String, Value>, field: &'static str) -> Result<Vec<Descriptor>, ManifestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v @ Value::Array(_)) => serde_json::from_value(v.clone()).map_err(|e| field_error(field, &e.to_string())),
        Some(_) => Err(field_error(field, "must be an array of descriptors")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const OCI_MANIFEST: Option<&MediaType> = Some(&MediaType::ImageManifest);
    const OCI_INDEX: Option<&MediaType> = Some(&MediaType::ImageIndex);

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":5}}]{extra}}}"#,
            MediaType::ImageManifest
        )
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let m = parse(image("").as_bytes(), OCI_MANIFEST).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.referrer_artifact_type().as_ref().map(MediaType::as_str),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn subject_and_artifact_type_are_read() {
        let extra = format!(
            r#","artifactType":"x/y","subject":{{"mediaType":"{}","digest":"{D2}","size":9}}"#,
            MediaType::ImageManifest
        );
        let m = parse(image(&extra).as_bytes(), None).unwrap();
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), D2);
        assert_eq!(m.referrer_artifact_type().as_ref().map(MediaType::as_str), Some("x/y"));
    }

    #[test]
    fn refuses_invalid_manifests() {
        let cases: Vec<(String, Option<&MediaType>)> = vec![
            ("not json".into(), None),
            ("[]".into(), None),
            (image(""), OCI_INDEX),
            (image("").replace("\"schemaVersion\":2", "\"schemaVersion\":1"), None),
            (image("").replace(D2, "sha256:bad"), None),
            (r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}"#.into(), None),
            (format!(r#"{{"schemaVersion":2,"mediaType":"{}"}}"#, MediaType::ImageIndex), None),
            (r#"{"schemaVersion":2}"#.into(), None),
        ];
        for (body, ct) in cases {
            assert!(parse(body.as_bytes(), ct).is_err(), "accepted {body} as {ct:?}");
        }
    }

    #[test]
    fn index_lists_children_and_omits_artifact_type() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D1}","size":7,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            MediaType::ImageIndex,
            MediaType::ImageManifest
        );
        let m = parse(body.as_bytes(), OCI_INDEX).unwrap();
        assert_eq!(m.manifests.len(), 1);
        assert_eq!(m.referrer_artifact_type(), None);
    }

    #[test]
    fn content_type_and_body_media_type_must_agree_byte_for_byte() {
        let header = |value: &str| MediaType::from_content_type(value);
        let ok = |ct: Option<MediaType>| parse(image("").as_bytes(), ct.as_ref()).map(|m| m.media_type);
        let oci = Ok(MediaType::ImageManifest);
        assert_eq!(ok(header("Application/VND.oci.image.manifest.v1+json; charset=utf-8")), oci);
        assert_eq!(ok(header("application/json")), oci);
        assert_eq!(ok(header("application/octet-stream")), oci);
        assert_eq!(ok(None), oci);
        let docker = header(MediaType::DockerManifest.as_str());
        assert_eq!(
            ok(docker).unwrap_err().to_string(),
            "Content-Type \"application/vnd.docker.distribution.manifest.v2+json\" does not match \
             the manifest's mediaType \"application/vnd.oci.image.manifest.v1+json\""
        );
        let shouted = image("").replace("application/vnd.oci.image.manifest", "Application/vnd.oci.image.manifest");
        let refused = parse(shouted.as_bytes(), OCI_MANIFEST).unwrap_err();
        assert!(matches!(refused, ManifestError::MediaTypeMismatch { .. }), "{refused:?}");
        assert_eq!(
            parse(shouted.as_bytes(), None).unwrap_err().to_string(),
            "manifest media type \"Application/vnd.oci.image.manifest.v1+json\" is not supported; \
             push an OCI or Docker v2 image manifest or index"
        );
    }

    #[test]
    fn a_body_without_media_type_takes_the_header_or_its_shape() {
        let bare = image("").replace(r#""mediaType":"application/vnd.oci.image.manifest.v1+json","#, "");
        let docker = MediaType::DockerManifest;
        assert_eq!(parse(bare.as_bytes(), Some(&docker)).unwrap().media_type, docker);
        assert_eq!(parse(bare.as_bytes(), None).unwrap().media_type, MediaType::ImageManifest);
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(parse(index.as_bytes(), Some(&MediaType::Json)).unwrap().media_type, MediaType::ImageIndex);
    }

    #[test]
    fn descriptors_serialise_back_byte_for_byte() {
        let json = format!(
            r#"{{"mediaType":"application/vnd.Example.Unknown+json","digest":"{D1}","size":3,"artifactType":"application/vnd.oci.empty.v1+json","annotations":{{"a":"b"}}}}"#
        );
        let descriptor: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(descriptor.media_type, MediaType::Other("application/vnd.Example.Unknown+json".into()));
        assert!(matches!(descriptor.artifact_type, Some(MediaType::EmptyJson)));
        assert_eq!(serde_json::to_string(&descriptor).unwrap(), json);
    }
}
