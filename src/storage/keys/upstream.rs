//! The pull-through cache's keys: when each cached tag was last confirmed upstream.

use crate::oci::{RepositoryName, Tag};

/// R2: prefix of the pull-through cache's own records.
pub const UPSTREAM_PREFIX: &str = "upstream/";

/// R2: when the cached `tag` of `repo` was last fetched or confirmed upstream (its
/// `checked-at` field). Written plainly: every writer writes the time it checked, so two
/// writers racing leave a time at which the tag was confirmed, whichever lands last.
pub fn upstream_checked(repo: &RepositoryName, tag: &Tag) -> String {
    format!("{UPSTREAM_PREFIX}checked/{}/_tags/{}", repo.as_str(), tag.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_keys_are_pinned() {
        let repo = RepositoryName::parse("hub/library/alpine").unwrap();
        let tag = Tag::parse("3.20").unwrap();
        assert_eq!(upstream_checked(&repo, &tag), "upstream/checked/hub/library/alpine/_tags/3.20");
    }
}
