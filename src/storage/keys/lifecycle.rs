//! The keys of the lifecycle jobs: the garbage collector's records (its job, its runs'
//! marks and reports, the states of content it condemned), repository deletions and the
//! storage usage count. None of them is content, and none is replicated. Re-exported by
//! [`keys`](super), whose tests pin their form with every other key.

use crate::oci::RepositoryName;

/// R2: prefix of the garbage collector's records (its job, its runs' marks, the state of
/// content it condemned); never content, never replicated.
pub const GC_PREFIX: &str = "gc/";

/// R2: prefix of the collector's states of content keys.
pub const GC_STATE_PREFIX: &str = "gc/state/";

/// R2: the collector's state of the content key `content` (a blob or a manifest's bytes):
/// condemned, rescued or dead (see `storage::content_state`); absent for most content.
/// Named after the key, so a listing of states runs in the content's order.
pub fn content_state(content: &str) -> String {
    format!("{GC_STATE_PREFIX}{content}")
}

/// The content key a state key is of; `None` for any other key.
pub fn content_of_state(key: &str) -> Option<&str> {
    key.strip_prefix(GC_STATE_PREFIX)
}

/// R2: the collector's job (JSON): the run in progress and its cursor, or the last one's
/// report; changed only by compare-and-swap on its etag.
pub fn gc_job() -> String {
    format!("{GC_PREFIX}job")
}

/// R2: prefix of everything one collector run writes (its marks), removed when it ends.
pub fn gc_run_prefix(run: u64) -> String {
    format!("{GC_PREFIX}runs/{run:020}/")
}

/// R2: marks that run `run` found `content` reachable. Named after the content key, so
/// that a listing of the marks runs in the content's order and a sweep merges the two.
pub fn gc_live(run: u64, content: &str) -> String {
    format!("{}live/{content}", gc_run_prefix(run))
}

/// R2: marks that run `run` deleted `content`, so that its later steps remove the links to
/// it and then forget its state.
pub fn gc_dead(run: u64, content: &str) -> String {
    format!("{}dead/{content}", gc_run_prefix(run))
}

/// The content key a run's live or dead mark names; `None` for any other key.
pub fn content_of_mark<'a>(run: u64, kind: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(&gc_run_prefix(run))?.strip_prefix(kind)?.strip_prefix('/')
}

/// R2: the report of a finished collector run (JSON), kept for the admin endpoint.
pub fn gc_report(run: u64) -> String {
    format!("{GC_PREFIX}reports/{run:020}")
}

/// R2: prefix of the repository deletions' records and markers; never content.
pub const DELETIONS_PREFIX: &str = "deletions/";

/// R2: the record of the last deletion of `repo` (JSON; its state also in the metadata, so
/// that a push reads it with a `HEAD`): created create-only, changed only by
/// compare-and-swap on its etag, never removed (a later deletion replaces a finished one).
pub fn repository_deletion(repo: &RepositoryName) -> String {
    format!("{DELETIONS_PREFIX}repositories/{}", repo.as_str())
}

/// R2: prefix of the markers of deletions in progress, listed by the cron trigger.
pub const PENDING_DELETIONS_PREFIX: &str = "deletions/pending/";

/// R2: marks that the deletion of `repo` started at `started_at` (ms) may still have work
/// left: named per deletion, so that removing a finished one's marker never touches a
/// later deletion's. Listed oldest first.
pub fn pending_deletion(started_at: u64, repo: &RepositoryName) -> String {
    format!("{PENDING_DELETIONS_PREFIX}{started_at:020}/{}", repo.as_str())
}

/// The start time and repository a pending-deletion marker names; `None` for any other key.
pub fn pending_deletion_of(key: &str) -> Option<(u64, RepositoryName)> {
    let (started_at, repo) = key.strip_prefix(PENDING_DELETIONS_PREFIX)?.split_once('/')?;
    Some((started_at.parse().ok()?, RepositoryName::parse(repo).ok()?))
}

/// R2: prefix of the usage count's records (its job, its report, its runs' repository
/// entries); never content, never replicated.
pub const USAGE_PREFIX: &str = "usage/";

/// R2: prefix of the repository entries of every usage run.
pub const USAGE_RUNS_PREFIX: &str = "usage/runs/";

/// R2: the usage count's job (the run in progress, its cursor and the digests it has
/// seen); changed only by compare-and-swap on its etag.
pub fn usage_job() -> String {
    format!("{USAGE_PREFIX}job")
}

/// R2: the last finished usage run's report (JSON): its time, totals and the run whose
/// repository entries hold the per-repository numbers.
pub fn usage_report() -> String {
    format!("{USAGE_PREFIX}report")
}

/// R2: prefix of the repository entries of usage run `run`.
pub fn usage_entries_prefix(run: u64) -> String {
    format!("{USAGE_RUNS_PREFIX}{run:020}/repos/")
}

/// R2: what usage run `run` counted in `repo` (an empty object; the numbers are in its
/// metadata, so one listing answers a page of repositories).
pub fn usage_entry(run: u64, repo: &RepositoryName) -> String {
    format!("{}{}", usage_entries_prefix(run), repo.as_str())
}

/// The repository a usage entry of run `run` names; `None` for any other key.
pub fn repository_of_usage_entry(run: u64, key: &str) -> Option<RepositoryName> {
    RepositoryName::parse(key.strip_prefix(&usage_entries_prefix(run))?).ok()
}

/// The run a key under [`USAGE_RUNS_PREFIX`] belongs to; `None` for any other key.
pub fn usage_run_of(key: &str) -> Option<u64> {
    key.strip_prefix(USAGE_RUNS_PREFIX)?.split('/').next()?.parse().ok()
}
