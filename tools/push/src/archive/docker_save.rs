//! `docker save`'s own format (docker 20.10 and before, and still `manifest.json` in newer
//! archives): `manifest.json` lists each image's config file and layer tars. Layers are the
//! uncompressed tars whose digests are the config's `rootfs.diff_ids`, so they are pushed as
//! they are, uncompressed, in a Docker schema 2 manifest; the config is pushed byte for byte,
//! so the image id stays the same.

use super::files::Files;
use super::{media, names_match, Image};
use crate::blob::{Blob, BlobData};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigDoc {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a str,
}

impl<'a> From<&'a Blob> for Descriptor<'a> {
    fn from(blob: &'a Blob) -> Self {
        Descriptor { media_type: &blob.media_type, size: blob.size, digest: &blob.digest }
    }
}

/// The image `wanted` names (or the archive's only image) from `manifest.json`.
pub fn read(files: &dyn Files, wanted: Option<&str>) -> Result<Image, String> {
    let raw = files.read_json_file("manifest.json")?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&raw).map_err(|e| format!("manifest.json is not a docker save manifest: {e}"))?;
    let entry = choose(&entries, wanted)?;
    let config_bytes = files.read_json_file(&entry.config)?;
    let config: ConfigDoc = serde_json::from_slice(&config_bytes)
        .map_err(|e| format!("{}: not an image config with rootfs.diff_ids: {e}", entry.config))?;
    if config.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(format!(
            "manifest.json lists {} layers but the config's rootfs.diff_ids has {}",
            entry.layers.len(),
            config.rootfs.diff_ids.len()
        ));
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        if !diff_id.starts_with("sha256:") || diff_id.len() != 71 {
            return Err(format!("the config's diff_id {diff_id:?} is not a sha256 digest"));
        }
        let section = files.section(path)?;
        layers.push(Blob {
            digest: diff_id.clone(),
            size: section.len,
            media_type: media::DOCKER_LAYER_TAR.to_string(),
            data: BlobData::File(section),
        });
    }
    let config = Blob::in_memory(media::DOCKER_CONFIG, config_bytes);
    let manifest = Manifest {
        schema_version: 2,
        media_type: media::DOCKER_MANIFEST,
        config: (&config).into(),
        layers: layers.iter().map(Descriptor::from).collect(),
    };
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let name = entry.repo_tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_else(|| entry.config.clone());
    Ok(Image {
        manifest,
        manifest_type: media::DOCKER_MANIFEST.to_string(),
        config,
        layers,
        describe: format!("docker save archive, image {name}"),
    })
}

fn choose<'a>(entries: &'a [Entry], wanted: Option<&str>) -> Result<&'a Entry, String> {
    let tags = |e: &Entry| e.repo_tags.clone().unwrap_or_default().join(", ");
    match wanted {
        Some(name) => {
            entries.iter().find(|e| e.repo_tags.iter().flatten().any(|t| names_match(name, t))).ok_or_else(|| {
                format!(
                    "the archive has no image {name} (it has: {})",
                    entries.iter().map(tags).collect::<Vec<_>>().join("; ")
                )
            })
        }
        None => match entries {
            [one] => Ok(one),
            [] => Err("manifest.json lists no image".into()),
            many => Err(format!(
                "the archive holds {} images ({}); pick one with --image NAME",
                many.len(),
                many.iter().map(tags).collect::<Vec<_>>().join("; ")
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::files::{tests::tar_file, TarFiles};
    use crate::blob::sha256_digest;

    /// An archive as docker 20.10 writes it: two layers, the second stored once and linked.
    fn archive(extra_image: bool) -> (TarFiles, String) {
        let (one, two) = (b"layer one".as_slice(), b"layer two".as_slice());
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
            sha256_digest(one),
            sha256_digest(two)
        );
        let config_name = format!("{}.json", &sha256_digest(config.as_bytes())[7..]);
        let mut manifest =
            format!(r#"[{{"Config":"{config_name}","RepoTags":["app:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}"#);
        if extra_image {
            manifest.push_str(&format!(
                r#",{{"Config":"{config_name}","RepoTags":["other:2"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}"#
            ));
        }
        manifest.push(']');
        let file = tar_file(
            &[
                ("aaa/layer.tar", one),
                ("ccc/layer.tar", two),
                (&config_name, config.as_bytes()),
                ("manifest.json", manifest.as_bytes()),
            ],
            &[("bbb/layer.tar", "../ccc/layer.tar")],
        );
        (TarFiles::index(file).unwrap(), config)
    }

    #[test]
    fn reads_a_legacy_archive_into_a_docker_manifest_with_uncompressed_layers() {
        let (files, config) = archive(false);
        let image = read(&files, None).unwrap();
        assert_eq!(image.config.digest, sha256_digest(config.as_bytes()), "config pushed as is: same image id");
        assert_eq!(image.layers.len(), 2);
        assert_eq!(image.layers[1].digest, sha256_digest(b"layer two"));
        assert_eq!(image.layers[1].size, 9);
        let mut read_back = String::new();
        std::io::Read::read_to_string(&mut image.layers[1].reader(0, 9), &mut read_back).unwrap();
        assert_eq!(read_back, "layer two", "read through the symlink, in place");
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["mediaType"], media::DOCKER_MANIFEST);
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar");
        assert_eq!(manifest["layers"][0]["size"], 9);
        assert!(image.describe.contains("app:1"));
    }

    #[test]
    fn several_images_need_a_name() {
        let (files, _) = archive(true);
        assert!(read(&files, None).unwrap_err().contains("--image"));
        assert!(read(&files, Some("other:2")).is_ok());
        assert!(read(&files, Some("docker.io/library/app:1")).is_ok());
        assert!(read(&files, Some("nope:1")).unwrap_err().contains("no image nope:1"));
    }

    #[test]
    fn inconsistent_archives_are_refused() {
        let file = tar_file(
            &[
                ("manifest.json", br#"[{"Config":"c.json","Layers":["l.tar"]}]"#),
                ("c.json", br#"{"rootfs":{"diff_ids":[]}}"#),
            ],
            &[],
        );
        assert!(read(&TarFiles::index(file).unwrap(), None).unwrap_err().contains("lists 1 layers"));
        let file = tar_file(&[("manifest.json", b"{}")], &[]);
        assert!(read(&TarFiles::index(file).unwrap(), None).unwrap_err().contains("not a docker save manifest"));
        let file = tar_file(&[("manifest.json", br#"[{"Config":"c.json","Layers":[]}]"#)], &[]);
        assert!(read(&TarFiles::index(file).unwrap(), None).unwrap_err().contains("no file c.json"));
    }
}
