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

/// What one evaluation knows: the policy, the time, the manifests by digest.
struct Facts<'a> {
    policy: &'a Policy,
    timing: Timing,
    manifests: BTreeMap<&'a Digest, &'a ManifestInfo>,
}

impl Facts<'_> {
    fn age(&self, at_ms: u64) -> u64 {
        self.timing.now_ms.saturating_sub(at_ms)
    }

    fn in_grace(&self, at_ms: u64) -> bool {
        self.age(at_ms) <= self.timing.grace_ms
    }

    fn pulled_within(&self, digest: &Digest) -> bool {
        let Some(days) = self.policy.keep_pulled_within_days else { return false };
        let pulled = self.manifests.get(digest).and_then(|m| m.pulled_at_ms);
        pulled.is_some_and(|at| self.age(at) <= u64::from(days) * DAY_MS)
    }

    /// The manifest a signing tool's tag names, when it is one of this repository.
    fn attached(&self, tag: &TagInfo) -> Option<Digest> {
        attached_subject(&tag.name).filter(|d| self.manifests.contains_key(d))
    }

    /// A tag's verdict by the rules that do not depend on the manifests; `rank` is its
    /// place among the tags by push time (none for a signing tool's tag).
    fn tag_verdict(&self, tag: &TagInfo, rank: Option<u32>, is_immutable: &dyn Fn(&Tag) -> bool) -> Early {
        let keep = |reason| Early::Decided(Verdict::Keep(reason));
        let policy = self.policy;
        if is_immutable(&tag.name) {
            return keep(Keep::Immutable);
        }
        if !policy.deletes_tags() {
            return keep(Keep::NoTagRule);
        }
        if let Some(pattern) = policy.keep_tags.iter().find(|p| p.matches(tag.name.as_str())) {
            return keep(Keep::MatchesKeepTags(pattern.clone()));
        }
        if self.in_grace(tag.pushed_at_ms) {
            return keep(Keep::WithinGrace);
        }
        if let Some(subject) = self.attached(tag) {
            return Early::Follows(subject);
        }
        match rank {
            Some(rank) if policy.keep_last.is_some_and(|n| rank <= n) => keep(Keep::AmongLast(rank)),
            _ if self.pulled_within(&tag.digest) => keep(Keep::PulledWithin),
            _ => Early::Decided(Verdict::Delete(Delete::MatchesNoKeepRule)),
        }
    }

    /// Why an untagged manifest stands on its own, if it does: by its times alone.
    fn standing(&self, manifest: &ManifestInfo) -> Option<Keep> {
        if self.in_grace(manifest.pushed_at_ms) {
            return Some(Keep::WithinGrace);
        }
        if self.pulled_within(&manifest.digest) {
            return Some(Keep::PulledWithin);
        }
        match self.policy.untagged_older_than_days {
            None => Some(Keep::NoUntaggedRule),
            Some(days) if self.age(manifest.pushed_at_ms) <= u64::from(days) * DAY_MS => Some(Keep::NotOldEnough),
            Some(_) => None,
        }
    }

    /// Adds to `live` what it reaches: an index's children and a manifest's referrers
    /// (`referrers`: subject -> referrers), breadth first from the roots in digest order.
    fn reach<'a>(
        &'a self,
        live: &mut BTreeMap<&'a Digest, Keep>,
        referrers: &BTreeMap<&'a Digest, BTreeSet<&'a Digest>>,
    ) {
        let mut queue: VecDeque<&Digest> = live.keys().copied().collect();
        while let Some(digest) = queue.pop_front() {
            let children: BTreeSet<&Digest> = self.manifests[digest].children.iter().collect();
            let reached = children.into_iter().map(|c| (c, Keep::ChildOf(digest.clone())));
            let referred = referrers.get(digest).into_iter().flatten().map(|r| (*r, Keep::ReferrerOf(digest.clone())));
            for (target, reason) in reached.chain(referred) {
                let Some((known, _)) = self.manifests.get_key_value(target) else { continue };
                if !live.contains_key(known) {
                    live.insert(known, reason);
                    queue.push_back(known);
                }
            }
        }
    }
}

/// Decides `inventory` by `policy` (see the module [`super`] for the rules).
pub(super) fn plan(
    policy: &Policy,
    inventory: &Inventory<'_>,
    timing: Timing,
    is_immutable: &dyn Fn(&Tag) -> bool,
) -> Plan {
    let manifests = inventory.manifests.iter().map(|m| (&m.digest, m)).collect();
    let facts = Facts { policy, timing, manifests };

    let mut tags: Vec<&TagInfo> = inventory.tags.iter().collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ranked: Vec<&TagInfo> = tags.iter().copied().filter(|t| facts.attached(t).is_none()).collect();
    ranked.sort_by(|a, b| b.pushed_at_ms.cmp(&a.pushed_at_ms).then_with(|| a.name.cmp(&b.name)));
    let rank_of: BTreeMap<&Tag, u32> = ranked.iter().zip(1..).map(|(t, rank)| (&t.name, rank)).collect();
    let early: Vec<Early> =
        tags.iter().map(|t| facts.tag_verdict(t, rank_of.get(&t.name).copied(), is_immutable)).collect();

    // The roots: the targets of kept tags, then the manifests standing on their own.
    let mut live: BTreeMap<&Digest, Keep> = BTreeMap::new();
    for (t, verdict) in tags.iter().zip(&early) {
        if matches!(verdict, Early::Decided(Verdict::Keep(_))) && facts.manifests.contains_key(&t.digest) {
            live.entry(&t.digest).or_insert_with(|| Keep::TaggedBy(t.name.clone()));
        }
    }
    for (digest, manifest) in &facts.manifests {
        if let Some(reason) = facts.standing(manifest) {
            live.entry(digest).or_insert(reason);
        }
    }
    // Referrers by `subject`, and by a signing tool's tag naming the manifest.
    let mut referrers: BTreeMap<&Digest, BTreeSet<&Digest>> = BTreeMap::new();
    for m in facts.manifests.values() {
        if let Some(subject) = &m.subject {
            referrers.entry(subject).or_default().insert(&m.digest);
        }
    }
    for (t, verdict) in tags.iter().zip(&early) {
        if let Early::Follows(subject) = verdict {
            if let Some((subject, _)) = facts.manifests.get_key_value(subject) {
                referrers.entry(*subject).or_default().insert(&t.digest);
            }
        }
    }
    facts.reach(&mut live, &referrers);

    let days = policy.untagged_older_than_days.unwrap_or(0);
    let manifest_decisions = facts
        .manifests
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
