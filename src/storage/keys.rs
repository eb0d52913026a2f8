//! Every storage key the registry uses, built in this one module. Tests pin their exact
//! form: changing one is a data migration.
//!
//! Repository name components never start with `_` (see `oci::name`), so the `_tags`,
//! `_blobs`, `_manifests` and `_referrers` segments cannot collide with a nested name.

use crate::oci::{Digest, RepositoryName, Tag};

/// R2: the bytes of a verified blob, shared by every repository (global dedup). Written
/// only after the bytes were verified to hash to the digest. Either holds the bytes, or is
/// an empty pointer whose metadata names the assembled multipart object.
pub fn blob(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// R2: the object generation `generation` of an upload session assembles into (its
/// multipart upload, or its first chunk stored natively); only reachable through a blob
/// pointer. Named per generation, so a writer that lost the session can never touch an
/// object that another generation published.
pub fn assembled_blob(upload_id: &str, generation: u64) -> String {
    format!("blobs/multipart/{upload_id}/{generation}")
}

/// R2: where sessions opened before generations existed assemble (read, never written).
pub fn legacy_assembled_blob(upload_id: &str) -> String {
    format!("blobs/multipart/{upload_id}")
}

/// R2: the state of an upload session (JSON), strongly consistent so any isolate can
/// continue the session.
pub fn upload_state(upload_id: &str) -> String {
    format!("uploads/{upload_id}/state")
}

/// R2: prefix of all upload session objects.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// The upload id of a session's state key, `None` for any other key.
pub fn upload_id_of_state(key: &str) -> Option<&str> {
    key.strip_prefix(UPLOADS_PREFIX)?.strip_suffix("/state").filter(|id| !id.contains('/'))
}

/// R2: bytes received but not yet cut into a full multipart part, as generation
/// `generation` of the session left them.
pub fn upload_tail(upload_id: &str, generation: u64) -> String {
    format!("uploads/{upload_id}/tail/{generation}")
}

/// R2: the tail of a session opened before generations existed (read, never written).
pub fn legacy_upload_tail(upload_id: &str) -> String {
    format!("uploads/{upload_id}/tail")
}

/// R2: prefix of every object of one upload session (state and tails).
pub fn upload_prefix(upload_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/")
}

/// R2: manifest bytes exactly as pushed, by digest (global, like blobs).
pub fn manifest(digest: &Digest) -> String {
    format!("manifests/{}/{}", digest.algorithm().as_str(), digest.hex())
}

fn repository(repo: &RepositoryName) -> String {
    format!("repositories/{}", repo.as_str())
}

/// R2: marks that `repo` may serve the blob `digest`.
pub fn repository_blob(repo: &RepositoryName, digest: &Digest) -> String {
    format!("{}/_blobs/{}/{}", repository(repo), digest.algorithm().as_str(), digest.hex())
}

/// R2: marks that `repo` holds the manifest `digest`; the body is the media type.
pub fn repository_manifest(repo: &RepositoryName, digest: &Digest) -> String {
    format!("{}/_manifests/{}/{}", repository(repo), digest.algorithm().as_str(), digest.hex())
}

/// R2: prefix of all tags of `repo`; listing it yields tags in ASCII order.
pub fn tags_prefix(repo: &RepositoryName) -> String {
    format!("{}/_tags/", repository(repo))
}

/// R2: a tag; body and metadata `digest` name the manifest it points to.
pub fn tag(repo: &RepositoryName, tag: &Tag) -> String {
    format!("{}{}", tags_prefix(repo), tag.as_str())
}

/// R2: prefix of the referrers of `subject` in `repo`.
pub fn referrers_prefix(repo: &RepositoryName, subject: &Digest) -> String {
    format!("{}/_referrers/{}/{}/", repository(repo), subject.algorithm().as_str(), subject.hex())
}

/// R2: one referrer of `subject`; the body is the descriptor the referrers API lists.
pub fn referrer(repo: &RepositoryName, subject: &Digest, referrer: &Digest) -> String {
    format!("{}{}/{}", referrers_prefix(repo, subject), referrer.algorithm().as_str(), referrer.hex())
}

/// R2: prefix of the catalog, one marker per repository.
pub const CATALOG_PREFIX: &str = "catalog/";

/// R2: marks that `repo` exists (has had content pushed).
pub fn catalog_entry(repo: &RepositoryName) -> String {
    format!("{CATALOG_PREFIX}{}", repo.as_str())
}

/// R2: prefix of the access tokens.
pub const ACCESS_TOKENS_PREFIX: &str = "auth/tokens/";

/// R2: an access token's record (its grants, expiry and the SHA-256 of its secret).
pub fn access_token(id: &str) -> String {
    format!("{ACCESS_TOKENS_PREFIX}{id}")
}

/// Cache API: the URL a verified blob is cached under. Blobs never change, so a cached
/// copy is always right; who may read it is checked before the cache is consulted.
pub fn cache_name(digest: &Digest) -> String {
    format!("https://edge-registry.cache/blobs/{digest}")
}

/// KV: manifest bytes by digest, with the media type as metadata. Immutable, so an
/// eventually consistent read is never wrong.
pub fn kv_manifest(digest: &Digest) -> String {
    format!("manifest/{digest}")
}

/// R2 metadata on a blob pointer naming the assembled object that holds its bytes.
pub const POINTER_TARGET: &str = "assembled";
/// R2 metadata on a blob pointer holding the blob's size.
pub const POINTER_SIZE: &str = "size";

/// R2 metadata on an upload session's state: when it was last written (ms since the
/// epoch), so that the expiry job finds idle sessions from a listing alone.
pub const UPLOAD_ACTIVE_AT: &str = "active-at";

/// R2 metadata stamped on every replicated write: when it was written (ms since the
/// epoch), so that replication never overwrites a newer copy with an older one.
pub const WRITTEN_AT: &str = "written-at";

/// The upload id inside a session-scoped key (`uploads/<id>/...` or the object a
/// multipart upload assembles into); `None` for any other key.
pub fn session_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(UPLOADS_PREFIX).or_else(|| key.strip_prefix("blobs/multipart/"))?;
    rest.split('/').next().filter(|id| !id.is_empty())
}

/// R2: prefix of the replication bookkeeping, never itself replicated.
pub const REPLICATION_PREFIX: &str = "replication/";

/// R2: prefix of the pending-replication markers kept in the replica that took a write.
pub const PENDING_PREFIX: &str = "replication/pending/";

/// R2: marks that `key` still has to reach the replica `target`; kept in the source
/// replica until the copy is verified. Keys may be 1,024 bytes long, so the marker is
/// named by the key's SHA-256 and carries the key in its metadata.
pub fn pending_marker(target: &str, key: &str) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(key.as_bytes());
    format!("{PENDING_PREFIX}{target}/{}", crate::oci::digest::to_hex(&hash))
}

/// R2: prefix of the deletion records of replicated keys.
pub const TOMBSTONES_PREFIX: &str = "replication/tombstones/";

/// R2: records when `key` was deleted, so that replication never brings it back with an
/// older copy; named by the key's SHA-256, carrying the key and the time in its metadata.
pub fn tombstone(key: &str) -> String {
    use sha2::Digest as _;
    format!("{TOMBSTONES_PREFIX}{}", crate::oci::digest::to_hex(&sha2::Sha256::digest(key.as_bytes())))
}

/// R2, in the home replica's bucket only: prefix of the operator's controls, changed by
/// compare-and-swap (`onlyIf`) and never replicated.
pub const CONTROL_PREFIX: &str = "replication/control/";

/// R2 (home bucket): the routing switch, the replicas taken out of client routing (JSON).
pub fn routing_switch() -> String {
    format!("{CONTROL_PREFIX}routing")
}

/// R2 (home bucket): the fault-injection plan, read only when the test hooks are on (JSON).
pub fn fault_plan() -> String {
    format!("{CONTROL_PREFIX}faults")
}

/// KV: where the routing switch lived before it moved to the home bucket (adopted from
/// here once, when the bucket holds none), and now a copy written after each change, read
/// only while the home bucket cannot be.
pub const KV_ROUTING: &str = "replication/routing";

/// KV: where the fault plan lived before it moved to the home bucket (adopted from here
/// once), and now a copy written after each change.
pub const KV_FAULTS: &str = "replication/faults";

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Digest {
        format!("sha256:{}", "ab".repeat(32)).parse().unwrap()
    }

    #[test]
    fn key_formats_are_pinned() {
        let repo = RepositoryName::parse("team/app").unwrap();
        let hex = "ab".repeat(32);
        assert_eq!(blob(&d()), format!("blobs/sha256/{hex}"));
        assert_eq!(assembled_blob("u1", 3), "blobs/multipart/u1/3");
        assert_eq!(legacy_assembled_blob("u1"), "blobs/multipart/u1");
        assert_eq!(legacy_upload_tail("u1"), "uploads/u1/tail");
        assert_eq!(upload_prefix("u1"), "uploads/u1/");
        assert_eq!(session_of(&legacy_assembled_blob("u1")), Some("u1"));
        assert_eq!(session_of(&upload_tail("u1", 2)), Some("u1"));
        assert_eq!(upload_state("u1"), "uploads/u1/state");
        assert_eq!(upload_tail("u1", 2), "uploads/u1/tail/2");
        assert_eq!(upload_id_of_state(&upload_state("u1")), Some("u1"));
        assert_eq!(upload_id_of_state(&upload_tail("u1", 1)), None);
        assert_eq!(manifest(&d()), format!("manifests/sha256/{hex}"));
        assert_eq!(repository_blob(&repo, &d()), format!("repositories/team/app/_blobs/sha256/{hex}"));
        assert_eq!(repository_manifest(&repo, &d()), format!("repositories/team/app/_manifests/sha256/{hex}"));
        assert_eq!(tag(&repo, &Tag::parse("v1").unwrap()), "repositories/team/app/_tags/v1");
        assert_eq!(referrer(&repo, &d(), &d()), format!("repositories/team/app/_referrers/sha256/{hex}/sha256/{hex}"));
        assert_eq!(catalog_entry(&repo), "catalog/team/app");
        assert_eq!(access_token("ab12"), "auth/tokens/ab12");
        assert_eq!(kv_manifest(&d()), format!("manifest/sha256:{hex}"));
        assert_eq!(cache_name(&d()), format!("https://edge-registry.cache/blobs/sha256:{hex}"));
        assert_eq!(session_of("uploads/u1/state"), Some("u1"));
        assert_eq!(session_of(&assembled_blob("u1", 1)), Some("u1"));
        assert_eq!(session_of(&blob(&d())), None);
        assert_eq!(
            pending_marker("eu", "catalog/x"),
            "replication/pending/eu/".to_owned()
                + &crate::oci::digest::to_hex(&{
                    use sha2::Digest as _;
                    sha2::Sha256::digest(b"catalog/x")
                })
        );
        assert_eq!(
            (UPLOAD_ACTIVE_AT, POINTER_TARGET, POINTER_SIZE, WRITTEN_AT),
            ("active-at", "assembled", "size", "written-at")
        );
        assert_eq!((KV_ROUTING, KV_FAULTS), ("replication/routing", "replication/faults"));
        assert_eq!(routing_switch(), "replication/control/routing");
        assert_eq!(fault_plan(), "replication/control/faults");
        assert!(routing_switch().starts_with(REPLICATION_PREFIX), "the controls are never replicated");
        assert!(tombstone("catalog/x").starts_with("replication/tombstones/") && tombstone("a") != tombstone("b"));
    }

    #[test]
    fn longest_keys_fit_the_limits() {
        let repo = RepositoryName::parse(&"a".repeat(255)).unwrap();
        let big: Digest = format!("sha512:{}", "f".repeat(128)).parse().unwrap();
        assert!(referrer(&repo, &big, &big).len() <= super::super::limits::R2_MAX_KEY_BYTES);
        assert!(kv_manifest(&big).len() <= super::super::limits::KV_MAX_KEY_BYTES);
        let long_tag = Tag::parse(&"t".repeat(128)).unwrap();
        assert!(tag(&repo, &long_tag).len() <= super::super::limits::R2_MAX_KEY_BYTES);
    }
}
