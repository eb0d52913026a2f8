//! Every storage key the registry uses, built (and, where a key is read back from a
//! listing, taken apart) in this one module; the metadata stored beside the objects is in
//! [`fields`](super::fields). Tests pin their exact form: replicas and deployments of older
//! releases read what is written today, so changing one is a data migration.
//!
//! Repository name components never start with `_` (see `oci::name`), so the `_tags`,
//! `_blobs`, `_manifests` and `_referrers` segments cannot collide with a nested name.
//! Session keys are built from an [`UploadId`] only, so no other string reaches them.

use crate::ids::UploadId;
use crate::oci::{Digest, RepositoryName, Tag};

mod lifecycle;
mod upstream;
pub use lifecycle::*;
pub use upstream::*;

/// R2: the bytes of a verified blob, shared by every repository (global dedup). Written
/// only after the bytes were verified to hash to the digest. Either holds the bytes, or is
/// an empty pointer whose metadata names the assembled multipart object.
pub fn blob(digest: &Digest) -> String {
    format!("{BLOBS_PREFIX}{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// R2: prefix of the blobs and of the objects upload sessions assemble into.
const BLOBS_PREFIX: &str = "blobs/";

/// R2: prefix of the objects upload sessions assemble into.
pub const ASSEMBLED_PREFIX: &str = "blobs/multipart/";

/// The digest a blob key names; `None` for any other key.
pub fn blob_digest_of(key: &str) -> Option<Digest> {
    digest_after(key, BLOBS_PREFIX)
}

/// The digest a manifest key names; `None` for any other key.
pub fn manifest_digest_of(key: &str) -> Option<Digest> {
    digest_after(key, MANIFESTS_PREFIX)
}

/// The digest in `<prefix><algorithm>/<hex>`.
fn digest_after(key: &str, prefix: &str) -> Option<Digest> {
    let (algorithm, hex) = key.strip_prefix(prefix)?.split_once('/')?;
    format!("{algorithm}:{hex}").parse().ok()
}

/// R2: the prefixes of the content-addressed keys (blobs and manifests of each digest
/// algorithm), never deleted by the registry: a key under one that is present in any
/// replica belongs in every replica.
pub const CONTENT_PREFIXES: [&str; 3] = ["blobs/sha256/", "blobs/sha512/", "manifests/"];

/// R2: the object generation `generation` of an upload session assembles into (its
/// multipart upload, or its first chunk stored natively); only reachable through a blob
/// pointer. Named per generation, so a writer that lost the session can never touch an
/// object that another generation published.
pub fn assembled_blob(upload_id: &UploadId, generation: u64) -> String {
    format!("{ASSEMBLED_PREFIX}{upload_id}/{generation}")
}

/// R2: where sessions opened before generations existed assemble (read, never written).
pub fn legacy_assembled_blob(upload_id: &UploadId) -> String {
    format!("{ASSEMBLED_PREFIX}{upload_id}")
}

/// R2: the state of an upload session (JSON), strongly consistent so any isolate can
/// continue the session.
pub fn upload_state(upload_id: &UploadId) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/state")
}

/// R2: prefix of all upload session objects.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// The upload id of a session's state key, `None` for any other key (and for a key under
/// the prefix that no upload id names: no release writes one).
pub fn upload_id_of_state(key: &str) -> Option<UploadId> {
    UploadId::parse(key.strip_prefix(UPLOADS_PREFIX)?.strip_suffix("/state")?).ok()
}

/// R2: bytes received but not yet cut into a full multipart part, as generation
/// `generation` of the session left them.
pub fn upload_tail(upload_id: &UploadId, generation: u64) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/tail/{generation}")
}

/// R2: the tail of a session opened before generations existed (read, never written).
pub fn legacy_upload_tail(upload_id: &UploadId) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/tail")
}

/// R2: prefix of every object of one upload session (state and tails).
pub fn upload_prefix(upload_id: &UploadId) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/")
}

/// R2: manifest bytes exactly as pushed, by digest (global, like blobs).
pub fn manifest(digest: &Digest) -> String {
    format!("{MANIFESTS_PREFIX}{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// R2: prefix of the manifests' bytes.
const MANIFESTS_PREFIX: &str = "manifests/";

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

/// The name of the metadata field that makes a blob key a pointer,
/// [`fields::POINTER_TARGET`](super::fields::POINTER_TARGET), which defines it; kept here,
/// where it was first published, for code that looks for the field by name.
pub const POINTER_TARGET: &str = super::fields::POINTER_TARGET.name();

/// The first segment of a session-scoped key (`uploads/<id>/...` or the object a session
/// assembles into, `blobs/multipart/<id>...`), as stored; `None` for any other key.
fn session_segment(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(UPLOADS_PREFIX).or_else(|| key.strip_prefix(ASSEMBLED_PREFIX))?;
    rest.split('/').next().filter(|id| !id.is_empty())
}

/// Whether `key` belongs to one upload session (its state, tails, or the object it
/// assembles into): such keys live in the session's replica alone.
pub fn is_session_scoped(key: &str) -> bool {
    session_segment(key).is_some()
}

/// The upload id of a session-scoped key; `None` for any other key, and for a
/// session-scoped key no upload id names (no release writes one).
pub fn session_of(key: &str) -> Option<UploadId> {
    UploadId::parse(session_segment(key)?).ok()
}

/// R2: prefix of the replication bookkeeping, never itself replicated.
pub const REPLICATION_PREFIX: &str = "replication/";

/// R2: prefix of the pending-replication markers kept in the replica that took a write.
pub const PENDING_PREFIX: &str = "replication/pending/";

/// The replica (by name) a pending marker's key says the change is for; `None` for any
/// other key.
pub fn pending_target_of(marker: &str) -> Option<&str> {
    marker.strip_prefix(PENDING_PREFIX)?.split('/').next()
}

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

/// R2: prefix of every key of `repo` itself (tags, links, referrers) and of no nested
/// repository's: name components never start with `_`.
pub fn repository_own_prefix(repo: &RepositoryName) -> String {
    format!("{}/_", repository(repo))
}

/// R2: prefix of a repository's blob links, listed by the collector to remove links to
/// blobs it deleted.
pub fn repository_blobs_prefix(repo: &RepositoryName) -> String {
    format!("{}/_blobs/", repository(repo))
}

/// R2: prefix of a repository's manifest links, listed by the collector's mark.
pub fn repository_manifests_prefix(repo: &RepositoryName) -> String {
    format!("{}/_manifests/", repository(repo))
}

/// R2: prefix of every referrer entry of a repository, read by retention to learn which
/// manifests refer to which.
pub fn repository_referrers_prefix(repo: &RepositoryName) -> String {
    format!("{}/_referrers/", repository(repo))
}

/// The subject and the referrer a referrer entry ([`referrer`]) names; `None` for any
/// other key.
pub fn referrer_pair_of(key: &str) -> Option<(Digest, Digest)> {
    let (_, tail) = key.strip_prefix("repositories/")?.rsplit_once("/_referrers/")?;
    let parts: Vec<&str> = tail.split('/').collect();
    let [subject_algorithm, subject_hex, algorithm, hex] = parts[..] else { return None };
    let subject = format!("{subject_algorithm}:{subject_hex}").parse().ok()?;
    Some((subject, format!("{algorithm}:{hex}").parse().ok()?))
}

/// The digest a repository's blob or manifest link names; `None` for any other key.
pub fn linked_digest_of(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix("repositories/")?;
    let (_, tail) = rest.rsplit_once("/_blobs/").or_else(|| rest.rsplit_once("/_manifests/"))?;
    let (algorithm, hex) = tail.split_once('/')?;
    format!("{algorithm}:{hex}").parse().ok()
}

/// The repository a catalog entry names; `None` for any other key.
pub fn repository_of_catalog_entry(key: &str) -> Option<RepositoryName> {
    RepositoryName::parse(key.strip_prefix(CATALOG_PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Digest {
        format!("sha256:{}", "ab".repeat(32)).parse().unwrap()
    }

    /// An upload id (32 lowercase hex digits) written out where keys embed it.
    const U: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f809";

    fn u() -> UploadId {
        UploadId::parse(U).unwrap()
    }

    /// Replicas and deployments of older releases read these keys: changing one breaks
    /// them and needs a data migration. Do not edit this test to make a rename pass.
    #[test]
    fn key_formats_are_pinned() {
        let repo = RepositoryName::parse("team/app").unwrap();
        let hex = "ab".repeat(32);
        assert_eq!(blob(&d()), format!("blobs/sha256/{hex}"));
        assert_eq!(assembled_blob(&u(), 3), format!("blobs/multipart/{U}/3"));
        assert_eq!(legacy_assembled_blob(&u()), format!("blobs/multipart/{U}"));
        assert_eq!(legacy_upload_tail(&u()), format!("uploads/{U}/tail"));
        assert_eq!(upload_prefix(&u()), format!("uploads/{U}/"));
        assert_eq!(repository_referrers_prefix(&repo), "repositories/team/app/_referrers/");
        let subject: Digest = format!("sha256:{}", "cd".repeat(32)).parse().unwrap();
        assert_eq!(referrer_pair_of(&referrer(&repo, &subject, &d())), Some((subject, d())));
        assert_eq!(referrer_pair_of(&tag(&repo, &Tag::parse("t").unwrap())), None);
        assert_eq!(session_of(&legacy_assembled_blob(&u())), Some(u()));
        assert_eq!(session_of(&upload_tail(&u(), 2)), Some(u()));
        assert_eq!(upload_state(&u()), format!("uploads/{U}/state"));
        assert_eq!(upload_tail(&u(), 2), format!("uploads/{U}/tail/2"));
        assert_eq!(upload_id_of_state(&upload_state(&u())), Some(u()));
        assert_eq!(upload_id_of_state(&upload_tail(&u(), 1)), None);
        assert_eq!(manifest(&d()), format!("manifests/sha256/{hex}"));
        assert_eq!(repository_blob(&repo, &d()), format!("repositories/team/app/_blobs/sha256/{hex}"));
        assert_eq!(repository_manifest(&repo, &d()), format!("repositories/team/app/_manifests/sha256/{hex}"));
        assert_eq!(tag(&repo, &Tag::parse("v1").unwrap()), "repositories/team/app/_tags/v1");
        assert_eq!(tags_prefix(&repo), "repositories/team/app/_tags/");
        assert_eq!(referrer(&repo, &d(), &d()), format!("repositories/team/app/_referrers/sha256/{hex}/sha256/{hex}"));
        assert_eq!(referrers_prefix(&repo, &d()), format!("repositories/team/app/_referrers/sha256/{hex}/"));
        assert_eq!(catalog_entry(&repo), "catalog/team/app");
        assert_eq!((CATALOG_PREFIX, UPLOADS_PREFIX, ACCESS_TOKENS_PREFIX), ("catalog/", "uploads/", "auth/tokens/"));
        assert_eq!(access_token("ab12"), "auth/tokens/ab12");
        assert_eq!(kv_manifest(&d()), format!("manifest/sha256:{hex}"));
        assert_eq!(cache_name(&d()), format!("https://edge-registry.cache/blobs/sha256:{hex}"));
        assert_eq!(session_of(&format!("uploads/{U}/state")), Some(u()));
        assert_eq!(session_of(&assembled_blob(&u(), 1)), Some(u()));
        assert_eq!(session_of(&blob(&d())), None);
        assert_eq!(
            pending_marker("eu", "catalog/x"),
            "replication/pending/eu/".to_owned()
                + &crate::oci::digest::to_hex(&{
                    use sha2::Digest as _;
                    sha2::Sha256::digest(b"catalog/x")
                })
        );
        assert_eq!(pending_target_of(&pending_marker("eu", "catalog/x")), Some("eu"));
        assert_eq!(pending_target_of("catalog/x"), None);
        assert_eq!((KV_ROUTING, KV_FAULTS), ("replication/routing", "replication/faults"));
        assert_eq!(routing_switch(), "replication/control/routing");
        assert_eq!(fault_plan(), "replication/control/faults");
        assert!(routing_switch().starts_with(REPLICATION_PREFIX), "the controls are never replicated");
        assert_eq!(
            tombstone("catalog/x"),
            "replication/tombstones/".to_owned()
                + &crate::oci::digest::to_hex(&{
                    use sha2::Digest as _;
                    sha2::Sha256::digest(b"catalog/x")
                })
        );
        assert!(tombstone("catalog/x").starts_with("replication/tombstones/") && tombstone("a") != tombstone("b"));
        let content = blob(&d());
        assert_eq!(content_state(&content), format!("gc/state/blobs/sha256/{hex}"));
        assert_eq!(content_of_state(&content_state(&content)), Some(content.as_str()));
        assert_eq!(gc_job(), "gc/job");
        assert_eq!(gc_run_prefix(17), "gc/runs/00000000000000000017/");
        assert_eq!(gc_live(17, &content), format!("gc/runs/00000000000000000017/live/blobs/sha256/{hex}"));
        assert_eq!(gc_dead(17, &content), format!("gc/runs/00000000000000000017/dead/blobs/sha256/{hex}"));
        assert_eq!(content_of_mark(17, "live", &gc_live(17, &content)), Some(content.as_str()));
        assert_eq!(content_of_mark(17, "dead", &gc_live(17, &content)), None);
        assert_eq!(content_of_mark(18, "live", &gc_live(17, &content)), None);
        assert_eq!(gc_report(17), "gc/reports/00000000000000000017");
        assert_eq!(repository_blobs_prefix(&repo), "repositories/team/app/_blobs/");
        assert_eq!(repository_own_prefix(&repo), "repositories/team/app/_");
        assert_eq!(repository_manifests_prefix(&repo), "repositories/team/app/_manifests/");
        assert_eq!(linked_digest_of(&repository_blob(&repo, &d())), Some(d()));
        assert_eq!(linked_digest_of(&repository_manifest(&repo, &d())), Some(d()));
        assert_eq!(linked_digest_of(&tag(&repo, &Tag::parse("v1").unwrap())), None);
        assert_eq!(repository_of_catalog_entry(&catalog_entry(&repo)), Some(repo.clone()));
        assert!(!CONTENT_PREFIXES.iter().any(|p| GC_PREFIX.starts_with(p)));
        assert_eq!(repository_deletion(&repo), "deletions/repositories/team/app");
        assert_eq!(pending_deletion(17, &repo), "deletions/pending/00000000000000000017/team/app");
        assert_eq!(pending_deletion_of(&pending_deletion(17, &repo)), Some((17, repo.clone())));
        assert_eq!(pending_deletion_of(&repository_deletion(&repo)), None);
        assert!(!CONTENT_PREFIXES.iter().any(|p| DELETIONS_PREFIX.starts_with(p)));
        assert_eq!((USAGE_PREFIX, USAGE_RUNS_PREFIX), ("usage/", "usage/runs/"));
        assert_eq!((usage_job(), usage_report()), ("usage/job".to_owned(), "usage/report".to_owned()));
        assert_eq!(usage_entries_prefix(17), "usage/runs/00000000000000000017/repos/");
        assert_eq!(usage_entry(17, &repo), "usage/runs/00000000000000000017/repos/team/app");
        assert_eq!(repository_of_usage_entry(17, &usage_entry(17, &repo)), Some(repo.clone()));
        assert_eq!(repository_of_usage_entry(18, &usage_entry(17, &repo)), None);
        assert_eq!(usage_run_of(&usage_entry(17, &repo)), Some(17));
        assert_eq!(usage_run_of(&catalog_entry(&repo)), None);
        assert!(!CONTENT_PREFIXES.iter().any(|p| USAGE_PREFIX.starts_with(p)));
    }

    #[test]
    fn content_keys_give_back_their_digest() {
        let big: Digest = format!("sha512:{}", "f".repeat(128)).parse().unwrap();
        for digest in [d(), big] {
            assert_eq!(blob_digest_of(&blob(&digest)), Some(digest.clone()));
            assert_eq!(manifest_digest_of(&manifest(&digest)), Some(digest.clone()));
            assert_eq!(blob_digest_of(&manifest(&digest)), None);
            assert!(CONTENT_PREFIXES.iter().any(|p| blob(&digest).starts_with(p)));
            assert!(CONTENT_PREFIXES.iter().any(|p| manifest(&digest).starts_with(p)));
        }
        assert_eq!(CONTENT_PREFIXES, ["blobs/sha256/", "blobs/sha512/", "manifests/"]);
        assert_eq!(blob_digest_of(&assembled_blob(&u(), 1)), None, "an assembled object names no digest");
        assert!(!CONTENT_PREFIXES.iter().any(|p| assembled_blob(&u(), 1).starts_with(p)));
    }

    #[test]
    fn session_scoped_keys_are_recognised_whatever_their_segment() {
        for key in [upload_state(&u()), upload_tail(&u(), 1), legacy_assembled_blob(&u()), assembled_blob(&u(), 2)] {
            assert!(is_session_scoped(&key), "{key}");
        }
        // No release writes these, but they are a session's all the same: never replicated.
        assert!(is_session_scoped("uploads/u1/state") && session_of("uploads/u1/state").is_none());
        assert!(is_session_scoped("blobs/multipart/u1"));
        for key in [
            blob(&d()),
            manifest(&d()),
            "uploads/".to_owned(),
            "blobs/multipart/".to_owned(),
            catalog_entry(&RepositoryName::parse("a").unwrap()),
        ] {
            assert!(!is_session_scoped(&key), "{key}");
        }
        assert_eq!(upload_id_of_state("uploads/../state"), None);
        assert_eq!(upload_id_of_state(&format!("uploads/{U}/x/state")), None);
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
