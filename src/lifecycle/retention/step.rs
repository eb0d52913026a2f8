//! The retention phase of a collector run: repository by repository (catalog order), read
//! its tags, manifest links, referrer entries and indexes' children, decide them by the
//! policy ([`RetentionRules::plan`]), then carry out the deletions, each only if the key
//! still holds the version it was decided on and only by `storage::retiring`'s protocol
//! (swap for a marker, delete what goes with it, delete the marker). Every storage call
//! goes through the step's meter; the step stops between any two of them.

use super::work::{Action, Cursor, RetentionReport, SeenManifest, SeenTag, Stage, Work};
use super::{Inventory, ManifestInfo, RetentionRules, TagInfo, Timing};
use crate::lifecycle::gc::meter::Meter;
use crate::lifecycle::gc::prune::next_repository;
use crate::oci::{manifest, Digest, MediaType, RepositoryName, Tag};
use crate::storage::fields::{MANIFEST_MEDIA_TYPE, PUSHED_AT, TAG_DIGEST};
use crate::storage::{keys, retiring, BlobStore, ListPage, MetaStore, ObjectInfo, StorageError, StorageResult};
use std::collections::BTreeMap;

/// What retention needs besides the stores: the policies, whether to carry them out, and
/// which tags are immutable (never deleted).
pub struct Retainer<'a> {
    pub rules: &'a RetentionRules,
    /// Carry out the deletions (`RETENTION_MODE=apply`); false only reports them.
    pub apply: bool,
    pub is_immutable: &'a dyn Fn(&RepositoryName, &Tag) -> bool,
}

/// Calls kept in hand before the next read or deletion (a manifest's deletion takes 4).
const RESERVE: u64 = 5;
/// Keys per listing page.
const PAGE: usize = 1000;

/// One step of the retention phase; `Ok(true)` when every repository is done. `timing`'s
/// time is the step's start: markers are stamped with it, which `retiring::MAX_HOLD_MS`
/// (longer than a step) allows.
pub async fn step<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    cursor: &mut Cursor,
    report: &mut RetentionReport,
    retainer: &Retainer<'_>,
    timing: Timing,
    dry_run: bool,
) -> StorageResult<bool> {
    report.applied = retainer.apply && !dry_run;
    loop {
        if !meter.affords(RESERVE) {
            return Ok(false);
        }
        let Some(work) = cursor.work.as_mut() else {
            let Some(next) = next_repository(meter, cursor.finished.as_deref()).await? else { return Ok(true) };
            report.repositories += 1;
            if retainer.rules.policy_for(&repository(&next)?).is_some() {
                report.evaluated += 1;
                cursor.work = Some(Work::new(next, timing.now_ms));
            } else {
                cursor.finished = Some(next);
            }
            continue;
        };
        if advance(meter, work, report, retainer, timing).await? {
            cursor.finished = cursor.work.take().map(|w| w.repo);
        }
    }
}

fn repository(name: &str) -> StorageResult<RepositoryName> {
    RepositoryName::parse(name).map_err(|e| StorageError::Backend(format!("catalog entry {name}: {e}")))
}

/// One storage call's worth (or the plan) of a repository's evaluation; true when done.
async fn advance<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    work: &mut Work,
    report: &mut RetentionReport,
    retainer: &Retainer<'_>,
    timing: Timing,
) -> StorageResult<bool> {
    let repo = repository(&work.repo)?;
    match work.stage.clone() {
        Stage::Tags { after } => {
            let prefix = keys::tags_prefix(&repo);
            let page = meter.list(&prefix, after.as_deref(), PAGE).await?;
            for entry in page.keys.iter().filter(|k| !retiring::is_marker(&k.metadata)) {
                let (Some(name), Some(digest)) = (entry.key.strip_prefix(&prefix), TAG_DIGEST.get(&entry.metadata))
                else {
                    continue;
                };
                let pushed_at = PUSHED_AT.get(&entry.metadata).unwrap_or(0);
                work.tags.push(SeenTag { name: name.to_owned(), digest: digest.to_owned(), pushed_at });
            }
            work.stage = page_on(&page, |after| Stage::Tags { after }, Stage::Links { after: None });
        }
        Stage::Links { after } => {
            let page = meter.list(&keys::repository_manifests_prefix(&repo), after.as_deref(), PAGE).await?;
            for entry in page.keys.iter().filter(|k| !retiring::is_marker(&k.metadata)) {
                let Some(digest) = keys::linked_digest_of(&entry.key) else { continue };
                work.manifests.push(SeenManifest {
                    digest: digest.to_string(),
                    pushed_at: PUSHED_AT.get(&entry.metadata).unwrap_or(0),
                    media_type: MANIFEST_MEDIA_TYPE.get(&entry.metadata).unwrap_or_default().to_owned(),
                    children: Vec::new(),
                    subject: None,
                });
            }
            work.stage = page_on(&page, |after| Stage::Links { after }, Stage::Referrers { after: None });
        }
        Stage::Referrers { after } => {
            let page = meter.list(&keys::repository_referrers_prefix(&repo), after.as_deref(), PAGE).await?;
            let by_digest: BTreeMap<String, usize> =
                work.manifests.iter().enumerate().map(|(i, m)| (m.digest.clone(), i)).collect();
            for entry in &page.keys {
                let Some((subject, referrer)) = keys::referrer_pair_of(&entry.key) else { continue };
                if let Some(&i) = by_digest.get(&referrer.to_string()) {
                    work.manifests[i].subject = Some(subject.to_string());
                }
            }
            work.stage = page_on(&page, |after| Stage::Referrers { after }, Stage::Indexes { next: 0 });
        }
        Stage::Indexes { next } => {
            let found =
                work.manifests.iter().skip(next).position(|m| MediaType::from(m.media_type.as_str()).is_index());
            let Some(at) = found.map(|offset| next + offset) else {
                return decide(work, report, retainer, timing, &repo);
            };
            let digest: Digest = work.manifests[at].digest.parse().map_err(|_| unreadable(&work.repo))?;
            let media_type = MediaType::from(work.manifests[at].media_type.as_str());
            let bytes = meter.get_bytes(&keys::manifest(&digest)).await?;
            match bytes.and_then(|(_, bytes)| manifest::parse(&bytes, Some(&media_type)).ok()) {
                Some(parsed) => {
                    let index = &mut work.manifests[at];
                    index.children = parsed.manifests.iter().map(|c| c.digest.to_string()).collect();
                    index.subject = parsed.subject.map(|s| s.digest.to_string()).or(index.subject.take());
                    work.stage = Stage::Indexes { next: at + 1 };
                }
                // Its children would look unreachable: the repository is left as it is.
                None => {
                    report.unreadable.push(work.repo.clone());
                    return Ok(true);
                }
            }
        }
        Stage::Apply { next } => {
            let Some(action) = work.actions.get(next).cloned() else { return Ok(true) };
            if !carry_out(meter, &repo, &action, timing.now_ms).await? {
                report.changed += 1;
            }
            work.stage = Stage::Apply { next: next + 1 };
        }
    }
    Ok(false)
}

/// The stage after a listing's page: the same listing after its last key while it was
/// truncated, else `then`.
fn page_on(page: &ListPage, again: impl Fn(Option<String>) -> Stage, then: Stage) -> Stage {
    match page.keys.last().filter(|_| page.truncated) {
        Some(last) => again(Some(last.key.clone())),
        None => then,
    }
}

fn unreadable(repo: &str) -> StorageError {
    StorageError::Backend(format!("retention: a manifest link of {repo} names no digest"))
}

/// Plans the repository read into `work`; true when there is nothing to carry out.
fn decide(
    work: &mut Work,
    report: &mut RetentionReport,
    retainer: &Retainer<'_>,
    timing: Timing,
    repo: &RepositoryName,
) -> StorageResult<bool> {
    // Planned as of the read's start: what was pushed since is within the grace period.
    let timing =
        Timing { now_ms: if work.read_at == 0 { timing.now_ms } else { work.read_at.min(timing.now_ms) }, ..timing };
    let parse = |d: &str| d.parse::<Digest>().ok();
    let tags: Vec<TagInfo> = work
        .tags
        .iter()
        .filter_map(|t| {
            let (name, digest) = (Tag::parse(&t.name).ok()?, parse(&t.digest)?);
            Some(TagInfo { name, digest, pushed_at_ms: t.pushed_at })
        })
        .collect();
    let manifests: Vec<ManifestInfo> = work
        .manifests
        .iter()
        .filter_map(|m| {
            Some(ManifestInfo {
                digest: parse(&m.digest)?,
                pushed_at_ms: m.pushed_at,
                pulled_at_ms: None,
                children: m.children.iter().filter_map(|c| parse(c)).collect(),
                subject: m.subject.as_deref().and_then(parse),
            })
        })
        .collect();
    let is_immutable = |tag: &Tag| (retainer.is_immutable)(repo, tag);
    let plan = retainer.rules.plan(repo, &Inventory { tags: &tags, manifests: &manifests }, timing, &is_immutable);
    let tag_pushed_at: BTreeMap<&Tag, u64> = tags.iter().map(|t| (&t.name, t.pushed_at_ms)).collect();
    let seen_manifests: BTreeMap<&str, &super::work::SeenManifest> =
        work.manifests.iter().map(|m| (m.digest.as_str(), m)).collect();
    let mut actions = Vec::new();
    for decision in &plan.tags {
        if !decision.verdict.deletes() {
            report.tags_kept += 1;
            continue;
        }
        report.tags_deleted += 1;
        report.note(format!("{repo}:{}", decision.tag));
        let seen = tag_pushed_at.get(&decision.tag).copied().unwrap_or(0);
        let (name, digest) = (decision.tag.to_string(), decision.digest.to_string());
        actions.push(Action::Tag { name, digest, pushed_at: seen });
    }
    let mut manifest_actions = Vec::new();
    for decision in &plan.manifests {
        if !decision.verdict.deletes() {
            report.manifests_kept += 1;
            continue;
        }
        report.manifests_deleted += 1;
        report.note(format!("{repo}@{}", decision.digest));
        let Some(seen) = seen_manifests.get(decision.digest.to_string().as_str()) else { continue };
        let index = MediaType::from(seen.media_type.as_str()).is_index();
        let action =
            Action::Manifest { digest: seen.digest.clone(), pushed_at: seen.pushed_at, subject: seen.subject.clone() };
        manifest_actions.push((!index, action));
    }
    // An index goes before its children: no kept index ever names a deleted child.
    manifest_actions.sort_by_key(|(not_index, _)| *not_index);
    actions.extend(manifest_actions.into_iter().map(|(_, action)| action));
    drop(seen_manifests);
    work.tags.clear();
    work.manifests.clear();
    if actions.is_empty() || !report.applied {
        return Ok(true);
    }
    work.actions = actions;
    work.stage = Stage::Apply { next: 0 };
    Ok(false)
}

/// Carries out one deletion if its key still holds the version it was decided on; false
/// when it changed (kept). At most 4 calls.
async fn carry_out<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    repo: &RepositoryName,
    action: &Action,
    now: u64,
) -> StorageResult<bool> {
    let (key, is_version) = match action {
        Action::Tag { name, digest, pushed_at } => {
            let tag = Tag::parse(name).map_err(|e| StorageError::Backend(format!("retention: tag {name}: {e}")))?;
            let matches = move |info: &ObjectInfo| {
                TAG_DIGEST.get(&info.metadata) == Some(digest.as_str())
                    && PUSHED_AT.get(&info.metadata).unwrap_or(0) == *pushed_at
            };
            (keys::tag(repo, &tag), Box::new(matches) as Box<dyn Fn(&ObjectInfo) -> bool + '_>)
        }
        Action::Manifest { digest, pushed_at, .. } => {
            let parsed: Digest = digest.parse().map_err(|_| unreadable(repo.as_str()))?;
            let matches = move |info: &ObjectInfo| PUSHED_AT.get(&info.metadata).unwrap_or(0) == *pushed_at;
            (keys::repository_manifest(repo, &parsed), Box::new(matches) as Box<dyn Fn(&ObjectInfo) -> bool + '_>)
        }
    };
    let Some(info) = meter.head(&key).await? else { return Ok(false) };
    // A live version must be the one decided on; a marker only one whose step has ended
    // (then this step takes it over); a held marker is another step's.
    let ours = match retiring::is_marker(&info.metadata) {
        true => !retiring::is_held(&info.metadata, now),
        false => is_version(&info),
    };
    if !ours || !meter.retire(&key, &info.etag, now).await? {
        return Ok(false);
    }
    if let Action::Manifest { digest, subject: Some(subject), .. } = action {
        // While the link's marker is held, no push of this manifest writes its entry.
        if let (Ok(subject), Ok(digest)) = (subject.parse::<Digest>(), digest.parse::<Digest>()) {
            meter.delete(&keys::referrer(repo, &subject, &digest)).await?;
        }
    }
    meter.release(&key).await?;
    Ok(true)
}
