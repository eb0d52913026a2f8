//! An OCI image layout (`index.json`, `blobs/<alg>/<hex>`), as a directory or inside a
//! `docker save` archive of docker 25 and later. The image manifest is pushed byte for byte
//! (same digest as the source's), with its config and layers as the layout holds them.

use super::files::Files;
use super::{media, names_match, Image};
use crate::blob::{sha256_digest, Blob, BlobData};
use serde::Deserialize;
use std::collections::HashMap;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Debug, Clone)]
struct Platform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// A manifest or an index: whichever fields it has.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// The image `wanted` names (by `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name`; without one, the layout's only entry), resolved to the
/// image manifest for `platform` (`os/arch[/variant]`) when that entry is an index.
pub fn read(files: &dyn Files, wanted: Option<&str>, platform: &str) -> Result<Image, String> {
    let index: Document =
        serde_json::from_slice(&files.read_json_file("index.json")?).map_err(|e| format!("index.json: {e}"))?;
    let entries = index.manifests.unwrap_or_default();
    let entry = choose(&entries, wanted)?;
    let (descriptor, bytes, doc) = resolve(files, entry, platform)?;
    let config = doc.config.ok_or_else(|| format!("manifest {} has no config", descriptor.digest))?;
    let config = blob(files, &config, media::OCI_CONFIG)?;
    let layers = doc
        .layers
        .unwrap_or_default()
        .iter()
        .map(|l| blob(files, l, media::OCI_LAYER_TAR))
        .collect::<Result<_, _>>()?;
    let manifest_type = doc.media_type.or(descriptor.media_type).unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let name = entry.annotations.get(REF_NAME).or(entry.annotations.get(CONTAINERD_NAME)).unwrap_or(&entry.digest);
    Ok(Image { manifest: bytes, manifest_type, config, layers, describe: format!("OCI layout, image {name}") })
}

fn choose<'a>(entries: &'a [Descriptor], wanted: Option<&str>) -> Result<&'a Descriptor, String> {
    let names = |d: &Descriptor| {
        [REF_NAME, CONTAINERD_NAME].iter().filter_map(|k| d.annotations.get(*k).cloned()).collect::<Vec<_>>()
    };
    let all = || entries.iter().map(|d| names(d).join(" ")).collect::<Vec<_>>().join("; ");
    match wanted {
        Some(name) => entries
            .iter()
            .find(|d| names(d).iter().any(|n| n == name || names_match(name, n)))
            .ok_or_else(|| format!("the layout has no image {name} (it has: {})", all())),
        None => match entries {
            [one] => Ok(one),
            [] => Err("index.json lists no manifest".into()),
            many => {
                Err(format!("the layout holds {} images ({}); name one (oci:DIR:NAME or --image)", many.len(), all()))
            }
        },
    }
}

/// Reads `entry`'s manifest; an index (or docker manifest list) is followed to the child for
/// `platform`, among the children the layout holds.
fn resolve(files: &dyn Files, entry: &Descriptor, platform: &str) -> Result<(Descriptor, Vec<u8>, Document), String> {
    let mut at = entry.clone();
    for _ in 0..4 {
        let bytes = verified(files, &at)?;
        let doc: Document = serde_json::from_slice(&bytes).map_err(|e| format!("manifest {}: {e}", at.digest))?;
        let Some(children) = doc.manifests.as_ref() else { return Ok((at, bytes, doc)) };
        let held: Vec<&Descriptor> = children.iter().filter(|c| files.exists(&blob_path(&c.digest))).collect();
        let pick = held
            .iter()
            .find(|c| c.platform.as_ref().is_some_and(|p| platform_matches(p, platform)))
            .or(if held.len() == 1 { held.first() } else { None })
            .ok_or_else(|| {
                let offered: Vec<String> = held.iter().filter_map(|c| c.platform.as_ref()).map(show).collect();
                format!(
                    "index {} has no image for {platform} in this layout (it has: {}); use --platform",
                    at.digest,
                    offered.join(", ")
                )
            })?;
        at = (*pick).clone();
    }
    Err(format!("index {} nests too deeply", entry.digest))
}

fn platform_matches(p: &Platform, wanted: &str) -> bool {
    let mut parts = wanted.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    os == Some(p.os.as_str())
        && arch == Some(p.architecture.as_str())
        && variant.is_none_or(|v| p.variant.as_deref() == Some(v))
}

fn show(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
fn blob_path(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    format!("blobs/{alg}/{hex}")
}

/// A small blob (manifest, index) read and checked against its descriptor.
fn verified(files: &dyn Files, d: &Descriptor) -> Result<Vec<u8>, String> {
    let bytes = files.read_json_file(&blob_path(&d.digest))?;
    if d.digest.starts_with("sha256:") && sha256_digest(&bytes) != d.digest {
        return Err(format!("blob {} in the layout does not hash to its name", d.digest));
    }
    Ok(bytes)
}

fn blob(files: &dyn Files, d: &Descriptor, default_type: &str) -> Result<Blob, String> {
    let section = files.section(&blob_path(&d.digest))?;
    if section.len != d.size {
        return Err(format!(
            "blob {} is {} bytes in the layout but the manifest says {}",
            d.digest, section.len, d.size
        ));
    }
    let media_type = d.media_type.clone().unwrap_or_else(|| default_type.to_string());
    Ok(Blob { digest: d.digest.clone(), size: d.size, media_type, data: BlobData::File(section) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::files::{tests::tar_file, TarFiles};

    struct Layout {
        files: Vec<(String, Vec<u8>)>,
    }

    impl Layout {
        fn add(&mut self, bytes: &[u8]) -> String {
            let digest = sha256_digest(bytes);
            self.files.push((blob_path(&digest), bytes.to_vec()));
            digest
        }

        /// An image manifest over a config and one layer; (digest, size).
        fn image(&mut self, arch: &str) -> (String, usize) {
            let layer = format!("layer for {arch}");
            let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
            let (l, c) = (self.add(layer.as_bytes()), self.add(config.as_bytes()));
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{c}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{l}","size":{}}}]}}"#,
                media::OCI_MANIFEST,
                media::OCI_CONFIG,
                config.len(),
                media::OCI_LAYER_TAR,
                layer.len()
            );
            (self.add(manifest.as_bytes()), manifest.len())
        }

        fn into_tar(mut self, index: String) -> TarFiles {
            self.files.push(("index.json".into(), index.into_bytes()));
            let refs: Vec<(&str, &[u8])> = self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
            TarFiles::index(tar_file(&refs, &[])).unwrap()
        }
    }

    #[test]
    fn a_docker_25_archive_pushes_its_own_manifest_bytes() {
        let mut layout = Layout { files: vec![] };
        let (digest, size) = layout.image("amd64");
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{digest}","size":{size},"annotations":{{"{CONTAINERD_NAME}":"docker.io/library/app:1","{REF_NAME}":"1"}}}}]}}"#,
            media::OCI_MANIFEST
        );
        let files = layout.into_tar(index);
        let image = read(&files, None, "linux/amd64").unwrap();
        assert_eq!(sha256_digest(&image.manifest), digest, "manifest bytes unchanged");
        assert_eq!(image.manifest_type, media::OCI_MANIFEST);
        assert_eq!(image.layers[0].media_type, media::OCI_LAYER_TAR);
        assert_eq!(image.layers[0].size, "layer for amd64".len() as u64);
        assert!(read(&files, Some("app:1"), "linux/amd64").is_ok());
        assert!(read(&files, Some("other:1"), "linux/amd64").unwrap_err().contains("no image other:1"));
    }

    #[test]
    fn an_index_is_followed_to_the_platform_asked_for() {
        let mut layout = Layout { files: vec![] };
        let (amd, amd_size) = layout.image("amd64");
        let (arm, arm_size) = layout.image("arm64");
        let child = |d: &str, s: usize, arch: &str| {
            format!(
                r#"{{"mediaType":"{}","digest":"{d}","size":{s},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#,
                media::OCI_MANIFEST
            )
        };
        let missing = child("sha256:0000000000000000000000000000000000000000000000000000000000000000", 10, "s390x");
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{},{},{missing}]}}"#,
            media::OCI_INDEX,
            child(&amd, amd_size, "amd64"),
            child(&arm, arm_size, "arm64")
        );
        let idx_digest = layout.add(idx.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{idx_digest}","size":{}}}]}}"#,
            media::OCI_INDEX,
            idx.len()
        );
        let files = layout.into_tar(index);
        assert_eq!(sha256_digest(&read(&files, None, "linux/arm64").unwrap().manifest), arm);
        assert_eq!(sha256_digest(&read(&files, None, "linux/amd64").unwrap().manifest), amd);
        let err = read(&files, None, "linux/s390x").unwrap_err();
        assert!(err.contains("no image for linux/s390x") && err.contains("linux/arm64"), "{err}");
    }

    #[test]
    fn a_layout_that_lies_is_refused() {
        let mut layout = Layout { files: vec![] };
        let (digest, size) = layout.image("amd64");
        let wrong_size = format!(r#"{{"manifests":[{{"digest":"{digest}","size":{}}}]}}"#, size);
        layout.files.retain(|(p, b)| !(p.starts_with("blobs/") && b.starts_with(b"layer")));
        layout.files.push((blob_path(&sha256_digest(b"layer for amd64")), b"layer for amd6".to_vec()));
        let err = read(&layout.into_tar(wrong_size), None, "linux/amd64").unwrap_err();
        assert!(err.contains("but the manifest says"), "{err}");
        let empty = Layout { files: vec![] }.into_tar(r#"{"manifests":[]}"#.into());
        assert!(read(&empty, None, "linux/amd64").unwrap_err().contains("no manifest"));
    }
}
