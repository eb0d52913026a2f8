//! The retention engine: from one repository's tags and manifests (read by the caller),
//! the policy, the time and the grace period, a [`Plan`] that decides every tag and every
//! manifest with its reason. The rules it applies are the module's ([`super`]); the order
//! of the output is fixed (tags by name, manifests by digest) whatever the input's.

use super::{Policy, DAY_MS};
use crate::oci::{Digest, Pattern, Tag};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A tag as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub name: Tag,
    /// The manifest it points at.
    pub digest: Digest,
    /// When the tag was last pushed (moved), ms since the epoch.
    pub pushed_at_ms: u64,
}

/// A manifest of the repository, tagged or not, with the graph edges it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: Digest,
    /// When it was pushed, ms since the epoch.
    pub pushed_at_ms: u64,
    /// When it was last pulled, if pulls are recorded.
    pub pulled_at_ms: Option<u64>,
    /// The manifests an index lists (empty for an image manifest).
    pub children: Vec<Digest>,
    /// The manifest it refers to, for a referrer (signature, SBOM, attestation).
    pub subject: Option<Digest>,
}

/// One repository's contents.
#[derive(Debug, Clone, Copy)]
pub struct Inventory<'a> {
    pub tags: &'a [TagInfo],
    pub manifests: &'a [ManifestInfo],
}

/// The moment of the evaluation and the grace period during which nothing pushed is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub now_ms: u64,
    pub grace_ms: u64,
}

/// Why something is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// No policy matches the repository.
    NoPolicy,
    /// The policy has neither `keep_last` nor `keep_tags`.
    NoTagRule,
    Immutable,
    MatchesKeepTags(Pattern),
    /// The tag is the `rank`-th most recently pushed (1 is the newest).
    AmongLast(u32),
    /// A signing tool's tag (`sha256-<hex>…`) whose manifest is kept.
    AttachedTo(Digest),
    WithinGrace,
    PulledWithin,
    /// The manifest is the target of this kept tag (the first by name).
    TaggedBy(Tag),
    /// The manifest is a child of this live index.
    ChildOf(Digest),
    /// The manifest is a referrer of this live manifest.
    ReferrerOf(Digest),
    /// The untagged manifest is not older than `untagged_older_than_days`.
    NotOldEnough,
    /// The policy has no `untagged_older_than_days`.
    NoUntaggedRule,
}

/// Why something is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delete {
    /// The tag matches no keep rule of a policy that has some.
    MatchesNoKeepRule,
    /// A signing tool's tag whose manifest is deleted.
    AttachedToDeleted(Digest),
    /// Untagged (after the tag decisions), unreachable from live manifests, and older.
    UntaggedOlderThan(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep(Keep),
    Delete(Delete),
}

impl Verdict {
    pub fn deletes(&self) -> bool {
        matches!(self, Verdict::Delete(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDecision {
    pub tag: Tag,
    pub digest: Digest,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDecision {
    pub digest: Digest,
    pub verdict: Verdict,
}

/// Every tag (by name) and every manifest (by digest) of the repository, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tags: Vec<TagDecision>,
    pub manifests: Vec<ManifestDecision>,
}

impl Plan {
    /// Everything kept, for a repository no policy matches.
    pub(super) fn keep_everything(inventory: &Inventory<'_>) -> Plan {
        let keep = || Verdict::Keep(Keep::NoPolicy);
        let mut tags: Vec<_> = inventory
            .tags
            .iter()
            .map(|t| TagDecision { tag: t.name.clone(), digest: t.digest.clone(), verdict: keep() })
            .collect();
        let mut manifests: Vec<_> = inventory
            .manifests
            .iter()
            .map(|m| ManifestDecision { digest: m.digest.clone(), verdict: keep() })
            .collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        Plan { tags, manifests }
    }

    /// The tags to delete, by name.
    pub fn delete_tags(&self) -> Vec<&Tag> {
        self.tags.iter().filter(|d| d.verdict.deletes()).map(|d| &d.tag).collect()
    }

    /// The manifests to delete, by digest.
    pub fn delete_manifests(&self) -> Vec<&Digest> {
        self.manifests.iter().filter(|d| d.verdict.deletes()).map(|d| &d.digest).collect()
    }
}

/// The manifest a signing tool's tag names: `sha256-<hex>` or `sha256-<hex>.<suffix>`.
fn attached_subject(tag: &Tag) -> Option<Digest> {
    let (algorithm, rest) = tag.as_str().split_once('-')?;
    let hex = rest.split('.').next()?;
    format!("{algorithm}:{hex}").parse().ok()
}

/// A tag's verdict before the manifests are decided.
enum Early {
    Decided(Verdict),
    /// A signing tool's tag, which follows the manifest it names.
    Follows(Digest),
}

/// Decides `inventory` by `policy` (see the module [`super`] for the rules).
pub(super) fn plan(
    policy: &Policy,
    inventory: &Inventory<'_>,
    timing: Timing,
    is_immutable: &dyn Fn(&Tag) -> bool,
) -> Plan {
    let age = |at_ms: u64| timing.now_ms.saturating_sub(at_ms);
    let in_grace = |at_ms: u64| age(at_ms) <= timing.grace_ms;
    let manifests: BTreeMap<&Digest, &ManifestInfo> = inventory.manifests.iter().map(|m| (&m.digest, m)).collect();
    let pulled_within = |digest: &Digest| {
        let Some(days) = policy.keep_pulled_within_days else { return false };
        let pulled = manifests.get(digest).and_then(|m| m.pulled_at_ms);
        pulled.is_some_and(|at| age(at) <= u64::from(days) * DAY_MS)
    };

    let mut tags: Vec<&TagInfo> = inventory.tags.iter().collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let attached = |t: &TagInfo| attached_subject(&t.name).filter(|d| manifests.contains_key(d));
    let mut ranked: Vec<&TagInfo> = tags.iter().copied().filter(|t| attached(t).is_none()).collect();
    ranked.sort_by(|a, b| b.pushed_at_ms.cmp(&a.pushed_at_ms).then_with(|| a.name.cmp(&b.name)));
    let rank_of: BTreeMap<&Tag, u32> = ranked.iter().zip(1..).map(|(t, rank)| (&t.name, rank)).collect();
    let early: Vec<Early> = tags
        .iter()
        .map(|t| {
            let keep = |reason| Early::Decided(Verdict::Keep(reason));
            if is_immutable(&t.name) {
                return keep(Keep::Immutable);
            }
            if !policy.deletes_tags() {
                return keep(Keep::NoTagRule);
            }
            if let Some(pattern) = policy.keep_tags.iter().find(|p| p.matches(t.name.as_str())) {
                return keep(Keep::MatchesKeepTags(pattern.clone()));
            }
            if in_grace(t.pushed_at_ms) {
                return keep(Keep::WithinGrace);
            }
            if let Some(subject) = attached(t) {
                return Early::Follows(subject);
            }
            match rank_of.get(&t.name) {
                Some(&rank) if policy.keep_last.is_some_and(|n| rank <= n) => keep(Keep::AmongLast(rank)),
                _ if pulled_within(&t.digest) => keep(Keep::PulledWithin),
                _ => Early::Decided(Verdict::Delete(Delete::MatchesNoKeepRule)),
            }
        })
        .collect();

    // Manifests that stand on their own: a kept tag's target, or by their own times.
    let mut live: BTreeMap<&Digest, Keep> = BTreeMap::new();
    for (t, verdict) in tags.iter().zip(&early) {
        if matches!(verdict, Early::Decided(Verdict::Keep(_))) && manifests.contains_key(&t.digest) {
            live.entry(&t.digest).or_insert_with(|| Keep::TaggedBy(t.name.clone()));
        }
    }
    for (digest, m) in &manifests {
        let own = if in_grace(m.pushed_at_ms) {
            Some(Keep::WithinGrace)
        } else if pulled_within(digest) {
            Some(Keep::PulledWithin)
        } else {
            match policy.untagged_older_than_days {
                None => Some(Keep::NoUntaggedRule),
                Some(days) if age(m.pushed_at_ms) <= u64::from(days) * DAY_MS => Some(Keep::NotOldEnough),
                Some(_) => None,
            }
        };
        if let Some(own) = own {
            live.entry(digest).or_insert(own);
        }
    }

    // What the live ones reach: an index's children, a manifest's referrers (by `subject`
    // or by a signing tool's tag), breadth first from the roots in digest order.
    let mut referrers: BTreeMap<&Digest, BTreeSet<&Digest>> = BTreeMap::new();
    for m in manifests.values() {
        if let Some(subject) = &m.subject {
            referrers.entry(subject).or_default().insert(&m.digest);
        }
    }
    for (t, verdict) in tags.iter().zip(&early) {
        if let Early::Follows(subject) = verdict {
            if let Some((subject, _)) = manifests.get_key_value(subject) {
                referrers.entry(*subject).or_default().insert(&t.digest);
            }
        }
    }
    let mut queue: VecDeque<&Digest> = live.keys().copied().collect();
    while let Some(digest) = queue.pop_front() {
        let children: BTreeSet<&Digest> = manifests[digest].children.iter().collect();
        let reached = children.into_iter().map(|c| (c, Keep::ChildOf(digest.clone())));
        let referred = referrers.get(digest).into_iter().flatten().map(|r| (*r, Keep::ReferrerOf(digest.clone())));
        for (target, reason) in reached.chain(referred) {
            if let Some((known, _)) = manifests.get_key_value(target) {
                if !live.contains_key(known) {
                    live.insert(known, reason);
                    queue.push_back(known);
                }
            }
        }
    }

    let days = policy.untagged_older_than_days.unwrap_or(0);
    let manifest_decisions = manifests
        .keys()
        .map(|digest| ManifestDecision {
            digest: (*digest).clone(),
            verdict: match live.get(digest) {
                Some(reason) => Verdict::Keep(reason.clone()),
                None => Verdict::Delete(Delete::UntaggedOlderThan(days)),
            },
        })
        .collect();
    let tag_decisions = tags
        .iter()
        .zip(early)
        .map(|(t, verdict)| {
            let verdict = match verdict {
                Early::Decided(verdict) => verdict,
                Early::Follows(subject) if live.contains_key(&subject) => Verdict::Keep(Keep::AttachedTo(subject)),
                Early::Follows(subject) => Verdict::Delete(Delete::AttachedToDeleted(subject)),
            };
            TagDecision { tag: t.name.clone(), digest: t.digest.clone(), verdict }
        })
        .collect();
    Plan { tags: tag_decisions, manifests: manifest_decisions }
}
