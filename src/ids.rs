//! Identifiers the registry makes up: the [`IdSource`] port that yields fresh unguessable
//! ids (injected, so tests are deterministic), its production [`RandomIds`], and
//! [`UploadId`], the validated id of an upload session.
//!
//! This module sits below `storage`, `registry` and `replication`, which all use upload
//! ids: storage names a session's objects by it, the registry parses it from the URL, and
//! replication pins a session to a replica by its first digit. It may call `oci` alone.

use std::fmt;

/// Fresh unguessable identifiers: upload session ids, access token ids and secrets.
///
/// Contract: every id is [`UploadId::LEN`] lowercase hex digits ([`RandomIds`] gives 128
/// random bits). Injected for deterministic tests.
pub trait IdSource {
    fn new_id(&self) -> String;
}

/// Random 128-bit hex identifiers from the platform's CSPRNG (crypto.getRandomValues on
/// Workers, the OS natively).
pub struct RandomIds;

impl IdSource for RandomIds {
    fn new_id(&self) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the platform has no random source");
        crate::oci::digest::to_hex(&bytes)
    }
}

/// The id of an upload session: exactly [`UploadId::LEN`] characters, each `0-9` or
/// `a-f` (lowercase hex), as every release has made them. It is the
/// `/v2/<name>/blobs/uploads/<id>` URL segment and names the session's storage keys, so
/// nothing else may pass for one: a segment that is not an upload id names no session
/// (`404 BLOB_UPLOAD_UNKNOWN`) and never reaches a storage key.
///
/// With replicas, the first digit is the index of the replica that holds the session
/// ([`UploadId::replica_slot`]); the other 31 digits (124 bits) stay random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

/// A string that is not an upload id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an upload id: {LEN} lowercase hex digits", LEN = UploadId::LEN)]
pub struct InvalidUploadId;

impl UploadId {
    /// How many hex digits an upload id has.
    pub const LEN: usize = 32;

    /// Parses an id as it appears in a URL or a storage key.
    pub fn parse(s: &str) -> Result<Self, InvalidUploadId> {
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if s.len() == Self::LEN && s.bytes().all(hex) {
            Ok(UploadId(s.to_owned()))
        } else {
            Err(InvalidUploadId)
        }
    }

    /// A fresh id from `source`.
    ///
    /// # Panics
    /// If `source` breaks the [`IdSource`] contract (a bug, never client input).
    pub fn fresh(source: &dyn IdSource) -> Self {
        let id = source.new_id();
        Self::parse(&id).unwrap_or_else(|_| panic!("the id source gave {id:?}, not {} lowercase hex digits", Self::LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The replica slot the first digit names (0 to 15): with replicas, the index of the
    /// replica the session lives in, pinned when it was opened.
    pub fn replica_slot(&self) -> usize {
        let first = self.0.as_bytes()[0];
        (first as char).to_digit(16).expect("upload ids are hex") as usize
    }

    /// This id with its first digit naming `replica` (an index from 0 to 15; a larger one,
    /// which no deployment declares, leaves slot 0).
    pub fn pinned_to(self, replica: usize) -> Self {
        let digit = u32::try_from(replica).ok().and_then(|r| char::from_digit(r, 16)).unwrap_or('0');
        UploadId(std::iter::once(digit).chain(self.0.chars().skip(1)).collect())
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UploadId {
    type Error = InvalidUploadId;
    fn try_from(s: String) -> Result<Self, InvalidUploadId> {
        Self::parse(&s)
    }
}

impl From<UploadId> for String {
    fn from(id: UploadId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn exactly_32_lowercase_hex_digits_are_an_upload_id() {
        assert_eq!(UploadId::parse(ID).unwrap().as_str(), ID);
        assert_eq!(UploadId::parse(&"f".repeat(32)).unwrap().to_string(), "f".repeat(32));
        let upper = ID.to_uppercase();
        let bad = [
            "",
            "nope",
            "u1",
            "..%2f..%2fstate",
            &"0".repeat(31),
            &"0".repeat(33),
            &upper,
            "0123456789abcdef0123456789abcdeg",
        ];
        for bad in bad {
            assert_eq!(UploadId::parse(bad), Err(InvalidUploadId), "{bad:?}");
        }
        let with_slash = format!("{}/", &ID[..31]);
        assert!(UploadId::parse(&with_slash).is_err(), "a '/' would reach a storage key");
        assert!(UploadId::parse(&format!("{}é", &ID[..30])).is_err(), "32 bytes, not 32 hex digits");
    }

    #[test]
    fn the_first_digit_is_the_replica_slot() {
        assert_eq!(UploadId::parse(ID).unwrap().replica_slot(), 0);
        assert_eq!(UploadId::parse(&"f".repeat(32)).unwrap().replica_slot(), 15);
        let pinned = UploadId::parse(&"f".repeat(32)).unwrap().pinned_to(2);
        assert_eq!(pinned.as_str(), format!("2{}", "f".repeat(31)));
        assert_eq!(pinned.replica_slot(), 2);
        assert_eq!(pinned.clone().pinned_to(15).as_str(), format!("f{}", "f".repeat(31)));
        assert_eq!(pinned.pinned_to(16).replica_slot(), 0, "no 17th slot");
    }

    #[test]
    fn fresh_ids_come_from_the_source() {
        struct Fixed(&'static str);
        impl IdSource for Fixed {
            fn new_id(&self) -> String {
                self.0.to_owned()
            }
        }
        assert_eq!(UploadId::fresh(&Fixed(ID)).as_str(), ID);
        let random = UploadId::fresh(&RandomIds);
        assert_ne!(random, UploadId::fresh(&RandomIds));
        let broken = std::panic::catch_unwind(|| UploadId::fresh(&Fixed("u1")));
        assert!(broken.is_err(), "a source breaking the contract is a bug, caught at once");
    }

    #[test]
    fn stored_as_a_plain_json_string_and_checked_when_read() {
        let id = UploadId::parse(ID).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{ID}\""));
        assert_eq!(serde_json::from_str::<UploadId>(&format!("\"{ID}\"")).unwrap(), id);
        assert!(serde_json::from_str::<UploadId>("\"../x\"").is_err());
    }
}
