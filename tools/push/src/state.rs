//! Upload sessions remembered across runs, so that a push that was stopped (killed, a lost
//! connection, a machine that slept) continues where the registry says it stands instead of
//! from byte 0. One small JSON file per blob and destination, written when the session is
//! opened and removed when the blob is complete.

use crate::blob::sha256_digest;
use crate::chunks::ChunkLimits;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The session's URL (its Location).
    pub location: String,
    /// What the session's first answer said about chunk sizes.
    pub limits: ChunkLimits,
}

/// Where sessions are kept; `None` keeps nothing (the directory could not be made).
pub struct State {
    dir: Option<PathBuf>,
    /// `<registry>/<repository>`: sessions belong to one destination.
    destination: String,
}

impl State {
    /// `dir`, or `$XDG_STATE_HOME/edge-push`, or `~/.local/state/edge-push`.
    pub fn open(dir: Option<&Path>, destination: &str) -> (State, Option<String>) {
        let dir = dir.map(Path::to_path_buf).or_else(default_dir);
        let Some(dir) = dir else {
            return (
                State { dir: None, destination: destination.into() },
                Some("no HOME: uploads cannot be resumed by a later run".into()),
            );
        };
        match std::fs::create_dir_all(&dir) {
            Ok(()) => (State { dir: Some(dir), destination: destination.into() }, None),
            Err(e) => (
                State { dir: None, destination: destination.into() },
                Some(format!("{}: {e}; uploads cannot be resumed by a later run", dir.display())),
            ),
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let key = sha256_digest(format!("{}@{digest}", self.destination).as_bytes());
        Some(self.dir.as_ref()?.join(format!("{}.json", &key[7..39])))
    }

    pub fn load(&self, digest: &str) -> Option<Saved> {
        let text = std::fs::read_to_string(self.path(digest)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Best effort: a session that cannot be saved is only not resumable by a later run.
    pub fn save(&self, digest: &str, saved: &Saved) {
        let Some(path) = self.path(digest) else { return };
        let tmp = path.with_extension("tmp");
        if let Ok(json) = serde_json::to_vec(saved) {
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    pub fn forget(&self, digest: &str) {
        if let Some(path) = self.path(digest) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
    })?;
    Some(base.join("edge-push"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_per_destination_and_blob() {
        let dir = tempfile::tempdir().unwrap();
        let (state, warning) = State::open(Some(dir.path()), "reg.io/team/app");
        assert!(warning.is_none());
        let saved = Saved {
            location: "/v2/team/app/blobs/uploads/abc".into(),
            limits: ChunkLimits { min: Some(8), max: Some(100) },
        };
        assert_eq!(state.load("sha256:1"), None);
        state.save("sha256:1", &saved);
        assert_eq!(state.load("sha256:1"), Some(saved.clone()));
        let (other, _) = State::open(Some(dir.path()), "reg.io/team/other");
        assert_eq!(other.load("sha256:1"), None, "another repository's session is not this one's");
        state.forget("sha256:1");
        assert_eq!(state.load("sha256:1"), None);
    }

    #[test]
    fn an_unusable_directory_keeps_nothing_and_says_so() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let (state, warning) = State::open(Some(&file.path().join("sub")), "reg.io/a");
        assert!(warning.unwrap().contains("cannot be resumed"));
        state.save("sha256:1", &Saved { location: "x".into(), limits: ChunkLimits::default() });
        assert_eq!(state.load("sha256:1"), None);
    }
}
