//! After the sweep: repositories' links to the content the run deleted (blob links,
//! manifest links and referrer entries) are removed while that content is still dead, so
//! no push can link it again meanwhile; then the states are forgotten (pushable again),
//! then the run's marks are removed. Whether anything died is read from the dead marks
//! themselves, never from the report (a step whose save was lost may have deleted).

use super::job::{Job, Phase};
use super::meter::Meter;
use crate::oci::RepositoryName;
use crate::storage::{keys, retiring, BlobStore, MetaStore, StorageError, StorageResult};
use std::collections::BTreeSet;

/// Keys listed per call.
const PAGE: usize = 1000;

/// The prefix of the run's dead marks.
fn dead_prefix(run: u64) -> String {
    format!("{}dead/", keys::gc_run_prefix(run))
}

/// The most listings of dead marks a step spends to hold them in memory (and at most a
/// quarter of its budget); a run that deleted more looks each link's mark up instead (one
/// `HEAD` per link).
const DEAD_PAGES: u64 = 20;

/// The calls a step keeps in hand: a page of links, the next catalog entry.
const RESERVE: u64 = 3;

/// The content this run deleted, as a step sees it.
enum Dead {
    /// All of it (few enough).
    Known(BTreeSet<String>),
    /// Too much to hold: each link's dead mark is looked up.
    LookUp,
}

impl Dead {
    async fn load<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, run: u64) -> StorageResult<Option<Dead>> {
        let mut known = BTreeSet::new();
        let mut after: Option<String> = None;
        let most = DEAD_PAGES.min(meter.budget() / 4).max(1) as usize * PAGE;
        loop {
            let page = meter.list(&dead_prefix(run), after.as_deref(), PAGE).await?;
            known
                .extend(page.keys.iter().filter_map(|k| keys::content_of_mark(run, "dead", &k.key)).map(str::to_owned));
            match (page.truncated, page.keys.last()) {
                (true, _) if known.len() >= most => return Ok(Some(Dead::LookUp)),
                (true, Some(last)) => after = Some(last.key.clone()),
                _ if known.is_empty() => return Ok(None),
                _ => return Ok(Some(Dead::Known(known))),
            }
        }
    }

    async fn contains<B: BlobStore, M: MetaStore>(
        &self,
        meter: &Meter<'_, B, M>,
        run: u64,
        content: &str,
    ) -> StorageResult<bool> {
        match self {
            Dead::Known(known) => Ok(known.contains(content)),
            Dead::LookUp => Ok(meter.head(&keys::gc_dead(run, content)).await?.is_some()),
        }
    }
}

/// Removes links to deleted content, repository by repository; `Ok(true)` when done.
///
/// A retiring marker a step left (it failed between writing and deleting it, and nobody
/// holds it any more) is taken over and deleted here, as `storage::retiring` allows; a
/// held one is its step's.
pub async fn prune_step<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    now: u64,
) -> StorageResult<bool> {
    if job.dry_run {
        return Ok(true);
    }
    let Some(dead) = Dead::load(meter, job.run).await? else { return Ok(true) };
    loop {
        if !meter.affords(RESERVE) {
            return Ok(false);
        }
        let Phase::Prune { repo, after } = &job.phase else { return Ok(true) };
        let (repo, after) = (repo.clone(), after.clone());
        let Some(repo) = repo else {
            match next_repository(meter, None).await? {
                Some(first) => job.phase = Phase::Prune { repo: Some(first), after: None },
                None => return Ok(true),
            }
            continue;
        };
        let name =
            RepositoryName::parse(&repo).map_err(|e| StorageError::Backend(format!("catalog entry {repo}: {e}")))?;
        // The repository's own keys in order: `_blobs/`, `_manifests/`, `_referrers/`, `_tags/`.
        let page = meter.list(&keys::repository_own_prefix(&name), after.as_deref(), 100).await?;
        if page.keys.is_empty() {
            job.phase = match next_repository(meter, Some(&repo)).await? {
                Some(next) => Phase::Prune { repo: Some(next), after: None },
                None => return Ok(true),
            };
            continue;
        }
        for link in page.keys {
            if !meter.affords(3) {
                return Ok(false);
            }
            if retiring::is_marker(&link.metadata) {
                if remove_stale_marker(meter, &link.key, now).await? {
                    job.report.links_removed += 1;
                }
            } else if let Some(content) = linked_content(&link.key) {
                if dead.contains(meter, job.run, &content).await? {
                    meter.delete(&link.key).await?;
                    job.report.links_removed += 1;
                }
            }
            job.phase = Phase::Prune { repo: Some(repo.clone()), after: Some(link.key) };
        }
    }
}

/// Takes over a marker nobody holds any more and deletes it (3 calls); false when it is
/// held, gone, or changed meanwhile (a push replaced it).
async fn remove_stale_marker<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    key: &str,
    now: u64,
) -> StorageResult<bool> {
    let Some(info) = meter.head(key).await? else { return Ok(false) };
    if !retiring::is_marker(&info.metadata) || retiring::is_held(&info.metadata, now) {
        return Ok(false);
    }
    if !meter.retire(key, &info.etag, now).await? {
        return Ok(false);
    }
    meter.release(key).await?;
    Ok(true)
}

/// The content key a repository key links: a blob link's blob, a manifest link's bytes,
/// a referrer entry's referrer; `None` for a tag (which the registry deletes with its
/// manifest's link).
fn linked_content(key: &str) -> Option<String> {
    if key.contains("/_blobs/") {
        return keys::linked_digest_of(key).map(|d| keys::blob(&d));
    }
    if key.contains("/_manifests/") {
        return keys::linked_digest_of(key).map(|d| keys::manifest(&d));
    }
    let (_, referrer) = key.split_once("/_referrers/")?;
    // `<subject alg>/<subject hex>/<referrer alg>/<referrer hex>`
    let parts: Vec<&str> = referrer.split('/').collect();
    let [_, _, algorithm, hex] = parts[..] else { return None };
    format!("{algorithm}:{hex}").parse().ok().map(|d| keys::manifest(&d))
}

/// Forgets the states of deleted content; `Ok(true)` when done. A run that could not
/// reach a replica forgets none: a deletion or a link's removal may have missed it, and
/// content pushable again could then be served (or linked) from that replica's stale copy.
/// Those states stay dead (pushes of that content are refused) until a later run, reaching
/// every replica, finishes the deletion (the sweep or [`resume`](super::resume)).
pub async fn forget_step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &mut Job) -> StorageResult<bool> {
    let prefix = dead_prefix(job.run);
    loop {
        let Phase::Forget { after } = &job.phase else { return Ok(true) };
        let after = after.clone();
        if !meter.affords(2) {
            return Ok(false);
        }
        let page = meter.list(&prefix, after.as_deref(), PAGE).await?;
        if page.keys.is_empty() {
            return Ok(true);
        }
        for mark in page.keys {
            if !meter.affords(1) {
                return Ok(false);
            }
            if let Some(content) = keys::content_of_mark(job.run, "dead", &mark.key) {
                if job.report.unreached.is_empty() {
                    meter.forget(content).await?;
                } else {
                    job.report.kept_dead += 1;
                }
            }
            job.phase = Phase::Forget { after: Some(mark.key) };
        }
    }
}

/// Removes the run's marks, a page per call; `Ok(true)` when none is left.
pub async fn clean_step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &Job) -> StorageResult<bool> {
    let prefix = keys::gc_run_prefix(job.run);
    loop {
        if !meter.affords(2) {
            return Ok(false);
        }
        let page = meter.list(&prefix, None, PAGE).await?;
        if page.keys.is_empty() {
            return Ok(true);
        }
        let marks: Vec<String> = page.keys.into_iter().map(|k| k.key).collect();
        meter.delete_page(&marks).await?;
    }
}

/// The repository after `after` in the catalog (the first with `None`).
pub async fn next_repository<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    after: Option<&str>,
) -> StorageResult<Option<String>> {
    let after_key = after.map(|repo| format!("{}{repo}", keys::CATALOG_PREFIX));
    let page = meter.list(keys::CATALOG_PREFIX, after_key.as_deref(), 1).await?;
    Ok(page.keys.first().and_then(|k| keys::repository_of_catalog_entry(&k.key)).map(|r| r.as_str().to_owned()))
}
