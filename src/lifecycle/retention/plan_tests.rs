//! The engine's rules as tables: each case is a repository (tags and manifests with their
//! ages), a policy, and what the plan deletes.

use super::*;
use crate::oci::{Digest, RepositoryName, Tag};

const H: u64 = 3_600_000;
const D: u64 = DAY_MS;
const NOW: u64 = 20_000 * D;
const GRACE: u64 = H;
const OLD: u64 = 100 * D;

fn digest(n: u8) -> Digest {
    format!("sha256:{n:064x}").parse().unwrap()
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).unwrap()
}

/// A tag `name` -> manifest `n`, pushed `age` ms ago.
fn t(name: &str, n: u8, age: u64) -> TagInfo {
    TagInfo { name: tag(name), digest: digest(n), pushed_at_ms: NOW - age }
}

/// Manifest `n`, pushed `age` ms ago.
fn m(n: u8, age: u64) -> ManifestInfo {
    ManifestInfo { digest: digest(n), pushed_at_ms: NOW - age, pulled_at_ms: None, children: vec![], subject: None }
}

fn index(n: u8, age: u64, children: &[u8]) -> ManifestInfo {
    ManifestInfo { children: children.iter().map(|c| digest(*c)).collect(), ..m(n, age) }
}

fn referrer(n: u8, age: u64, subject: u8) -> ManifestInfo {
    ManifestInfo { subject: Some(digest(subject)), ..m(n, age) }
}

fn pulled(n: u8, age: u64, pulled_age: u64) -> ManifestInfo {
    ManifestInfo { pulled_at_ms: Some(NOW - pulled_age), ..m(n, age) }
}

/// The policy written as the fields of one `RETENTION` entry for every repository.
fn rules(fields: &str) -> RetentionRules {
    let comma = if fields.is_empty() { "" } else { ", " };
    RetentionRules::parse(&format!(r#"[{{"repositories": "*"{comma}{fields}}}]"#)).unwrap()
}

fn plan_of(fields: &str, tags: &[TagInfo], manifests: &[ManifestInfo], immutable: &[&str]) -> Plan {
    let is_immutable = |t: &Tag| immutable.contains(&t.as_str());
    let repository = RepositoryName::parse("team/app").unwrap();
    let timing = Timing { now_ms: NOW, grace_ms: GRACE };
    rules(fields).plan(&repository, &Inventory { tags, manifests }, timing, &is_immutable)
}

/// (title, policy fields, tags, immutable tags, the tags deleted).
type TagCase<'a> = (&'a str, &'a str, Vec<TagInfo>, &'a [&'a str], &'a [&'a str]);
/// (title, policy fields, tags, manifests, the manifests deleted).
type ManifestCase<'a> = (&'a str, &'a str, Vec<TagInfo>, Vec<ManifestInfo>, &'a [u8]);

/// Old manifests 1..=9 for the tags to point at.
fn old_manifests() -> Vec<ManifestInfo> {
    (1..=9).map(|n| m(n, OLD)).collect()
}

#[test]
fn tags_are_kept_or_deleted_by_the_rules() {
    let sig_of_1 = "sha256-0000000000000000000000000000000000000000000000000000000000000001.sig";
    let sig_of_2 = "sha256-0000000000000000000000000000000000000000000000000000000000000002.att";
    #[rustfmt::skip]
    let table: &[TagCase] = &[
        ("no keep rule: every tag stays", r#""untagged_older_than_days": 1"#,
            vec![t("a", 1, OLD), t("b", 2, OLD)], &[], &[]),
        ("keep_last 2 keeps the two newest", r#""keep_last": 2"#,
            vec![t("old", 1, 3 * D), t("new", 2, D), t("mid", 3, 2 * D)], &[], &["old"]),
        ("keep_last ties: the name first in byte order counts as newer", r#""keep_last": 2"#,
            vec![t("c", 1, D), t("a", 2, D), t("b", 3, D)], &[], &["c"]),
        ("keep_last 0 deletes every tag", r#""keep_last": 0"#,
            vec![t("a", 1, D), t("b", 2, D)], &[], &["a", "b"]),
        ("keep_last larger than the tags keeps all", r#""keep_last": 10"#,
            vec![t("a", 1, D), t("b", 2, D)], &[], &[]),
        ("keep_tags alone deletes every tag it does not match, latest too", r#""keep_tags": ["v*"]"#,
            vec![t("v1", 1, D), t("latest", 2, 2 * H), t("main", 3, D)], &[], &["latest", "main"]),
        ("keep_tags with ? and exact names", r#""keep_tags": ["v?", "latest"]"#,
            vec![t("v1", 1, D), t("v10", 2, D), t("latest", 3, D)], &[], &["v10"]),
        ("keep_tags and keep_last keep their union", r#""keep_last": 1, "keep_tags": ["v*"]"#,
            vec![t("v1", 1, 5 * D), t("ci-2", 2, D), t("ci-1", 3, 2 * D)], &[], &["ci-1"]),
        ("keep_last counts the tags keep_tags keeps", r#""keep_last": 2, "keep_tags": ["v*"]"#,
            vec![t("v1", 1, D), t("x", 2, 2 * D), t("y", 3, 3 * D)], &[], &["y"]),
        ("an immutable tag is never deleted", r#""keep_last": 0"#,
            vec![t("release", 1, OLD), t("ci", 2, OLD)], &["release"], &["ci"]),
        ("immutable without any tag rule", "",
            vec![t("release", 1, OLD)], &["release"], &[]),
        ("within the grace period: kept", r#""keep_last": 0"#,
            vec![t("fresh", 1, GRACE - 1), t("edge", 2, GRACE), t("past", 3, GRACE + 1)], &[], &["past"]),
        ("pushed in the future (clock skew) counts as age zero", r#""keep_last": 0"#,
            vec![TagInfo { pushed_at_ms: NOW + D, ..t("skew", 1, 0) }], &[], &[]),
        ("pulled within the days: kept", r#""keep_tags": ["v*"], "keep_pulled_within_days": 3"#,
            vec![t("recent", 4, OLD), t("edge", 5, OLD), t("stale", 6, OLD), t("never", 1, OLD)], &[], &["never", "stale"]),
        ("pulls are ignored without keep_pulled_within_days", r#""keep_tags": ["v*"]"#,
            vec![t("recent", 4, OLD)], &[], &["recent"]),
        ("a signing tool's tag follows its kept manifest and is not ranked", r#""keep_last": 1"#,
            vec![t("app", 1, 2 * D), t(sig_of_1, 7, H * 2), t("other", 2, 3 * D)], &[], &["other"]),
        ("a signing tool's tag goes with its deleted manifest", r#""keep_last": 1, "untagged_older_than_days": 1"#,
            vec![t("new", 1, D), t("old", 2, 3 * D), t(sig_of_2, 8, 2 * H)], &[], &["old", sig_of_2]),
        ("the signing tool's tag is kept with an untagged manifest that is kept", r#""keep_last": 0"#,
            vec![t("old", 2, 3 * D), t(sig_of_2, 8, 2 * H)], &[], &["old"]),
        ("a sha256- tag of no manifest here is an ordinary tag",
            r#""keep_last": 1"#,
            vec![t("sha256-00000000000000000000000000000000000000000000000000000000000000ff", 1, D), t("b", 2, 2 * D)], &[], &["b"]),
    ];
    let mut manifests = old_manifests();
    manifests[3] = pulled(4, OLD, 2 * D);
    manifests[4] = pulled(5, OLD, 3 * D);
    manifests[5] = pulled(6, OLD, 3 * D + 1);
    for (title, fields, tags, immutable, deleted) in table {
        let plan = plan_of(fields, tags, &manifests, immutable);
        let got: Vec<&str> = plan.delete_tags().iter().map(|t| t.as_str()).collect();
        assert_eq!(&got, deleted, "{title}");
    }
}

#[test]
fn each_kept_tag_says_why_in_the_documented_order() {
    let tags = [t("release", 1, OLD), t("v2", 2, OLD), t("new", 3, D), t("fresh", 4, H / 2), t("gone", 5, OLD)];
    let plan = plan_of(r#""keep_last": 2, "keep_tags": ["v*", "rel*"]"#, &tags, &old_manifests(), &["release"]);
    let reasons: Vec<(&str, &Verdict)> = plan.tags.iter().map(|d| (d.tag.as_str(), &d.verdict)).collect();
    let pattern = |p: &str| Keep::MatchesKeepTags(crate::oci::Pattern::parse(p).unwrap());
    assert_eq!(
        reasons,
        vec![
            ("fresh", &Verdict::Keep(Keep::WithinGrace)),
            ("gone", &Verdict::Delete(Delete::MatchesNoKeepRule)),
            ("new", &Verdict::Keep(Keep::AmongLast(2))),
            ("release", &Verdict::Keep(Keep::Immutable)),
            ("v2", &Verdict::Keep(pattern("v*"))),
        ]
    );
    assert_eq!(plan.tags[2].digest, digest(3), "a decision names the manifest the tag points at");
}

#[test]
fn manifests_are_kept_or_deleted_by_the_graph_and_their_age() {
    let seven = r#""untagged_older_than_days": 7"#;
    let last1_seven = r#""keep_last": 1, "untagged_older_than_days": 7"#;
    #[rustfmt::skip]
    let table: &[ManifestCase] = &[
        ("without untagged_older_than_days untagged manifests stay", r#""keep_last": 0"#,
            vec![t("a", 1, OLD)], vec![m(1, OLD), m(2, OLD)], &[]),
        ("age boundary: exactly 7 days kept, a millisecond more deleted", seven,
            vec![], vec![m(1, 7 * D), m(2, 7 * D + 1), m(3, D)], &[2]),
        ("a tagged manifest stays however old", seven,
            vec![t("a", 1, OLD)], vec![m(1, OLD)], &[]),
        ("the old manifest of a deleted tag goes in the same run", last1_seven,
            vec![t("new", 1, D), t("old", 2, OLD)], vec![m(1, D), m(2, OLD)], &[2]),
        ("the young manifest of a deleted tag stays until it is old", last1_seven,
            vec![t("new", 1, D), t("old", 2, 2 * D)], vec![m(1, D), m(2, 3 * D)], &[]),
        ("a manifest two tags share stays while one of them is kept", last1_seven,
            vec![t("new", 1, D), t("old", 1, OLD)], vec![m(1, OLD)], &[]),
        ("the children of a tagged index stay however old", seven,
            vec![t("multi", 1, D)], vec![index(1, OLD, &[2, 3]), m(2, OLD), m(3, OLD)], &[]),
        ("the grandchildren of a tagged index stay", seven,
            vec![t("multi", 1, D)], vec![index(1, OLD, &[2]), index(2, OLD, &[3]), m(3, OLD)], &[]),
        ("the children of a deleted index go with it", last1_seven,
            vec![t("new", 4, D), t("old", 1, OLD)], vec![index(1, OLD, &[2, 3]), m(2, OLD), m(3, OLD), m(4, D)], &[1, 2, 3]),
        ("a child shared with a kept index stays", last1_seven,
            vec![t("new", 4, D), t("old", 1, OLD)], vec![index(1, OLD, &[2, 3]), m(2, OLD), m(3, OLD), index(4, OLD, &[3])], &[1, 2]),
        ("a young untagged index keeps its old children (pushed before it)", seven,
            vec![], vec![index(1, H * 2, &[2]), m(2, OLD)], &[]),
        ("grace protects untagged manifests even at 0 days", r#""untagged_older_than_days": 0"#,
            vec![], vec![m(1, GRACE), m(2, GRACE + 1)], &[2]),
        ("an untagged manifest pulled within the days stays", r#""untagged_older_than_days": 1, "keep_pulled_within_days": 2"#,
            vec![], vec![pulled(1, OLD, D), pulled(2, OLD, 3 * D), m(3, OLD)], &[2, 3]),
        ("the referrers of a kept manifest stay however old", seven,
            vec![t("a", 1, D)], vec![m(1, OLD), referrer(2, OLD, 1), referrer(3, OLD, 2)], &[]),
        ("old referrers go with their deleted subject", last1_seven,
            vec![t("new", 4, D), t("old", 1, OLD)], vec![m(1, OLD), referrer(2, OLD, 1), m(4, D)], &[1, 2]),
        ("a young referrer of a deleted subject stays until old", last1_seven,
            vec![t("new", 4, D), t("old", 1, OLD)], vec![m(1, OLD), referrer(2, D, 1), m(4, D)], &[1]),
        ("a kept referrer does not keep its subject", seven,
            vec![], vec![m(1, OLD), referrer(2, D, 1)], &[1]),
        ("a tag of a manifest not in the inventory, a missing child: no harm", seven,
            vec![t("lost", 9, D)], vec![index(1, OLD, &[8])], &[1]),
        ("a cycle (indexes and a referrer naming each other) ends", seven,
            vec![t("a", 1, D)], vec![index(1, OLD, &[2]), ManifestInfo { subject: Some(digest(1)), ..index(2, OLD, &[1]) }, m(3, OLD)], &[3]),
        ("being a referrer of an untagged old index does not keep it", seven,
            vec![t("a", 1, D)], vec![ManifestInfo { subject: Some(digest(2)), ..m(1, OLD) }, index(2, OLD, &[1])], &[2]),
    ];
    for (title, fields, tags, manifests, deleted) in table {
        let plan = plan_of(fields, tags, manifests, &[]);
        let expected: Vec<Digest> = deleted.iter().map(|n| digest(*n)).collect();
        let got: Vec<Digest> = plan.delete_manifests().into_iter().cloned().collect();
        assert_eq!(got, expected, "{title}");
    }
}

#[test]
fn each_manifest_says_why() {
    let tags = [t("app", 1, D), t("old", 5, OLD)];
    let manifests = [index(1, OLD, &[2]), m(2, OLD), referrer(3, OLD, 1), m(4, D), m(5, OLD), m(6, H / 2)];
    let plan = plan_of(r#""keep_tags": ["app"], "untagged_older_than_days": 7"#, &tags, &manifests, &[]);
    let reasons: Vec<Verdict> = plan.manifests.iter().map(|d| d.verdict.clone()).collect();
    assert_eq!(
        reasons,
        vec![
            Verdict::Keep(Keep::TaggedBy(tag("app"))),
            Verdict::Keep(Keep::ChildOf(digest(1))),
            Verdict::Keep(Keep::ReferrerOf(digest(1))),
            Verdict::Keep(Keep::NotOldEnough),
            Verdict::Delete(Delete::UntaggedOlderThan(7)),
            Verdict::Keep(Keep::WithinGrace),
        ]
    );
}

#[test]
fn the_plan_does_not_depend_on_the_input_order() {
    let tags = vec![t("b", 1, D), t("a", 2, D), t("c", 3, 2 * D), t("d", 4, OLD)];
    let manifests =
        vec![index(1, OLD, &[6, 5]), m(2, OLD), m(3, OLD), m(4, OLD), m(5, OLD), m(6, OLD), referrer(7, OLD, 1)];
    let fields = r#""keep_last": 2, "untagged_older_than_days": 1"#;
    let forward = plan_of(fields, &tags, &manifests, &[]);
    let (mut tags_back, mut manifests_back) = (tags.clone(), manifests.clone());
    tags_back.reverse();
    manifests_back.reverse();
    assert_eq!(plan_of(fields, &tags_back, &manifests_back, &[]), forward);
    let names: Vec<&str> = forward.tags.iter().map(|d| d.tag.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(forward.manifests.windows(2).all(|w| w[0].digest < w[1].digest));
    assert_eq!(forward.delete_manifests(), [&digest(3), &digest(4)]);
}

#[test]
fn the_first_matching_policy_applies_and_unmatched_repositories_keep_everything() {
    let rules = RetentionRules::parse(
        r#"[{"repositories": "ci/keep-*"},
            {"repositories": "ci/*", "keep_last": 1},
            {"repositories": "*-tmp", "keep_last": 0}]"#,
    )
    .unwrap();
    let tags = [t("new", 1, D), t("old", 2, 2 * D)];
    let manifests = old_manifests();
    let timing = Timing { now_ms: NOW, grace_ms: GRACE };
    let deleted = |repository: &str| {
        let repository = RepositoryName::parse(repository).unwrap();
        let plan = rules.plan(&repository, &Inventory { tags: &tags, manifests: &manifests }, timing, &|_| false);
        (plan.delete_tags().into_iter().map(|t| t.to_string()).collect::<Vec<_>>(), plan)
    };
    #[rustfmt::skip]
    let table: &[(&str, &[&str])] = &[
        ("ci/keep-me", &[]),     // the rule-less policy first exempts it
        ("ci/app", &["old"]),    // "ci/*"
        ("ci/a/b", &["old"]),    // `*` spans `/`
        ("ci/x-tmp", &["old"]),  // "ci/*" matches before "*-tmp"
        ("x/y-tmp", &["new", "old"]),
        ("prod/app", &[]),       // no policy: everything stays
    ];
    for (repository, expected) in table {
        assert_eq!(deleted(repository).0, *expected, "{repository}");
    }
    let (_, unmatched) = deleted("prod/app");
    assert!(unmatched.tags.iter().all(|d| d.verdict == Verdict::Keep(Keep::NoPolicy)));
    assert!(unmatched.manifests.iter().all(|d| d.verdict == Verdict::Keep(Keep::NoPolicy)));
    assert_eq!(unmatched.manifests.len(), 9);
    let policy = rules.policy_for(&RepositoryName::parse("ci/app").unwrap()).unwrap();
    assert_eq!(policy.repositories.as_str(), "ci/*");
}
