//! Every custom-metadata field the registry stores beside an R2 object (R2
//! `customMetadata`), defined in this one module with what it holds, its format, and who
//! writes and reads it. Keys are built in [`keys`](super::keys).
//!
//! A field is typed by its format: a [`TextField`] holds a string as written, a
//! [`NumberField`] a decimal `u64` (a size in bytes, or a time in milliseconds since the
//! Unix epoch), so that the format is parsed in one place.
//!
//! Replicas and deployments of older releases read what is written today: the tests pin
//! every name, and changing one needs a data migration.
//!
//! KV (the [`MetaStore`](super::MetaStore)) holds one metadata string per entry, not named
//! fields: beside [`keys::kv_manifest`](super::keys::kv_manifest) it is the manifest's
//! media type as pushed; the routing switch's and fault plan's copies carry none.

use super::Metadata;

/// A metadata field holding text, stored as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextField(&'static str);

impl TextField {
    /// The field's name in the object's metadata.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The field's value, `None` when the object has no such field.
    pub fn get(self, metadata: &Metadata) -> Option<&str> {
        metadata.get(self.0).map(String::as_str)
    }

    /// The field holding `value`, to build a [`Metadata`] from.
    pub fn entry(self, value: impl Into<String>) -> (String, String) {
        (self.0.to_owned(), value.into())
    }
}

/// A metadata field holding a non-negative integer in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberField(&'static str);

impl NumberField {
    /// The field's name in the object's metadata.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The field's value, `None` when the object has no such field or it is not a number.
    pub fn get(self, metadata: &Metadata) -> Option<u64> {
        metadata.get(self.0).and_then(|v| v.parse::<u64>().ok())
    }

    /// The field holding `value`, to build a [`Metadata`] from.
    pub fn entry(self, value: u64) -> (String, String) {
        (self.0.to_owned(), value.to_string())
    }

    /// Sets the field to `value`, replacing any earlier value.
    pub fn set(self, metadata: &mut Metadata, value: u64) {
        metadata.insert(self.0.to_owned(), value.to_string());
    }
}

/// On a blob pointer (an empty object under [`keys::blob`](super::keys::blob)): the key of
/// the assembled object that holds the blob's bytes. Written by the registry when a
/// multipart or native upload completes; read by blob reads, and by replication, which
/// copies those bytes with the pointer and keeps the pointer beside them.
pub const POINTER_TARGET: TextField = TextField("assembled");

/// On a blob pointer: the blob's size in bytes. Written with [`POINTER_TARGET`]; read by
/// blob reads (a pointer without a readable size is served as the empty object it is).
pub const POINTER_SIZE: NumberField = NumberField("size");

/// On an upload session's state ([`keys::upload_state`](super::keys::upload_state)): when
/// the session was last written (ms since the epoch). Stamped by every write of the
/// state; read by the expiry job, which finds idle sessions from a listing alone (a state
/// without it counts as idle since the epoch).
pub const UPLOAD_ACTIVE_AT: NumberField = NumberField("active-at");

/// On a tag ([`keys::tag`](super::keys::tag)): the digest (`algorithm:hex`) of the
/// manifest it points to, as its body also holds. Written by manifest pushes; read when a
/// tag is resolved, and when a manifest's delete finds the tags pointing at it.
pub const TAG_DIGEST: TextField = TextField("digest");

/// On a tag ([`keys::tag`](super::keys::tag)) and on a repository's link to a manifest
/// ([`keys::repository_manifest`](super::keys::repository_manifest)): when it was pushed
/// (ms since the epoch, the registry's clock). Stamped by every manifest push that writes
/// them (a re-push of a manifest stamps its link again; an immutable tag keeps its first
/// stamp, as it is never rewritten); read by the collector (a referrer whose subject is gone is removed only once its link is
/// older than the grace period) and by retention ("the N most recently pushed tags",
/// "untagged manifests older than D days") from listings alone. An object written before
/// the field existed has none: a reader takes its `written-at` or counts it as pushed at
/// the epoch.
pub const PUSHED_AT: NumberField = NumberField("pushed-at");

/// On a manifest's bytes ([`keys::manifest`](super::keys::manifest)) and on a repository's
/// link to it ([`keys::repository_manifest`](super::keys::repository_manifest)): the media
/// type it was pushed with. Written by manifest pushes; read by manifest reads and
/// deletes (a link without it serves an empty media type).
pub const MANIFEST_MEDIA_TYPE: TextField = TextField("media-type");

/// On a referrer ([`keys::referrer`](super::keys::referrer)): the descriptor (JSON) the
/// referrers API lists, as its body also holds, so that one listing answers the API.
/// Written by manifest pushes when it fits R2's metadata limit; read by the referrers
/// API, which falls back to the body.
pub const REFERRER_DESCRIPTOR: TextField = TextField("descriptor");

/// On every write to a replicated key: when it was written (ms since the epoch). Stamped
/// by the replicated store; read by replication and merged listings, which never replace
/// a copy with an older one (an unstamped copy counts as written at the epoch).
pub const WRITTEN_AT: NumberField = NumberField("written-at");

/// On a pending-replication marker ([`keys::pending_marker`](super::keys::pending_marker)):
/// the replicated key (the marker is named by its hash). Written by replication when a
/// change is published or re-sent; read by the repair job, which re-sends lost messages.
pub const MARKER_KEY: TextField = TextField("key");

/// On a pending marker: the change, `put` or `delete` (the lowercase name of the change
/// kind, as in queue messages).
pub const MARKER_KIND: TextField = TextField("kind");

/// On a pending marker: when the change was first enqueued (ms since the epoch). Also
/// tells a marker's message from a later change's (the consumer removes the marker only
/// if it is still its own).
pub const MARKER_ENQUEUED_AT: NumberField = NumberField("enqueued-at");

/// On a pending marker: when its message was last sent (ms since the epoch); a marker
/// without it was last sent when enqueued.
pub const MARKER_SENT_AT: NumberField = NumberField("sent-at");

/// On a deletion record ([`keys::tombstone`](super::keys::tombstone)): the key deleted
/// (the record is named by its hash). Written by replication when it applies a delete.
pub const TOMBSTONE_KEY: TextField = TextField("key");

/// On a deletion record: when the key was deleted (ms since the epoch). Read by
/// replication, which never writes back a copy older than the delete, and by the repair
/// job, which removes old records (one without it counts as deleted at the epoch).
pub const TOMBSTONE_DELETED_AT: NumberField = NumberField("deleted-at");

/// On the collector's state of a content key
/// ([`keys::content_state`](super::keys::content_state)): `condemned`, `rescued` or `dead`
/// (see `storage::content_state`). Written by the collector (condemned, dead) and by any
/// push that relies on the content (rescued); read by both.
pub const GC_STATE: TextField = TextField("gc-state");

/// On a condemned state: when the collector condemned the content (ms since the epoch);
/// it may delete the content only once a later run's mark started a grace period after.
pub const GC_CONDEMNED_AT: NumberField = NumberField("condemned-at");

/// On a retiring marker that stands in for a tag, a repository's link to a manifest or a
/// referrer entry while retention deletes it (see `storage::retiring`): when the marker was
/// written (ms since the epoch). Written by retention; read by pushes (which wait for a
/// fresh marker and replace a stale one) and by every reader, to which a marker is absent.
pub const RETIRING_AT: NumberField = NumberField("retiring-at");
/// On a repository deletion's record
/// ([`keys::repository_deletion`](super::keys::repository_deletion)): `deleting` or `done`,
/// as in its body; read by every push into the repository (a `HEAD`).
pub const DELETION_STATE: TextField = TextField("deletion-state");

/// On a finished repository deletion's record: when it finished (ms since the epoch).
pub const DELETION_FINISHED_AT: NumberField = NumberField("finished-at");

/// On a usage entry ([`keys::usage_entry`](super::keys::usage_entry)): what the run
/// counted in the repository, as JSON (`bytes`, `manifest_bytes`, `blob_bytes`, `tags`,
/// `manifests`, `blobs`, `unreadable`; under 200 bytes). Written by the usage count; read
/// by the usage endpoints from listings alone.
pub const USAGE_COUNTS: TextField = TextField("usage");

/// On a pull-through cache's record of a tag
/// ([`keys::upstream_checked`](super::keys::upstream_checked)): when the tag was last
/// fetched or confirmed upstream (ms since the epoch).
pub const CHECKED_AT: NumberField = NumberField("checked-at");

/// On a pull-through cache's fill lease
/// ([`keys::upstream_fill`](super::keys::upstream_fill)): when the fetch began (ms since
/// the epoch).
pub const FILL_STARTED_AT: NumberField = NumberField("started-at");

#[cfg(test)]
mod tests {
    use super::*;

    /// These names are stored beside objects that replicas and deployments of older
    /// releases read. Changing one breaks them and needs a data migration: do not edit
    /// this test to make a rename pass.
    #[test]
    fn field_names_are_pinned() {
        let text = [
            (POINTER_TARGET, "assembled"),
            (TAG_DIGEST, "digest"),
            (MANIFEST_MEDIA_TYPE, "media-type"),
            (REFERRER_DESCRIPTOR, "descriptor"),
            (MARKER_KEY, "key"),
            (MARKER_KIND, "kind"),
            (TOMBSTONE_KEY, "key"),
            (GC_STATE, "gc-state"),
            (DELETION_STATE, "deletion-state"),
            (USAGE_COUNTS, "usage"),
        ];
        for (field, name) in text {
            assert_eq!(field.name(), name);
        }
        let numbers = [
            (POINTER_SIZE, "size"),
            (UPLOAD_ACTIVE_AT, "active-at"),
            (PUSHED_AT, "pushed-at"),
            (WRITTEN_AT, "written-at"),
            (MARKER_ENQUEUED_AT, "enqueued-at"),
            (MARKER_SENT_AT, "sent-at"),
            (TOMBSTONE_DELETED_AT, "deleted-at"),
            (GC_CONDEMNED_AT, "condemned-at"),
            (RETIRING_AT, "retiring-at"),
            (DELETION_FINISHED_AT, "finished-at"),
            (CHECKED_AT, "checked-at"),
            (FILL_STARTED_AT, "started-at"),
        ];
        for (field, name) in numbers {
            assert_eq!(field.name(), name);
        }
    }

    #[test]
    fn numbers_are_stored_in_decimal() {
        let mut metadata = Metadata::from([WRITTEN_AT.entry(1_700_000_000_123), POINTER_TARGET.entry("blobs/x")]);
        assert_eq!(metadata.get("written-at").map(String::as_str), Some("1700000000123"));
        assert_eq!(WRITTEN_AT.get(&metadata), Some(1_700_000_000_123));
        assert_eq!(POINTER_TARGET.get(&metadata), Some("blobs/x"));
        WRITTEN_AT.set(&mut metadata, 7);
        assert_eq!(metadata.get("written-at").map(String::as_str), Some("7"));
        assert_eq!(UPLOAD_ACTIVE_AT.get(&metadata), None, "absent");
        metadata.insert("active-at".into(), "soon".into());
        assert_eq!(UPLOAD_ACTIVE_AT.get(&metadata), None, "not a number");
        metadata.insert("active-at".into(), "-1".into());
        assert_eq!(UPLOAD_ACTIVE_AT.get(&metadata), None, "not a u64");
    }
}
