//! Blob bytes as the tool reads them: a section of a file (a layer inside a spooled archive,
//! or a file of an OCI layout), read in place with positioned reads so that several uploads
//! share one file, or small bytes in memory (a config, a manifest). Nothing big is ever held
//! in memory.

use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// A piece of a file: `len` bytes from `offset`.
#[derive(Debug, Clone)]
pub struct Section {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl Section {
    /// Reads the whole section into memory; for JSON documents, refused over `limit` bytes.
    pub fn read_all(&self, limit: u64, what: &str) -> Result<Vec<u8>, String> {
        if self.len > limit {
            return Err(format!(
                "{what} is {} bytes, more than the {limit} bytes a JSON document may have here",
                self.len
            ));
        }
        let mut buf = vec![0; self.len as usize];
        self.file.read_exact_at(&mut buf, self.offset).map_err(|e| format!("reading {what}: {e}"))?;
        Ok(buf)
    }
}

#[derive(Debug, Clone)]
pub enum BlobData {
    File(Section),
    Memory(Arc<Vec<u8>>),
}

/// One blob to push: its digest, size and media type (for the manifest), and its bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub data: BlobData,
}

impl Blob {
    pub fn in_memory(media_type: &str, bytes: Vec<u8>) -> Self {
        Blob {
            digest: sha256_digest(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
            data: BlobData::Memory(Arc::new(bytes)),
        }
    }

    /// A reader of bytes `from..to` of the blob.
    pub fn reader(&self, from: u64, to: u64) -> BlobReader {
        let to = to.min(self.size);
        BlobReader { data: self.data.clone(), at: from.min(to), end: to }
    }

    /// A short form of the digest for progress lines: `sha256:0123456789ab`.
    pub fn short(&self) -> &str {
        let end = self.digest.find(':').map_or(12, |i| i + 13).min(self.digest.len());
        &self.digest[..end]
    }
}

/// Reads a range of a blob with positioned reads (no shared file cursor).
pub struct BlobReader {
    data: BlobData,
    at: u64,
    end: u64,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.at).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = match &self.data {
            BlobData::Memory(bytes) => {
                let start = self.at as usize;
                buf[..want].copy_from_slice(&bytes[start..start + want]);
                want
            }
            BlobData::File(section) => {
                let n = section.file.read_at(&mut buf[..want], section.offset + self.at)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended before the blob did"));
                }
                n
            }
        };
        self.at += n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn readers_read_their_range_of_memory_and_file_blobs() {
        let mem = Blob::in_memory("x", b"0123456789".to_vec());
        let mut out = String::new();
        mem.reader(3, 7).read_to_string(&mut out).unwrap();
        assert_eq!(out, "3456");
        assert_eq!(mem.short(), &mem.digest[..19]);

        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"headerABCDEFGHIJtrailer").unwrap();
        file.rewind().unwrap();
        let section = Section { file: Arc::new(file), offset: 6, len: 10 };
        let blob =
            Blob { digest: "sha256:x".into(), size: 10, media_type: "x".into(), data: BlobData::File(section.clone()) };
        let mut out = String::new();
        blob.reader(2, 100).read_to_string(&mut out).unwrap();
        assert_eq!(out, "CDEFGHIJ", "clamped to the blob's end");
        assert_eq!(section.read_all(10, "doc").unwrap(), b"ABCDEFGHIJ");
        assert!(section.read_all(9, "doc").unwrap_err().contains("more than"));
    }
}
