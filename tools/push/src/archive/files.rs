//! The files of an image on disk, by their path inside the archive or layout: a tar file
//! indexed once (each entry's data offset and size, symlinks and hard links followed, as
//! `docker save` writes them for shared layers), or an OCI layout directory.

use crate::blob::Section;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The biggest JSON document (manifest, index, config) the tool reads into memory.
pub const MAX_JSON: u64 = 64 * 1024 * 1024;

pub trait Files {
    /// The bytes of the file at `path` (relative, `/`-separated), in place.
    fn section(&self, path: &str) -> Result<Section, String>;
    fn exists(&self, path: &str) -> bool;

    /// A small file's bytes (JSON documents).
    fn read_json_file(&self, path: &str) -> Result<Vec<u8>, String> {
        self.section(path)?.read_all(MAX_JSON, path)
    }
}

/// A tar archive's regular files by path, read in place from the archive file.
pub struct TarFiles {
    file: Arc<File>,
    entries: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl TarFiles {
    /// Reads every entry header of `file` (skipping over the data), so the archive is read
    /// once here and then only where a blob is uploaded from.
    pub fn index(file: File) -> Result<Self, String> {
        let mut entries = HashMap::new();
        let mut links = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            let iter = archive.entries_with_seek().map_err(|e| format!("not a tar archive: {e}"))?;
            for entry in iter {
                let entry = entry.map_err(|e| format!("not a readable tar archive (docker save writes one): {e}"))?;
                let raw = entry.path().map_err(|e| format!("a tar entry's name: {e}"))?;
                let path = normalize(&raw.to_string_lossy());
                let kind = entry.header().entry_type();
                if kind.is_file() || kind == tar::EntryType::Continuous {
                    entries.insert(path, (entry.raw_file_position(), entry.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry.link_name().ok().flatten().map(|t| t.to_string_lossy().into_owned());
                    let Some(target) = target else { continue };
                    let resolved = if kind.is_symlink() && !target.starts_with('/') {
                        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                        normalize(&format!("{dir}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    links.insert(path, resolved);
                }
            }
        }
        Ok(TarFiles { file: Arc::new(file), entries, links })
    }

    fn resolve<'a>(&'a self, path: &'a str) -> Option<&'a (u64, u64)> {
        let mut at = path;
        for _ in 0..16 {
            if let Some(found) = self.entries.get(at) {
                return Some(found);
            }
            at = self.links.get(at)?;
        }
        None
    }
}

impl Files for TarFiles {
    fn section(&self, path: &str) -> Result<Section, String> {
        let &(offset, len) = self.resolve(&normalize(path)).ok_or_else(|| format!("the archive has no file {path}"))?;
        Ok(Section { file: self.file.clone(), offset, len })
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(&normalize(path)).is_some()
    }
}

/// An OCI image layout directory.
pub struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    pub fn new(root: &Path) -> Result<Self, String> {
        if !root.join("index.json").is_file() {
            return Err(format!("{} is not an OCI image layout (no index.json)", root.display()));
        }
        Ok(DirFiles { root: root.to_path_buf() })
    }

    fn path(&self, path: &str) -> Result<PathBuf, String> {
        let clean = normalize(path);
        if clean.split('/').any(|c| c == "..") {
            return Err(format!("{path} points outside the layout"));
        }
        Ok(self.root.join(clean))
    }
}

impl Files for DirFiles {
    fn section(&self, path: &str) -> Result<Section, String> {
        let full = self.path(path)?;
        let file = File::open(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        let len = file.metadata().map_err(|e| format!("{}: {e}", full.display()))?.len();
        Ok(Section { file: Arc::new(file), offset: 0, len })
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).is_ok_and(|p| p.is_file())
    }
}

/// `./a//b/../c` -> `a/c`: the form entries are looked up by.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// A tar file with these (path, bytes) entries and (path, target) symlinks.
    pub fn tar_file(files: &[(&str, &[u8])], symlinks: &[(&str, &str)]) -> File {
        let mut builder = tar::Builder::new(tempfile::tempfile().unwrap());
        for (path, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        for (path, target) in symlinks {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        let mut file = builder.into_inner().unwrap();
        file.flush().unwrap();
        file.rewind().unwrap();
        file
    }

    #[test]
    fn tar_entries_are_found_in_place_and_links_followed() {
        let long = format!("{}/layer.tar", "d".repeat(150));
        let file = tar_file(
            &[("manifest.json", b"[]"), ("abc/layer.tar", b"layer bytes"), (&long, b"long name")],
            &[("def/layer.tar", "../abc/layer.tar"), ("loop/a", "../loop/a")],
        );
        let files = TarFiles::index(file).unwrap();
        assert_eq!(files.read_json_file("manifest.json").unwrap(), b"[]");
        assert_eq!(files.read_json_file("./def/layer.tar").unwrap(), b"layer bytes", "symlink");
        assert_eq!(files.read_json_file(&long).unwrap(), b"long name", "GNU long name");
        assert!(files.exists("abc/layer.tar") && !files.exists("nope"));
        assert!(files.section("loop/a").unwrap_err().contains("no file"), "a link loop is not found");
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 1024]).unwrap();
        file.rewind().unwrap();
        assert!(TarFiles::index(file).is_err());
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("./a//b/../c"), "a/c");
        assert_eq!(normalize("blobs/sha256/x"), "blobs/sha256/x");
        assert_eq!(normalize("../x"), "../x");
    }
}
