//! Retention policies: which tags and untagged manifests of a repository the scheduled job
//! deletes. Pure: the rules are parsed from the `RETENTION` var ([`RetentionRules::parse`])
//! and a [`Plan`] is computed from what the caller read from storage; nothing is deleted here.
//!
//! # Which policy applies
//! `RETENTION` is a list of policies, each for a repository pattern (`*` any run of
//! characters, `/` included; `?` one). **The first policy whose pattern matches a
//! repository applies, and only that one**; a repository no policy matches keeps
//! everything. A policy with no rule (`{"repositories": "prod/*"}`) placed first exempts
//! those repositories from the policies after it.
//!
//! # Tags
//! A tag is kept if any of these holds, checked in this order (the first is the reason
//! reported):
//! 1. it is immutable (the caller's predicate: immutable tags are never deleted);
//! 2. its name matches a pattern of `keep_tags`;
//! 3. it was pushed within the grace period;
//! 4. it is a tag a signing tool attached to a manifest of the same repository
//!    (`sha256-<hex>` or `sha256-<hex>.<suffix>`: cosign's `.sig`, `.att`, `.sbom`): it
//!    follows that manifest, kept while the manifest is live and deleted when it is
//!    deleted, and does not count in `keep_last`;
//! 5. it is among the `keep_last` most recently pushed tags of the repository (by
//!    pushed-at, newest first; on equal times the name first in byte order counts as
//!    newer), whatever other rule also keeps them;
//! 6. the manifest it points at was pulled within `keep_pulled_within_days`.
//!
//! **When a policy has `keep_last` or `keep_tags`, every other tag of every repository it
//! matches is deleted.** `keep_tags: ["v*"]` alone deletes `latest`, `main` and every
//! other tag not starting with `v`. A policy with neither deletes no tag.
//!
//! # Untagged manifests
//! After the tag decisions, a manifest is live if a kept tag points at it, or it is a
//! child of a live index, or a referrer (its `subject`) of a live manifest, or it stands
//! on its own: pushed within the grace period, pulled within `keep_pulled_within_days`,
//! or not older than `untagged_older_than_days` (a manifest exactly that old is kept).
//! Everything else is deleted. Without `untagged_older_than_days` every manifest stands
//! on its own: deleting tags then frees no bytes, the manifests stay, untagged.
//!
//! A manifest whose tags were all deleted loses their protection in the same run, so an
//! old one is deleted at once, and the children of a deleted index with it. Its
//! referrers (signatures, SBOMs) go with it only if they are untagged and old enough
//! themselves: a referrer pushed recently is kept (by the rule above) until it is old
//! enough, and the collector removes referrers whose subject is gone after its own grace
//! period. A child or referrer reached from a live manifest is kept however old it is.
//!
//! Times are the caller's pushed-at (ms since the epoch); for objects written before
//! that field existed the caller passes their upload time. A time in the future counts
//! as age zero.

mod plan;
mod rules;
mod step;
pub mod work;

pub use plan::{Delete, Inventory, Keep, ManifestDecision, ManifestInfo, Plan, TagDecision, TagInfo, Timing, Verdict};
pub use rules::{RetentionError, RetentionRules, MAX_DAYS, MAX_KEEP_LAST, MAX_POLICIES};
pub use step::{step, Retainer};

use crate::oci::Pattern;

/// The retention settings: the policies, and whether a run carries them out
/// (`RETENTION_MODE=apply`) or only reports what they would delete (`dry-run`, the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    pub rules: RetentionRules,
    pub apply: bool,
}

/// Milliseconds in a day, the unit of the policies' ages.
pub const DAY_MS: u64 = 86_400_000;

/// One policy of `RETENTION`, for the repositories its pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The repositories it applies to (unless an earlier policy matches first).
    pub repositories: Pattern,
    /// Keep the N most recently pushed tags.
    pub keep_last: Option<u32>,
    /// Keep the tags matching any of these; empty means no such rule.
    pub keep_tags: Vec<Pattern>,
    /// Delete untagged manifests older than this many days; `None` keeps them.
    pub untagged_older_than_days: Option<u32>,
    /// Keep tags and manifests pulled within this many days (when pulls are recorded).
    pub keep_pulled_within_days: Option<u32>,
}

impl Policy {
    /// Whether it deletes the tags no rule keeps (it has `keep_last` or `keep_tags`).
    pub fn deletes_tags(&self) -> bool {
        self.keep_last.is_some() || !self.keep_tags.is_empty()
    }
}

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod rules_tests;
