//! `RETENTION` parsing: what a good value gives, and for each mistake the message that
//! names the policy, the field and the fix.

use super::*;
use crate::oci::Pattern;

fn pattern(text: &str) -> Pattern {
    Pattern::parse(text).unwrap()
}

#[test]
fn the_documented_example_parses() {
    let json = r#"[{"repositories": "ci/*", "keep_last": 10, "keep_tags": ["v*", "latest"],
                    "untagged_older_than_days": 7, "keep_pulled_within_days": null},
                   {"repositories": "*", "untagged_older_than_days": 30, "keep_pulled_within_days": 90}]"#;
    let rules = RetentionRules::parse(json).unwrap();
    assert_eq!(
        rules.policies(),
        [
            Policy {
                repositories: pattern("ci/*"),
                keep_last: Some(10),
                keep_tags: vec![pattern("v*"), pattern("latest")],
                untagged_older_than_days: Some(7),
                keep_pulled_within_days: None,
            },
            Policy {
                repositories: pattern("*"),
                keep_last: None,
                keep_tags: vec![],
                untagged_older_than_days: Some(30),
                keep_pulled_within_days: Some(90),
            },
        ]
    );
    assert!(rules.policies()[0].deletes_tags());
    assert!(!rules.policies()[1].deletes_tags(), "without keep_last and keep_tags no tag is deleted");
}

#[test]
fn edge_values_parse() {
    #[rustfmt::skip]
    let table: &[(&str, Option<u32>, Option<u32>)] = &[
        (r#"[]"#, None, None),
        (r#"[{"repositories": "a"}]"#, None, None),
        (r#"[{"repositories": "a", "keep_last": null, "keep_tags": null}]"#, None, None),
        (r#"[{"repositories": "a", "keep_last": 0, "untagged_older_than_days": 0}]"#, Some(0), Some(0)),
        (r#"[{"repositories": "a", "keep_last": 100000, "untagged_older_than_days": 36500}]"#, Some(MAX_KEEP_LAST), Some(MAX_DAYS)),
    ];
    for (json, keep_last, days) in table {
        let rules = RetentionRules::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        if let Some(policy) = rules.policies().first() {
            assert_eq!((policy.keep_last, policy.untagged_older_than_days), (*keep_last, *days), "{json}");
        }
    }
}

#[test]
fn each_mistake_names_the_policy_the_field_and_the_fix() {
    let pad = |n: usize| format!("[{}]", vec![r#"{"repositories": "a"}"#; n].join(","));
    let too_many = pad(MAX_POLICIES + 1);
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        ("", "RETENTION: is not valid JSON"),
        ("[{]", "RETENTION: is not valid JSON"),
        (r#"{"repositories": "a"}"#, "RETENTION: must be a list of policies, e.g. [{"),
        (&too_many, "RETENTION: lists 101 policies, at most 100"),
        ("[5]", "policy 1: must be an object with \"repositories\""),
        (r#"[{"keep_last": 1}]"#, "policy 1, repositories: is missing: name the repositories"),
        (r#"[{"repositories": null}]"#, "policy 1, repositories: is missing"),
        (r#"[{"repositories": ["a"]}]"#, "policy 1, repositories: must be one repository pattern as a string, e.g. \"ci/*\"; got [\"a\"]"),
        (r#"[{"repositories": ""}]"#, "policy 1, repositories: a pattern may not be empty"),
        (r#"[{"repositories": "a b"}]"#, "policy 1, repositories: pattern \"a b\" has a character"),
        (r#"[{"repositories": "a"}, {"repositories": "b", "keep_tag": ["v*"]}]"#,
            "policy 2, \"keep_tag\": is not a field of a policy (they are: repositories, keep_last, keep_tags, untagged_older_than_days, keep_pulled_within_days); check its spelling"),
        (r#"[{"repositories": "ci/*", "keep_last": "10"}]"#,
            "policy 1 (\"ci/*\"), keep_last: must be a whole number of tags from 0 to 100000, e.g. 10, or null to not use it; got \"10\""),
        (r#"[{"repositories": "ci/*", "keep_last": -1}]"#, "keep_last: must be a whole number of tags from 0 to 100000, e.g. 10, or null to not use it; got -1"),
        (r#"[{"repositories": "ci/*", "keep_last": 2.5}]"#, "keep_last: must be a whole number of tags"),
        (r#"[{"repositories": "ci/*", "keep_last": 100001}]"#, "got 100001"),
        (r#"[{"repositories": "ci/*", "keep_last": 1e30}]"#, "keep_last: must be a whole number"),
        (r#"[{"repositories": "ci/*", "untagged_older_than_days": 36501}]"#,
            "policy 1 (\"ci/*\"), untagged_older_than_days: must be a whole number of days from 0 to 36500"),
        (r#"[{"repositories": "ci/*", "untagged_older_than_days": true}]"#, "got true"),
        (r#"[{"repositories": "ci/*", "keep_pulled_within_days": 0}]"#,
            "policy 1 (\"ci/*\"), keep_pulled_within_days: must be a whole number of days from 1 to 36500"),
        (r#"[{"repositories": "ci/*", "keep_tags": []}]"#, "policy 1 (\"ci/*\"), keep_tags: is empty: list at least one tag pattern"),
        (r#"[{"repositories": "ci/*", "keep_tags": "v*"}]"#, "keep_tags: must be a list of tag patterns, e.g. [\"v*\", \"latest\"]; got \"v*\""),
        (r#"[{"repositories": "ci/*", "keep_tags": ["v*", 3]}]"#, "keep_tags: each entry must be a tag pattern string such as \"v*\"; got 3"),
        (r#"[{"repositories": "ci/*", "keep_tags": ["v 1"]}]"#, "keep_tags: pattern \"v 1\" has a character"),
        (r#"[{"repositories": "ci/*"}, {"repositories": "ci/*", "keep_last": 1}]"#,
            "policy 2 (\"ci/*\"): never applies: policy 1 (\"ci/*\") matches every repository it would"),
        (r#"[{"repositories": "*"}, {"repositories": "ci/*"}]"#, "policy 2 (\"ci/*\"): never applies: policy 1 (\"*\")"),
        (r#"[{"repositories": "ci/*"}, {"repositories": "ci/app?"}]"#, "policy 2 (\"ci/app?\"): never applies: policy 1 (\"ci/*\")"),
    ];
    for (json, expected) in table {
        let message = RetentionRules::parse(json).map(|_| String::from("(accepted)")).unwrap_or_else(|e| e.to_string());
        assert!(message.contains(expected), "{json}\n  gave: {message}\n  want: {expected}");
    }
}

#[test]
fn a_later_policy_is_refused_only_when_it_can_never_apply() {
    #[rustfmt::skip]
    let table: &[(&str, &str, bool)] = &[
        ("ci/*", "ci/*", true),
        ("**", "anything", true),
        ("ci/*", "ci/app", true),
        ("ci/*", "ci/a*b", true),
        ("ci/*", "ci", false),
        ("ci/*", "*", false),
        ("ci/app", "ci/*", false),
        ("ci/?*", "ci/app", false),
        ("ci/*-tmp", "ci/x-tmp", false),
        ("c*", "?i/app", false),
    ];
    for (earlier, later, refused) in table {
        let json = format!(r#"[{{"repositories": "{earlier}"}}, {{"repositories": "{later}"}}]"#);
        assert_eq!(RetentionRules::parse(&json).is_err(), *refused, "{earlier} then {later}");
    }
}

#[test]
fn no_json_makes_it_panic() {
    let odd = [
        "null",
        "0",
        "\"*\"",
        "[null]",
        "[[]]",
        "[{}]",
        "[{\"repositories\": 1}]",
        "[{\"repositories\": {}}]",
        "[{\"repositories\": \"a\", \"keep_last\": 18446744073709551616}]",
        "\u{0}",
        "[\"\\ud800\"]",
        "[{\"repositories\":\"\u{e9}\"}]",
    ];
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for json in odd.iter().copied().chain([deep.as_str()]) {
        let message = RetentionRules::parse(json).unwrap_err().to_string();
        assert!(message.contains(": "), "{json}: {message}");
    }
}
