//! The count, repository by repository in catalog order: its tags (listed, a page of
//! 1,000 per call), then its manifest links, each manifest read once (its own size is its
//! bytes' length, its config and layers' sizes are its descriptors'), then the children of
//! its indexes that have no link of their own, then its entry. Every digest goes through
//! the run's [`Seen`] set, so it counts once in the repository and once in the totals.
//!
//! A repository larger than one step is counted over several: the job keeps its listing
//! cursor, its numbers so far and its queued children, and the seen set keeps its digests;
//! the memory this takes is the seen set's (20 bytes per distinct digest in the registry).
//!
//! Manifests are read from R2, the truth: strongly consistent and one call, where KV's
//! copy may lag a fresh push and a miss there would cost a second call.

use super::job::{Job, Phase, Stage};
use super::report;
use super::seen::{Counted, Seen, MAX_SEEN};
use crate::lifecycle::gc::prune::next_repository;
use crate::lifecycle::meter::Meter;
use crate::oci::manifest::{self, ParsedManifest};
use crate::oci::{Digest, MediaType, RepositoryName};
use crate::storage::fields::MANIFEST_MEDIA_TYPE;
use crate::storage::{keys, BlobStore, MetaStore, StorageError, StorageResult};

/// Keys listed per call at most.
const PAGE: usize = 1000;

/// How deep below a manifest link the count follows children without a link of their
/// own (as the collector does).
pub const MAX_DEPTH: u32 = 8;

/// The calls kept for the job's save at the end of the step.
pub const SAVE: u64 = 1;

/// Advances the count as far as the budget allows; `Ok(true)` once every repository is
/// counted.
pub async fn step<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    seen: &mut Seen,
) -> StorageResult<bool> {
    loop {
        // The largest unit of work: a repository's entry and the next catalog entry.
        if !meter.affords(2 + SAVE) {
            return Ok(false);
        }
        if seen.len() > MAX_SEEN {
            job.incomplete = Some(format!("more than {MAX_SEEN} distinct digests: too many to count"));
            return Ok(true);
        }
        let Phase::Count { repo, stage } = &job.phase else { return Ok(true) };
        let (repo, stage) = (repo.clone(), stage.clone());
        let Some(repo) = repo else {
            return match next_repository(meter, None).await? {
                Some(first) => {
                    begin(job, first);
                    continue;
                }
                None => Ok(true),
            };
        };
        let name =
            RepositoryName::parse(&repo).map_err(|e| StorageError::Backend(format!("catalog entry {repo}: {e}")))?;
        if let Some((digest, depth)) = job.tasks.pop() {
            if let Ok(child) = digest.parse::<Digest>() {
                count_manifest(meter, job, seen, &child, None, depth).await?;
            }
            continue;
        }
        match stage {
            Stage::Tags { after } => {
                let page = meter.list(&keys::tags_prefix(&name), after.as_deref(), PAGE).await?;
                job.current.tags += page.keys.len() as u64;
                let stage = match (page.truncated, page.keys.last()) {
                    (true, Some(last)) => Stage::Tags { after: Some(last.key.clone()) },
                    _ => Stage::Manifests { after: None },
                };
                job.phase = Phase::Count { repo: Some(repo), stage };
            }
            Stage::Manifests { after } => {
                // As many links as this step can read: one call each, after this listing.
                let room = meter.budget().saturating_sub(meter.spent() + 1 + SAVE).clamp(1, PAGE as u64);
                let page =
                    meter.list(&keys::repository_manifests_prefix(&name), after.as_deref(), room as usize).await?;
                let mut cursor = after;
                let mut visited_all = true;
                for link in &page.keys {
                    if !meter.affords(1 + SAVE) {
                        visited_all = false;
                        break;
                    }
                    if let Some(digest) = keys::linked_digest_of(&link.key) {
                        let media_type = MANIFEST_MEDIA_TYPE.get(&link.metadata).and_then(MediaType::from_content_type);
                        count_manifest(meter, job, seen, &digest, media_type.as_ref(), 0).await?;
                    }
                    cursor = Some(link.key.clone());
                    if !job.tasks.is_empty() {
                        visited_all = false;
                        break; // the index's children before the next link
                    }
                }
                let stage = match (visited_all && !page.truncated, cursor) {
                    (true, _) => Stage::Finish,
                    (false, cursor) => Stage::Manifests { after: cursor },
                };
                job.phase = Phase::Count { repo: Some(repo), stage };
            }
            Stage::Finish => {
                report::write_entry(meter, job.run, &name, &job.current).await?;
                job.add_repository(&repo);
                match next_repository(meter, Some(&repo)).await? {
                    Some(next) => begin(job, next),
                    None => return Ok(true),
                }
            }
        }
    }
}

/// Starts counting repository `name`.
fn begin(job: &mut Job, name: String) {
    job.ordinal += 1;
    job.current = Default::default();
    job.tasks.clear();
    job.phase = Phase::Count { repo: Some(name), stage: Stage::Tags { after: None } };
}

/// Counts manifest `digest` in the current repository, unless it counted it already:
/// reads it (one call), counts its size and its blobs, and queues its children.
async fn count_manifest<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    seen: &mut Seen,
    digest: &Digest,
    media_type: Option<&MediaType>,
    depth: u32,
) -> StorageResult<()> {
    let counted = seen.count(digest, job.ordinal);
    if counted == Counted::Again {
        return Ok(());
    }
    job.current.manifests += 1;
    if counted == Counted::First {
        job.totals.manifests += 1;
    }
    let parsed = match meter.get_bytes(&keys::manifest(digest)).await? {
        Some((_, bytes)) => {
            let size = bytes.len() as u64;
            add_bytes(job, counted, size, true);
            manifest::parse(&bytes, media_type).ok()
        }
        None => None,
    };
    let Some(parsed) = parsed else {
        job.current.unreadable += 1;
        return Ok(());
    };
    count_references(job, seen, &parsed, depth);
    Ok(())
}

/// Counts a manifest's config and layers, and queues its children (up to [`MAX_DEPTH`]).
fn count_references(job: &mut Job, seen: &mut Seen, parsed: &ParsedManifest, depth: u32) {
    for blob in &parsed.blobs {
        let counted = seen.count(&blob.digest, job.ordinal);
        if counted == Counted::Again {
            continue;
        }
        job.current.blobs += 1;
        if counted == Counted::First {
            job.totals.blobs += 1;
        }
        add_bytes(job, counted, blob.size, false);
    }
    if depth >= MAX_DEPTH {
        if !parsed.manifests.is_empty() {
            job.current.unreadable += parsed.manifests.len() as u64;
        }
        return;
    }
    for child in parsed.manifests.iter().rev() {
        job.tasks.push((child.digest.to_string(), depth + 1));
    }
}

fn add_bytes(job: &mut Job, counted: Counted, size: u64, manifest: bool) {
    let (own, total) = match manifest {
        true => (&mut job.current.manifest_bytes, &mut job.totals.manifest_bytes),
        false => (&mut job.current.blob_bytes, &mut job.totals.blob_bytes),
    };
    *own += size;
    job.current.bytes += size;
    if counted == Counted::First {
        *total += size;
        job.totals.bytes += size;
    }
}
