//! The mark: every repository's manifest links are the roots (untagged manifests too:
//! retention, not the collector, removes those). A visited manifest marks its own bytes,
//! its config and layers, and its children; a child without a link of its own in the
//! repository is read and its references marked in turn. A referrer is live while its
//! subject is in the repository; one whose subject is gone, untagged, and linked longer
//! ago than the grace period, is left unmarked: its bytes are condemned and collected like
//! any unreachable content, and its link and referrer entry go with them (the spec lets a
//! referrer arrive before its subject, hence the grace period).
//!
//! Each mark is an empty object named after the content key (`keys::gc_live`), so that the
//! sweep merges two sorted listings instead of holding the registry's content in memory.

use super::job::{Job, Phase, Task};
use super::meter::Meter;
use super::prune::next_repository;
use crate::oci::manifest::{self, ParsedManifest};
use crate::oci::{Digest, MediaType, RepositoryName};
use crate::storage::fields::{MANIFEST_MEDIA_TYPE, PUSHED_AT, TAG_DIGEST};
use crate::storage::{keys, retiring, BlobStore, ListedKey, MetaStore, Metadata, StorageResult};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// How deep below a manifest link the mark follows children that have no link of their
/// own; deeper, the run is marked incomplete and deletes nothing.
pub const MAX_DEPTH: u32 = 8;

/// The calls one step of the mark keeps in hand before it starts a unit of work (the
/// largest unit: a visit, up to 4 calls).
const RESERVE: u64 = 4;

/// Links listed per call.
const PAGE: usize = 100;

/// What the mark keeps within one step.
pub struct Marking {
    marked: HashSet<String>,
    /// The current repository's links listed but not yet visited.
    links: VecDeque<ListedKey>,
    /// The current repository's tagged digests, read once per step when a referrer needs it.
    tagged: Option<BTreeSet<String>>,
}

impl Marking {
    pub fn new(job: &Job) -> Marking {
        Marking { marked: job.recent.iter().cloned().collect(), links: VecDeque::new(), tagged: None }
    }
}

/// Advances the mark as far as the budget allows; `Ok(true)` once it is complete.
pub async fn step<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    now: u64,
    marking: &mut Marking,
) -> StorageResult<bool> {
    loop {
        if !meter.affords(RESERVE) {
            return Ok(false);
        }
        let Phase::Mark { repo, after } = &job.phase else { return Ok(true) };
        let (repo, after) = (repo.clone(), after.clone());
        let Some(repo_name) = repo.as_deref() else {
            match next_repository(meter, None).await? {
                Some(first) => job.phase = Phase::Mark { repo: Some(first), after: None },
                None => return Ok(true),
            }
            continue;
        };
        let name = RepositoryName::parse(repo_name)
            .map_err(|e| crate::storage::StorageError::Backend(format!("catalog entry {repo_name}: {e}")))?;
        if let Some(task) = job.tasks.pop() {
            run_task(meter, job, &name, task, marking).await?;
            continue;
        }
        if let Some(link) = marking.links.pop_front() {
            visit(meter, job, &name, &link, now, marking).await?;
            job.phase = Phase::Mark { repo: repo.clone(), after: Some(link.key) };
            continue;
        }
        let page = meter.list(&keys::repository_manifests_prefix(&name), after.as_deref(), PAGE).await?;
        if page.keys.is_empty() {
            job.report.repositories += 1;
            marking.tagged = None;
            job.phase = match next_repository(meter, Some(repo_name)).await? {
                Some(next) => Phase::Mark { repo: Some(next), after: None },
                None => return Ok(true),
            };
            continue;
        }
        marking.links.extend(page.keys);
    }
}

/// Visits one manifest link: reads the manifest and queues what it reaches.
async fn visit<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    repo: &RepositoryName,
    link: &ListedKey,
    now: u64,
    marking: &mut Marking,
) -> StorageResult<()> {
    let Some(digest) = keys::linked_digest_of(&link.key) else { return Ok(()) };
    // A retiring marker is a link being deleted (or one a failed step left): absent, so it
    // keeps nothing alive (`storage::retiring`). A push that replaces it afterwards is a
    // new link, which the content-state protocol protects like any other.
    if retiring::is_marker(&link.metadata) {
        return Ok(());
    }
    job.report.manifests_visited += 1;
    let media_type = MANIFEST_MEDIA_TYPE.get(&link.metadata).and_then(MediaType::from_content_type);
    let Some(parsed) = read_manifest(meter, job, &digest, media_type.as_ref()).await? else {
        job.tasks.push(Task::Mark { key: keys::manifest(&digest) });
        return Ok(());
    };
    if let Some(subject) = &parsed.subject {
        let pushed_at = PUSHED_AT.get(&link.metadata).unwrap_or(0);
        let young = now.saturating_sub(pushed_at) < job.grace_ms;
        let subject_link = meter.head(&keys::repository_manifest(repo, &subject.digest)).await?;
        if !young && subject_link.is_none_or(|info| retiring::is_marker(&info.metadata)) {
            let tagged = match &marking.tagged {
                Some(tagged) => tagged,
                None => marking.tagged.insert(tagged_digests(meter, repo).await?),
            };
            if !tagged.contains(&digest.to_string()) {
                // Left unmarked, not deleted here: its bytes go through the content-state
                // protocol like any unreachable content (a push of it, or of its subject,
                // rescues it), and prune removes its link and referrer entry once they died.
                job.report.referrers_unreachable += 1;
                return Ok(());
            }
        }
    }
    queue_references(job, &digest, &parsed, 0);
    Ok(())
}

/// Queues the marks of a manifest's bytes, blobs and children.
fn queue_references(job: &mut Job, digest: &Digest, parsed: &ParsedManifest, depth: u32) {
    job.tasks.push(Task::Mark { key: keys::manifest(digest) });
    for blob in &parsed.blobs {
        job.tasks.push(Task::Mark { key: keys::blob(&blob.digest) });
    }
    for child in &parsed.manifests {
        job.tasks.push(Task::Child { digest: child.digest.to_string(), depth: depth + 1 });
    }
}

async fn run_task<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    repo: &RepositoryName,
    task: Task,
    marking: &mut Marking,
) -> StorageResult<()> {
    match task {
        Task::Mark { key } => {
            if marking.marked.insert(key.clone()) {
                meter.put(&keys::gc_live(job.run, &key), Vec::new(), Metadata::new()).await?;
                job.report.keys_marked += 1;
                job.remember(key);
            }
        }
        Task::Child { digest, depth } => {
            let Ok(child) = digest.parse::<Digest>() else { return Ok(()) };
            let link = meter.head(&keys::repository_manifest(repo, &child)).await?;
            if link.is_some_and(|info| !retiring::is_marker(&info.metadata)) {
                return Ok(()); // a root of its own: visited by its link (a marker is not)
            }
            if depth > MAX_DEPTH {
                job.report.incomplete = Some(format!("{repo}: an index nests {child} deeper than {MAX_DEPTH}"));
                return Ok(());
            }
            match read_manifest(meter, job, &child, None).await? {
                Some(parsed) => queue_references(job, &child, &parsed, depth),
                None => job.tasks.push(Task::Mark { key: keys::manifest(&child) }),
            }
        }
    }
    Ok(())
}

/// A manifest's bytes, parsed; `None` when they are missing (nothing to follow) or
/// unreadable, which marks the run incomplete: what they reference is unknown.
async fn read_manifest<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    job: &mut Job,
    digest: &Digest,
    media_type: Option<&MediaType>,
) -> StorageResult<Option<ParsedManifest>> {
    let Some((_, bytes)) = meter.get_bytes(&keys::manifest(digest)).await? else { return Ok(None) };
    match manifest::parse(&bytes, media_type) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(e) => {
            job.report.incomplete =
                Some(format!("manifest {digest} cannot be parsed ({e}): its references are unknown"));
            Ok(None)
        }
    }
}

/// The digests the repository's tags point at.
async fn tagged_digests<B: BlobStore, M: MetaStore>(
    meter: &Meter<'_, B, M>,
    repo: &RepositoryName,
) -> StorageResult<BTreeSet<String>> {
    let mut tagged = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = meter.list(&keys::tags_prefix(repo), after.as_deref(), 1000).await?;
        tagged.extend(page.keys.iter().filter_map(|k| TAG_DIGEST.get(&k.metadata).map(str::to_owned)));
        match (page.truncated, page.keys.last()) {
            (true, Some(last)) => after = Some(last.key.clone()),
            _ => return Ok(tagged),
        }
    }
}
