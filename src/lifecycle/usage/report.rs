//! What a finished usage run leaves: one entry per repository, written as the count
//! finishes it (`usage/runs/<run>/repos/<name>`, an empty object whose metadata holds the
//! numbers, so a page of 1,000 repositories is one listing), and the report
//! (`usage/report`), written last, which names the run whose entries are current. The
//! entries of earlier runs are removed only after a newer report is published, so the
//! endpoints always read one complete run, at most one run old.
//!
//! A step that runs late (its job save will be lost) cannot put an older run's report
//! over a newer one: the report is replaced only by a later run, and by compare-and-swap.

use super::job::{Job, Largest, RepositoryUsage, Totals};
use crate::lifecycle::meter::Meter;
use crate::oci::RepositoryName;
use crate::storage::fields::USAGE_COUNTS;
use crate::storage::{keys, BlobStore, MetaStore, Metadata, PutIf, StorageError, StorageResult};
use serde::{Deserialize, Serialize};

/// The report of the last finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The run (when it started, ms since the epoch); names its repository entries.
    pub run: u64,
    /// When it finished counting (ms since the epoch): each repository's numbers are as
    /// of some time between `run` and this.
    pub computed_at: u64,
    pub totals: Totals,
    pub largest: Vec<Largest>,
    pub steps: u64,
    pub calls: u64,
}

impl Report {
    pub fn of(job: &Job, computed_at: u64) -> Report {
        Report {
            run: job.run,
            computed_at,
            totals: job.totals,
            largest: job.largest.clone(),
            steps: job.steps,
            calls: job.calls,
        }
    }
}

fn json_error(what: &str, e: serde_json::Error) -> StorageError {
    StorageError::Backend(format!("the usage {what} is unreadable: {e}"))
}

/// The report and its etag; `None` before any run finished.
pub async fn load<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>) -> StorageResult<Option<(Report, String)>> {
    let Some((info, bytes)) = meter.get_bytes(&keys::usage_report()).await? else { return Ok(None) };
    let report = serde_json::from_slice(&bytes).map_err(|e| json_error("report", e))?;
    Ok(Some((report, info.etag)))
}

/// Publishes `report` unless a report of this run or a later one is there (two calls);
/// whether this call published it.
pub async fn publish<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, report: &Report) -> StorageResult<bool> {
    let current = load(meter).await?;
    if current.as_ref().is_some_and(|(theirs, _)| theirs.run >= report.run) {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(report).map_err(|e| StorageError::Backend(e.to_string()))?;
    let condition = current.as_ref().map_or(PutIf::Absent, |(_, etag)| PutIf::EtagMatches(etag));
    Ok(meter.put_if(&keys::usage_report(), bytes, Metadata::new(), condition).await?.is_some())
}

/// Writes run `run`'s entry for `repo` (one call).
pub async fn write_entry<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    run: u64,
    repo: &RepositoryName,
    usage: &RepositoryUsage,
) -> StorageResult<()> {
    let counts = serde_json::to_string(usage).map_err(|e| StorageError::Backend(e.to_string()))?;
    meter.put(&keys::usage_entry(run, repo), Vec::new(), Metadata::from([USAGE_COUNTS.entry(counts)])).await?;
    Ok(())
}

/// One repository's numbers, as its entry holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub repository: String,
    #[serde(flatten)]
    pub usage: RepositoryUsage,
}

/// Up to `n` entries of run `run` after the repository `after` (one listing); whether
/// more follow.
pub async fn entries<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    run: u64,
    after: Option<&RepositoryName>,
    n: usize,
) -> StorageResult<(Vec<Entry>, bool)> {
    let after = after.map(|repo| keys::usage_entry(run, repo));
    let page = meter.list(&keys::usage_entries_prefix(run), after.as_deref(), n).await?;
    let mut entries = Vec::with_capacity(page.keys.len());
    for listed in &page.keys {
        let Some(repo) = keys::repository_of_usage_entry(run, &listed.key) else { continue };
        entries.push(Entry { repository: repo.as_str().to_owned(), usage: counts(&listed.metadata)? });
    }
    Ok((entries, page.truncated))
}

/// Run `run`'s entry for `repo`, `None` when the run found no such repository.
pub async fn entry<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    run: u64,
    repo: &RepositoryName,
) -> StorageResult<Option<Entry>> {
    let Some(info) = meter.head(&keys::usage_entry(run, repo)).await? else { return Ok(None) };
    Ok(Some(Entry { repository: repo.as_str().to_owned(), usage: counts(&info.metadata)? }))
}

fn counts(metadata: &Metadata) -> StorageResult<RepositoryUsage> {
    let text = USAGE_COUNTS.get(metadata).unwrap_or("{}");
    serde_json::from_str(text).map_err(|e| json_error("entry", e))
}

/// Where removing old entries stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// None is left.
    Done,
    /// The budget ran out: continue after this key.
    Stopped { after: Option<String> },
}

/// Removes entries of runs before `run` (whose report is published), after the key
/// `after`, a page per two calls while the budget allows (keeping `reserve` calls).
pub async fn clean_step<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    run: u64,
    mut after: Option<String>,
    reserve: u64,
) -> StorageResult<Cleaned> {
    const PAGE: usize = 1000;
    loop {
        if !meter.affords(2 + reserve) {
            return Ok(Cleaned::Stopped { after });
        }
        let page = meter.list(keys::USAGE_RUNS_PREFIX, after.as_deref(), PAGE).await?;
        let old: Vec<String> = page
            .keys
            .iter()
            .map(|k| k.key.clone())
            .take_while(|k| keys::usage_run_of(k).is_none_or(|r| r < run))
            .collect();
        let reached_current = old.len() < page.keys.len();
        if !old.is_empty() {
            meter.delete_page(&old).await?;
        }
        if reached_current || !page.truncated {
            return Ok(Cleaned::Done);
        }
        after = old.last().cloned();
    }
}
