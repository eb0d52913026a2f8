//! The pull-through cache's keys: when each cached tag was last confirmed upstream.

use super::repository_own_prefix;
use crate::oci::{Digest, RepositoryName, Tag};

/// R2: when the cached `tag` of `repo` was last fetched or confirmed upstream (its
/// `checked-at` field), among the repository's own keys, so that a repository delete
/// removes it with them (the collector and the usage count list other prefixes, and
/// ignore it). Written plainly: every writer writes the time it checked, so two writers
/// racing leave a time at which the tag was confirmed, whichever lands last.
pub fn upstream_checked(repo: &RepositoryName, tag: &Tag) -> String {
    format!("{}upstream/checked/{}", repository_own_prefix(repo), tag.as_str())
}

/// R2: the lease of the request fetching the blob `digest` of `repo` from its upstream
/// (its `started-at` field), created create-only: concurrent misses of the blob wait for
/// that request's copy instead of fetching it again. Only an economy: every copy is
/// verified, so a lease lost, stale or deleted by another request costs a second transfer,
/// never a wrong byte.
pub fn upstream_fill(repo: &RepositoryName, digest: &Digest) -> String {
    format!("{}upstream/fills/{}/{}", repository_own_prefix(repo), digest.algorithm().as_str(), digest.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_keys_are_pinned() {
        let repo = RepositoryName::parse("hub/library/alpine").unwrap();
        let tag = Tag::parse("3.20").unwrap();
        assert_eq!(upstream_checked(&repo, &tag), "repositories/hub/library/alpine/_upstream/checked/3.20");
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let fill = format!("repositories/hub/library/alpine/_upstream/fills/sha256/{}", "ab".repeat(32));
        assert_eq!(upstream_fill(&repo, &digest), fill);
    }
}
