//! After the sweep: repositories' links to the blobs the run deleted are removed (while
//! those blobs are still dead, so no push can link them again meanwhile), then their
//! states are forgotten (pushable again), then the run's marks are removed.

use super::job::{Job, Phase};
use super::meter::Meter;
use crate::oci::RepositoryName;
use crate::storage::{keys, BlobStore, MetaStore, StorageError, StorageResult};
use std::collections::BTreeSet;

/// Keys listed per call.
const PAGE: usize = 1000;

/// The content keys this run deleted (read once per step; bounded by what one run
/// deletes, which its steps' budgets bound).
async fn dead_keys<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, run: u64) -> StorageResult<BTreeSet<String>> {
    let prefix = format!("{}dead/", keys::gc_run_prefix(run));
    let mut dead = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = meter.list(&prefix, after.as_deref(), PAGE).await?;
        dead.extend(page.keys.iter().filter_map(|k| keys::content_of_mark(run, "dead", &k.key)).map(str::to_owned));
        match (page.truncated, page.keys.last()) {
            (true, Some(last)) => after = Some(last.key.clone()),
            _ => return Ok(dead),
        }
    }
}

/// Removes links to deleted blobs, repository by repository; `Ok(true)` when done.
pub async fn prune_step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &mut Job) -> StorageResult<bool> {
    if job.dry_run || job.report.deleted.items == 0 {
        return Ok(true);
    }
    let dead = dead_keys(meter, job.run).await?;
    loop {
        if !meter.affords(3) {
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
        let page = meter.list(&keys::repository_blobs_prefix(&name), after.as_deref(), PAGE).await?;
        if page.keys.is_empty() {
            job.phase = match next_repository(meter, Some(&repo)).await? {
                Some(next) => Phase::Prune { repo: Some(next), after: None },
                None => return Ok(true),
            };
            continue;
        }
        for link in page.keys {
            if !meter.affords(2) {
                return Ok(false);
            }
            let deleted = keys::linked_digest_of(&link.key).is_some_and(|d| dead.contains(&keys::blob(&d)));
            if deleted {
                meter.delete(&link.key).await?;
                job.report.links_removed += 1;
            }
            job.phase = Phase::Prune { repo: Some(repo.clone()), after: Some(link.key) };
        }
    }
}

/// Forgets the states of deleted content; `Ok(true)` when done.
pub async fn forget_step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &mut Job) -> StorageResult<bool> {
    let prefix = format!("{}dead/", keys::gc_run_prefix(job.run));
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
                meter.forget(content).await?;
            }
            job.phase = Phase::Forget { after: Some(mark.key) };
        }
    }
}

/// Removes the run's marks; `Ok(true)` when none is left.
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
