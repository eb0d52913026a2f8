//! Immutable tags: rules (the `IMMUTABLE_TAGS` setting, read by `settings::lifecycle`)
//! naming tags that, once pushed, never point at another manifest and are never deleted.
//! A rule matches a tag when its repository pattern matches the repository, one of its tag
//! patterns matches the tag, and none of its exceptions does. The registry enforces them in
//! `manifests.rs` through the methods below; what a refusal says is [`ImmutableRefusal`].
//!
//! The decision is one conditional put: an immutable tag is only ever created
//! ([`PutIf::Absent`]), never overwritten, so of two pushes racing to create it exactly one
//! lands, and the other reads what won. The store decides where the condition holds (with
//! replicas, in the home replica: see `replication::store`).

use super::error::{RegistryError, RegistryResult};
use super::Registry;
use crate::oci::{Digest, Pattern, RepositoryName, Tag};
use crate::storage::fields::{PUSHED_AT, TAG_DIGEST};
use crate::storage::retiring::{self, Landed, Mode};
use crate::storage::{keys, BlobStore, ListedKey, MetaStore, Metadata};
use std::fmt;

/// One rule, as written in `IMMUTABLE_TAGS`:
/// `{"repositories": "release/*", "tags": ["v*"], "except": ["*-rc*"]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutableRule {
    /// The repositories the rule covers.
    pub repositories: Pattern,
    /// The tags it makes immutable; default every tag.
    #[serde(default = "every_tag")]
    pub tags: Vec<Pattern>,
    /// Tags it leaves mutable even when a [`Self::tags`] pattern matches; default none.
    #[serde(default)]
    pub except: Vec<Pattern>,
}

fn every_tag() -> Vec<Pattern> {
    vec![Pattern::parse("*").expect("\"*\" is a valid pattern")]
}

impl ImmutableRule {
    /// Whether the rule makes `tag` of `repo` immutable.
    pub fn covers(&self, repo: &str, tag: &str) -> bool {
        self.repositories.matches(repo)
            && self.tags.iter().any(|p| p.matches(tag))
            && !self.except.iter().any(|p| p.matches(tag))
    }
}

impl fmt::Display for ImmutableRule {
    /// `IMMUTABLE_TAGS rule "release/*" tags ["v*"] except ["*-rc*"]`, as a refusal names it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |patterns: &[Pattern]| {
            let quoted: Vec<String> = patterns.iter().map(|p| format!("{:?}", p.as_str())).collect();
            format!("[{}]", quoted.join(", "))
        };
        write!(f, "IMMUTABLE_TAGS rule {:?} tags {}", self.repositories.as_str(), list(&self.tags))?;
        if !self.except.is_empty() {
            write!(f, " except {}", list(&self.except))?;
        }
        Ok(())
    }
}

/// Every immutability rule; none by default (every tag may move and be deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImmutableTags {
    pub rules: Vec<ImmutableRule>,
}

impl ImmutableTags {
    /// The first rule that makes `tag` of `repo` immutable, if any.
    pub fn rule_for(&self, repo: &RepositoryName, tag: &Tag) -> Option<&ImmutableRule> {
        self.rules.iter().find(|rule| rule.covers(repo.as_str(), tag.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// What an immutable tag refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A push that would move the tag from the manifest it points at.
    Move { current: Digest },
    /// A delete of the tag.
    DeleteTag,
    /// A delete of the manifest the tag points at.
    DeleteManifest(Digest),
}

/// A change an immutable tag refused: the tag, its repository, the rule, and what was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableRefusal {
    pub repo: String,
    pub tag: String,
    /// The rule as [`ImmutableRule`]'s `Display` names it.
    pub rule: String,
    pub refused: Refused,
}

impl ImmutableRefusal {
    pub fn new(repo: &RepositoryName, tag: &Tag, rule: &ImmutableRule, refused: Refused) -> Self {
        ImmutableRefusal { repo: repo.to_string(), tag: tag.to_string(), rule: rule.to_string(), refused }
    }
}

impl fmt::Display for ImmutableRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ImmutableRefusal { repo, tag, rule, refused } = self;
        match refused {
            Refused::Move { current } => {
                write!(f, "tag {tag} of {repo} is immutable ({rule}) and points at {current}; push a new tag instead")
            }
            Refused::DeleteTag => write!(f, "tag {tag} of {repo} is immutable ({rule}) and cannot be deleted"),
            Refused::DeleteManifest(digest) => write!(
                f,
                "manifest {digest} cannot be deleted: tag {tag} of {repo} points at it and is immutable ({rule})"
            ),
        }
    }
}

impl<B: BlobStore, M: MetaStore> Registry<B, M> {
    /// Refuses, before the push writes anything, a push that would move one of `tags`
    /// that is immutable and already points elsewhere. Only a shortcut: the conditional
    /// put in [`Self::write_tag`] is what decides.
    pub(super) async fn refuse_moving_immutable_tags(
        &self,
        repo: &RepositoryName,
        tags: &[Tag],
        digest: &Digest,
    ) -> RegistryResult<()> {
        for tag in tags {
            if let Some(rule) = self.config.immutable_tags.rule_for(repo, tag) {
                self.refuse_if_elsewhere(repo, tag, rule, digest).await?;
            }
        }
        Ok(())
    }

    /// Points `tag` at `digest` with `pointer` as its metadata, yielding to retention while
    /// it deletes the tag (`storage::retiring`). A mutable tag replaces what is there. An
    /// immutable one is created only if absent; when that did not land, the tag
    /// already exists (maybe written by a push racing this one): pointing at `digest` is
    /// fine (a re-push), anything else is refused.
    pub(super) async fn write_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
        pointer: Metadata,
    ) -> RegistryResult<()> {
        let key = keys::tag(repo, tag);
        // The time in the bytes too: every push changes the etag retention swaps on.
        let pushed_at = PUSHED_AT.get(&pointer).unwrap_or_default();
        let body = format!("{digest}\npushed at {pushed_at}").into_bytes();
        let Some(rule) = self.config.immutable_tags.rule_for(repo, tag) else {
            self.put_yielding(&key, body, pointer, Mode::Overwrite).await?;
            return Ok(());
        };
        if let Landed::Written(_) = self.put_yielding(&key, body, pointer, Mode::CreateOnly).await? {
            return Ok(());
        }
        // Not created, yet absent now: removed in between (a repository delete). Retrying
        // decides again.
        if !self.refuse_if_elsewhere(repo, tag, rule, digest).await? {
            return Err(backend(format!("tag {tag} of {repo} changed while it was written; retry the push")));
        }
        Ok(())
    }

    /// Refuses a delete of `tag` when it is immutable.
    pub(super) fn refuse_deleting_tag(&self, repo: &RepositoryName, tag: &Tag) -> RegistryResult<()> {
        match self.config.immutable_tags.rule_for(repo, tag) {
            Some(rule) => Err(RegistryError::Immutable(ImmutableRefusal::new(repo, tag, rule, Refused::DeleteTag))),
            None => Ok(()),
        }
    }

    /// Refuses a delete of the manifest `digest` when one of `pointing` (the tags that
    /// point at it, as listed) is immutable.
    pub(super) fn refuse_deleting_tagged(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        pointing: &[ListedKey],
    ) -> RegistryResult<()> {
        let prefix = keys::tags_prefix(repo);
        for entry in pointing {
            let Some(tag) = entry.key.strip_prefix(&prefix).and_then(|name| Tag::parse(name).ok()) else { continue };
            if let Some(rule) = self.config.immutable_tags.rule_for(repo, &tag) {
                let refused = Refused::DeleteManifest(digest.clone());
                return Err(RegistryError::Immutable(ImmutableRefusal::new(repo, &tag, rule, refused)));
            }
        }
        Ok(())
    }

    /// Refuses when `tag` (immutable by `rule`) points at a manifest other than `digest`,
    /// as read where conditional puts are decided. `Ok(false)` when the tag is absent.
    async fn refuse_if_elsewhere(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        rule: &ImmutableRule,
        digest: &Digest,
    ) -> RegistryResult<bool> {
        let info = self.blobs.head_for_condition(&keys::tag(repo, tag)).await?;
        let Some(info) = info.filter(|i| !retiring::is_marker(&i.metadata)) else { return Ok(false) };
        match TAG_DIGEST.get(&info.metadata).and_then(|d| d.parse::<Digest>().ok()) {
            Some(current) if current == *digest => Ok(true),
            Some(current) => {
                Err(RegistryError::Immutable(ImmutableRefusal::new(repo, tag, rule, Refused::Move { current })))
            }
            None => Err(backend(format!("tag {tag} of {repo} exists but names no readable digest"))),
        }
    }
}

fn backend(message: String) -> RegistryError {
    RegistryError::Storage(crate::storage::StorageError::Backend(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> ImmutableRule {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_rule_covers_matching_tags_of_matching_repositories_but_not_its_exceptions() {
        let r = rule(r#"{"repositories": "release/*", "tags": ["v*"], "except": ["*-rc*"]}"#);
        let table = [
            ("release/app", "v1", true),
            ("release/a/b", "v1.2.3", true),
            ("release/app", "v1.0-rc1", false),
            ("release/app", "latest", false),
            ("dev/app", "v1", false),
            ("release", "v1", false),
        ];
        for (repo, tag, expected) in table {
            assert_eq!(r.covers(repo, tag), expected, "{repo}:{tag}");
        }
        let every = rule(r#"{"repositories": "prod"}"#);
        assert!(every.covers("prod", "anything") && !every.covers("prod2", "x"));
        assert!(every.except.is_empty());
    }

    #[test]
    fn a_refusal_names_the_tag_and_the_rule() {
        let r = rule(r#"{"repositories": "release/*", "tags": ["v*"]}"#);
        let repo = RepositoryName::parse("release/app").unwrap();
        let tag = Tag::parse("v1").unwrap();
        let tags = ImmutableTags { rules: vec![r.clone()] };
        assert_eq!(tags.rule_for(&repo, &tag), Some(&r));
        assert_eq!(tags.rule_for(&repo, &Tag::parse("latest").unwrap()), None);
        let current: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let refusal = ImmutableRefusal::new(&repo, &tag, &r, Refused::Move { current });
        assert_eq!(
            refusal.to_string(),
            format!(
                "tag v1 of release/app is immutable (IMMUTABLE_TAGS rule \"release/*\" tags [\"v*\"]) and points at \
                 sha256:{}; push a new tag instead",
                "a".repeat(64)
            )
        );
        let with_except = rule(r#"{"repositories": "r", "except": ["*-rc*", "dev"]}"#);
        assert_eq!(with_except.to_string(), r#"IMMUTABLE_TAGS rule "r" tags ["*"] except ["*-rc*", "dev"]"#);
    }
}
