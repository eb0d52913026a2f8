//! The pull-through cache's keys: when each cached tag was last confirmed upstream.

use super::repository_own_prefix;
use crate::oci::{RepositoryName, Tag};

/// R2: when the cached `tag` of `repo` was last fetched or confirmed upstream (its
/// `checked-at` field), among the repository's own keys, so that a repository delete
/// removes it with them (the collector and the usage count list other prefixes, and
/// ignore it). Written plainly: every writer writes the time it checked, so two writers
/// racing leave a time at which the tag was confirmed, whichever lands last.
pub fn upstream_checked(repo: &RepositoryName, tag: &Tag) -> String {
    format!("{}upstream/checked/{}", repository_own_prefix(repo), tag.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_keys_are_pinned() {
        let repo = RepositoryName::parse("hub/library/alpine").unwrap();
        let tag = Tag::parse("3.20").unwrap();
        assert_eq!(upstream_checked(&repo, &tag), "repositories/hub/library/alpine/_upstream/checked/3.20");
    }
}
