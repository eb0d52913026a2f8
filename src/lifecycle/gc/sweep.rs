//! The sweep: pages through the content (blobs, then manifests' bytes) in key order and
//! merges each page with the run's live marks and the collector's states over the same
//! range (three sorted listings, so memory stays bounded by a page). Content no mark
//! names is condemned; content condemned at least the grace period before this run's
//! mark started is killed (its state swapped to dead) and only then deleted: see
//! `storage::content_state` for why a push can never lose content it relies on.

use super::job::{Job, Phase};
use super::meter::Meter;
use crate::storage::content_state::ContentState;
use crate::storage::fields::{GC_STATE, POINTER_SIZE, POINTER_TARGET};
use crate::storage::{keys, BlobStore, ListedKey, MetaStore, Metadata, StorageResult};
use std::collections::BTreeSet;

/// What the sweep pages through, in order: the content, then the objects upload sessions
/// assembled into. One of those is live while a live blob's pointer names it (marked when
/// the sweep passes the pointer) or its session is still open; an object neither names is
/// an upload's leftover (a session that failed between assembling and publishing).
const SWEPT: [&str; 4] =
    [keys::CONTENT_PREFIXES[0], keys::CONTENT_PREFIXES[1], keys::CONTENT_PREFIXES[2], keys::ASSEMBLED_PREFIX];

/// Whether the session an assembled object belongs to is still open (its state exists);
/// true when the key names no session (kept: not this release's to judge).
async fn in_session<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, key: &str) -> StorageResult<bool> {
    let Some(session) = keys::session_of(key) else { return Ok(true) };
    Ok(meter.head(&keys::upload_state(&session)).await?.is_some())
}

/// Content keys swept per page.
const PAGE: usize = 200;

/// The calls one swept key may take at most (session, state, kill, size, dead mark, two
/// deletes, the index entry; or the mark of a live pointer's target).
pub(super) const PER_KEY: u64 = 8;

/// The longest one step may run (a cron invocation's wall-clock limit is 15 minutes).
pub const MAX_STEP_MS: u64 = 15 * 60_000;

/// Margin for clocks of different isolates: a condemnation counts from this much later
/// (or from a grace period later, when the grace period is shorter, as in tests).
pub const CLOCK_SKEW_MS: u64 = 60_000;

/// Advances the sweep as far as the budget allows; `Ok(true)` once every prefix is swept.
pub async fn step<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, job: &mut Job, now: u64) -> StorageResult<bool> {
    loop {
        let Phase::Sweep { prefix, after } = &job.phase else { return Ok(true) };
        let (index, after) = (*prefix, after.clone());
        let Some(prefix) = SWEPT.get(index).copied() else { return Ok(true) };
        if !meter.affords(3 + PER_KEY) {
            return Ok(false);
        }
        let page = meter.list(prefix, after.as_deref(), PAGE).await?;
        let Some(last) = page.keys.last().map(|k| k.key.clone()) else {
            job.phase = Phase::Sweep { prefix: index + 1, after: None };
            continue;
        };
        let live = range(
            meter,
            &keys::gc_live(job.run, prefix),
            after.as_deref().map(|a| keys::gc_live(job.run, a)),
            &keys::gc_live(job.run, &last),
        )
        .await?;
        let states = range(
            meter,
            &keys::content_state(prefix),
            after.as_deref().map(keys::content_state),
            &keys::content_state(&last),
        )
        .await?;
        let live: BTreeSet<&str> = live.iter().filter_map(|k| keys::content_of_mark(job.run, "live", &k.key)).collect();
        let live: BTreeSet<String> = live.into_iter().map(str::to_owned).collect();
        let states: BTreeSet<String> =
            states.iter().filter_map(|k| keys::content_of_state(&k.key)).map(str::to_owned).collect();
        for entry in page.keys {
            if !meter.affords(PER_KEY) {
                return Ok(false);
            }
            let has_state = states.contains(&entry.key);
            let live = live.contains(&entry.key)
                || (prefix == keys::ASSEMBLED_PREFIX && in_session(meter, &entry.key).await?);
            sweep_key(meter, job, &entry, live, has_state, now).await?;
            job.phase = Phase::Sweep { prefix: index, after: Some(entry.key) };
        }
    }
}

/// Every key under `prefix` after `after` up to `until` (inclusive).
async fn range<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    prefix: &str,
    after: Option<String>,
    until: &str,
) -> StorageResult<Vec<ListedKey>> {
    let mut found = Vec::new();
    let mut after = after;
    loop {
        let page = meter.list(prefix, after.as_deref(), 1000).await?;
        let past = page.keys.last().is_none_or(|k| k.key.as_str() >= until);
        let next = page.keys.last().map(|k| k.key.clone());
        found.extend(page.keys.into_iter().filter(|k| k.key.as_str() <= until));
        match (page.truncated && !past, next) {
            (true, Some(last)) => after = Some(last),
            _ => return Ok(found),
        }
    }
}

async fn sweep_key<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    entry: &ListedKey,
    live: bool,
    has_state: bool,
    now: u64,
) -> StorageResult<()> {
    let content = entry.key.as_str();
    let state = if has_state { meter.state(content).await? } else { ContentState::Absent };
    if live {
        if let Some(target) = POINTER_TARGET.get(&entry.metadata) {
            // The assembled object a live blob's pointer names is live too.
            meter.put(&keys::gc_live(job.run, target), Vec::new(), Metadata::new()).await?;
        }
        if let ContentState::Condemned { etag, .. } = &state {
            if !job.dry_run && meter.absolve(content, etag).await? {
                job.report.absolved += 1;
            }
        }
        return Ok(());
    }
    if job.report.incomplete.is_some() && !matches!(state, ContentState::Dead { .. }) {
        return Ok(()); // an incomplete mark proves nothing unreachable (dead content is, already)
    }
    let size = size_of(meter, entry).await?;
    job.report.unreachable.add(size);
    match state {
        ContentState::Absent | ContentState::Rescued { .. } => {
            // Stamped as late as the step may run (a step's `now` is its start), so that
            // a condemnation never counts from before it landed.
            let at = now + MAX_STEP_MS.min(job.grace_ms);
            if job.dry_run || meter.condemn(content, &state, at).await? {
                job.report.condemned.add(size);
            }
        }
        ContentState::Condemned { at_ms, etag } => {
            if at_ms + job.grace_ms + CLOCK_SKEW_MS.min(job.grace_ms) > job.run {
                return Ok(()); // condemned too recently: a later run decides
            }
            if job.dry_run {
                job.report.deleted.add(size);
            } else if meter.kill(content, &etag).await? {
                delete(meter, job, entry).await?;
                job.report.deleted.add(size);
            }
        }
        // Left by a step that stopped half-way, or by a run that could not reach every
        // replica (the copy listed now is one it missed): finish what it started.
        ContentState::Dead { .. } if !job.dry_run => {
            delete(meter, job, entry).await?;
            job.report.deleted.add(size);
        }
        ContentState::Dead { .. } => {}
    }
    Ok(())
}

/// Deletes killed content: records it as this run's (for the links and the state to be
/// removed later), then the assembled object a pointer names, the key (in every replica),
/// and a manifest's index entry.
pub(super) async fn delete<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &Job,
    entry: &ListedKey,
) -> StorageResult<()> {
    let dead = Metadata::from([GC_STATE.entry("dead")]);
    meter.put(&keys::gc_dead(job.run, &entry.key), Vec::new(), dead).await?;
    if let Some(target) = POINTER_TARGET.get(&entry.metadata) {
        meter.delete(target).await?;
    }
    meter.delete(&entry.key).await?;
    if let Some(digest) = keys::manifest_digest_of(&entry.key) {
        meter.delete_indexed(&keys::kv_manifest(&digest)).await?;
    }
    Ok(())
}

/// A content key's size: a pointer's recorded size, else the object's (one `HEAD`).
async fn size_of<B: BlobStore, M: MetaStore>(meter: &Meter<'_, B, M>, entry: &ListedKey) -> StorageResult<u64> {
    if let Some(size) = POINTER_SIZE.get(&entry.metadata) {
        return Ok(size);
    }
    Ok(meter.head(&entry.key).await?.map_or(0, |info| info.size))
}
