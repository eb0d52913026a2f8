//! Where an image comes from: a `docker save` archive (a file, stdin, or `docker save` run
//! here for `docker-daemon:`), in either of its formats, or an OCI layout directory. A
//! stream (stdin, docker's output) cannot be read twice or out of order, so it is spooled to
//! an unnamed temporary file first; every blob is then read in place from the file.

pub mod docker_save;
pub mod files;
pub mod oci_layout;

use crate::blob::Blob;
use files::{DirFiles, Files, TarFiles};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod media {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    #[cfg(test)]
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
}

/// An image ready to push: the manifest bytes to PUT last, and the blobs it names.
#[derive(Debug)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub manifest_type: String,
    pub config: Blob,
    pub layers: Vec<Blob>,
    /// What was read, for the log: "docker save archive, image app:1".
    pub describe: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-`: a `docker save` archive on stdin.
    Stdin,
    /// A `docker save` archive file.
    Archive(PathBuf),
    /// `oci:<dir>[:<name>]`.
    Layout { dir: PathBuf, name: Option<String> },
    /// `docker-daemon:<image>`: `docker save <image>`.
    Daemon(String),
}

impl Source {
    pub fn parse(raw: &str) -> Result<Source, String> {
        if raw == "-" {
            return Ok(Source::Stdin);
        }
        if let Some(image) = raw.strip_prefix("docker-daemon:") {
            if image.is_empty() {
                return Err("docker-daemon: needs an image name, e.g. docker-daemon:app:1".into());
            }
            return Ok(Source::Daemon(image.to_string()));
        }
        if let Some(rest) = raw.strip_prefix("oci:") {
            let (dir, name) = match rest.rsplit_once(':') {
                Some((dir, name)) if !name.contains('/') && !dir.is_empty() => (dir, Some(name.to_string())),
                _ => (rest, None),
            };
            return Ok(Source::Layout { dir: PathBuf::from(dir), name });
        }
        if raw.is_empty() {
            return Err("the source is empty: give -, a file, oci:DIR or docker-daemon:IMAGE".into());
        }
        Ok(Source::Archive(PathBuf::from(raw)))
    }
}

/// Which image of a source to push.
#[derive(Debug, Clone)]
pub struct Select {
    /// `--image`: a name among several in one archive or layout.
    pub image: Option<String>,
    /// `--platform` (`os/arch[/variant]`), for a source whose entry is an index.
    pub platform: String,
}

/// This machine's platform in OCI terms (`linux/amd64`, `linux/arm64`, ...).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Opens `source` and reads the image `select` names. `spool_dir` is where a stream is
/// spooled (the system's temporary directory when `None`); `spooled(n)` is told the bytes
/// spooled so far.
pub fn open(
    source: &Source,
    select: &Select,
    spool_dir: Option<&Path>,
    spooled: &dyn Fn(u64),
) -> Result<Image, String> {
    match source {
        Source::Layout { dir, name } => {
            let files = DirFiles::new(dir)?;
            oci_layout::read(&files, name.as_deref().or(select.image.as_deref()), &select.platform)
        }
        Source::Archive(path) => {
            let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            from_archive(file, select)
        }
        Source::Stdin => from_archive(spool(&mut io::stdin().lock(), spool_dir, spooled)?, select),
        Source::Daemon(image) => {
            let docker = std::env::var("DOCKER").unwrap_or_else(|_| "docker".into());
            let mut child = Command::new(&docker)
                .args(["save", image])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("running {docker} save {image}: {e}"))?;
            let spooled_file = spool(child.stdout.as_mut().expect("piped"), spool_dir, spooled);
            let output = child.wait_with_output().map_err(|e| format!("{docker} save {image}: {e}"))?;
            if !output.status.success() {
                let said = String::from_utf8_lossy(&output.stderr);
                return Err(format!("{docker} save {image} failed ({}): {}", output.status, said.trim()));
            }
            from_archive(spooled_file?, select)
        }
    }
}

fn from_archive(file: File, select: &Select) -> Result<Image, String> {
    let files = TarFiles::index(file)?;
    if files.exists("index.json") {
        oci_layout::read(&files, select.image.as_deref(), &select.platform)
    } else if files.exists("manifest.json") {
        docker_save::read(&files, select.image.as_deref())
    } else {
        Err("the archive has neither index.json nor manifest.json: not a docker save archive".into())
    }
}

/// Copies a stream into an unnamed temporary file (gone when closed) and rewinds it.
fn spool(input: &mut dyn Read, dir: Option<&Path>, spooled: &dyn Fn(u64)) -> Result<File, String> {
    let tmp = match dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    };
    let mut file = tmp.map_err(|e| format!("creating a temporary file to spool the archive to: {e}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the archive: {e}")),
        };
        file.write_all(&buf[..n]).map_err(|e| format!("spooling the archive (disk full? see --tmp-dir): {e}"))?;
        total += n as u64;
        spooled(total);
    }
    if total == 0 {
        return Err("the archive is empty (nothing on the input)".into());
    }
    io::Seek::rewind(&mut file).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Whether two image names are the same once Docker Hub's defaults are filled in
/// (`app:1` = `docker.io/library/app:1`; no tag means `latest`).
pub fn names_match(a: &str, b: &str) -> bool {
    fn full(name: &str) -> String {
        let name = name.strip_prefix("docker.io/").unwrap_or(name);
        let name = name.strip_prefix("library/").unwrap_or(name);
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || last.contains('@') {
            name.to_string()
        } else {
            format!("{name}:latest")
        }
    }
    full(a) == full(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(Source::parse("-").unwrap(), Source::Stdin);
        assert_eq!(Source::parse("app.tar").unwrap(), Source::Archive("app.tar".into()));
        assert_eq!(Source::parse("docker-daemon:app:1").unwrap(), Source::Daemon("app:1".into()));
        assert!(Source::parse("docker-daemon:").is_err());
        assert!(Source::parse("").is_err());
        assert_eq!(Source::parse("oci:./img").unwrap(), Source::Layout { dir: "./img".into(), name: None });
        assert_eq!(
            Source::parse("oci:/x/img:1.0").unwrap(),
            Source::Layout { dir: "/x/img".into(), name: Some("1.0".into()) }
        );
    }

    #[test]
    fn names_match_with_docker_hub_defaults() {
        assert!(names_match("app:1", "docker.io/library/app:1"));
        assert!(names_match("app", "app:latest"));
        assert!(names_match("127.0.0.1:5000/team/app:2", "127.0.0.1:5000/team/app:2"));
        assert!(!names_match("app:1", "app:2"));
        assert!(!names_match("127.0.0.1:5000/app", "127.0.0.1:5000/app:1"));
    }

    #[test]
    fn a_stream_is_spooled_and_an_empty_one_refused() {
        let mut file = spool(&mut &b"abc"[..], None, &|_| {}).unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "abc");
        assert!(spool(&mut &b""[..], None, &|_| {}).unwrap_err().contains("empty"));
    }
}
