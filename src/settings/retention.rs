//! The retention settings (part of the lifecycle feature): the policies (`RETENTION`) and
//! whether the collector's runs carry them out or only report (`RETENTION_MODE`). They run
//! as the first phase of a garbage-collection run, so they need the collector on.

use super::vars::Vars;
use super::SettingsError;
use crate::lifecycle::retention::{RetentionConfig, RetentionRules};

/// Var: a JSON list of retention policies (README, Retention); unset or blank for none.
pub const RETENTION: &str = "RETENTION";
/// Var: `dry-run` (the default: runs report what the policies would delete) or `apply`.
pub const RETENTION_MODE: &str = "RETENTION_MODE";

/// Var: the retention policy of each pull-through cache prefix, a policy without
/// `repositories` (it is `<prefix>/*`), applied after the `RETENTION` policies (which
/// win where they match) with `RETENTION_MODE`; `{}` keeps everything.
pub const UPSTREAM_RETENTION: &str = "UPSTREAM_RETENTION";

/// The default [`UPSTREAM_RETENTION`]: what a cache keeps is fetched again on demand.
pub const DEFAULT_UPSTREAM_RETENTION: &str = r#"{"keep_last": 10, "untagged_older_than_days": 7}"#;

const MODE_HINT: &str = "set dry-run (report only, the default) or apply (delete)";

/// Reads the retention settings; `None` when no policy is set. `collecting`: whether the
/// garbage collector runs (retention is one of its phases); `replicated`: whether
/// `REPLICAS` is set (retention does not run there: pushes write tags plainly).
pub fn read(vars: &Vars, collecting: bool, replicated: bool) -> Result<Option<RetentionConfig>, SettingsError> {
    let apply = match vars.text(RETENTION_MODE).as_deref() {
        None | Some("dry-run") => false,
        Some("apply") => true,
        Some(other) => return Err(SettingsError::new(RETENTION_MODE, format!("{other:?} is not a mode; {MODE_HINT}"))),
    };
    let Some(text) = vars.text(RETENTION) else { return Ok(None) };
    let rules = RetentionRules::parse(&text).map_err(|e| SettingsError::new(RETENTION, e.to_string()))?;
    if let Some(policy) = rules.policies().iter().find(|p| p.keep_pulled_within_days.is_some()) {
        let problem = format!(
            "the policy for {:?} sets keep_pulled_within_days, but this release does not record pulls; remove it",
            policy.repositories.as_str()
        );
        return Err(SettingsError::new(RETENTION, problem));
    }
    if replicated {
        return Err(SettingsError::new(
            RETENTION,
            "retention policies do not run with REPLICAS yet (a push to any replica would have to yield to them); \
             remove RETENTION or REPLICAS",
        ));
    }
    if !collecting {
        return Err(SettingsError::new(
            RETENTION,
            "the policies run as a phase of the garbage collector, which is off (GC off, or REPLICAS set); turn \
             it on or remove RETENTION",
        ));
    }
    Ok(Some(RetentionConfig { rules, apply }))
}

/// Adds the pull-through cache's policy for each of `prefixes` to `config` (a dry run
/// unless `RETENTION_MODE` is `apply`), after the `RETENTION` policies; `None` when there
/// are none of either, or the collector is off (and `UPSTREAM_RETENTION` is not set).
pub fn with_cache_policies(
    vars: &Vars,
    config: Option<RetentionConfig>,
    prefixes: &[&str],
    collecting: bool,
) -> Result<Option<RetentionConfig>, SettingsError> {
    let set = vars.text(UPSTREAM_RETENTION);
    if prefixes.is_empty() {
        if set.is_some() {
            return Err(SettingsError::new(
                UPSTREAM_RETENTION,
                "is set but UPSTREAMS is not; set UPSTREAMS or remove it",
            ));
        }
        return Ok(config);
    }
    if !collecting {
        if set.is_some() {
            return Err(SettingsError::new(
                UPSTREAM_RETENTION,
                "the policies run as a phase of the garbage collector, which is off; turn it on or remove it",
            ));
        }
        return Ok(config);
    }
    let text = set.unwrap_or_else(|| DEFAULT_UPSTREAM_RETENTION.to_owned());
    let bad = |problem: String| SettingsError::new(UPSTREAM_RETENTION, problem);
    let template: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("is not JSON ({e}); e.g. {DEFAULT_UPSTREAM_RETENTION}")))?;
    let Some(fields) = template.as_object().filter(|o| !o.contains_key("repositories")) else {
        return Err(bad(format!("must be one policy without repositories, e.g. {DEFAULT_UPSTREAM_RETENTION}")));
    };
    if fields.get("keep_pulled_within_days").is_some_and(|v| !v.is_null()) {
        return Err(bad("sets keep_pulled_within_days, but this release does not record pulls; remove it".into()));
    }
    let mut config = config.unwrap_or_else(|| RetentionConfig {
        rules: RetentionRules::default(),
        apply: vars.text(RETENTION_MODE).as_deref() == Some("apply"),
    });
    for prefix in prefixes {
        let mut policy = fields.clone();
        policy.insert("repositories".into(), serde_json::Value::String(format!("{prefix}/*")));
        let parsed = RetentionRules::parse(&serde_json::Value::Array(vec![policy.into()]).to_string())
            .map_err(|e| bad(e.to_string()))?;
        if let Some(policy) = parsed.policies().first() {
            config.rules.append_unless_covered(policy.clone());
        }
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn parse(pairs: &[(&str, &str)], collecting: bool) -> Result<Option<RetentionConfig>, SettingsError> {
        read(&Vars::new(&lookup_in(pairs)), collecting, false)
    }

    const POLICY: &str = r#"[{"repositories": "ci/*", "keep_last": 3}]"#;

    #[test]
    fn policies_are_a_dry_run_unless_applied() {
        assert_eq!(parse(&[], true).unwrap(), None);
        let dry = parse(&[(RETENTION, POLICY)], true).unwrap().unwrap();
        assert!(!dry.apply);
        assert_eq!(dry.rules.policies()[0].keep_last, Some(3));
        assert!(parse(&[(RETENTION, POLICY), (RETENTION_MODE, "apply")], true).unwrap().unwrap().apply);
        assert!(!parse(&[(RETENTION, POLICY), (RETENTION_MODE, "dry-run")], true).unwrap().unwrap().apply);
    }

    #[test]
    fn what_cannot_run_is_refused_naming_the_var() {
        let cases = [
            (vec![(RETENTION, POLICY), (RETENTION_MODE, "yes")], true, RETENTION_MODE, "not a mode"),
            (vec![(RETENTION, "[{\"keep_last\": 3}]")], true, RETENTION, "repositories"),
            (
                vec![(RETENTION, r#"[{"repositories": "*", "keep_pulled_within_days": 3}]"#)],
                true,
                RETENTION,
                "does not record pulls",
            ),
            (vec![(RETENTION, POLICY)], false, RETENTION, "garbage collector"),
        ];
        for (pairs, collecting, var, says) in cases {
            let e = parse(&pairs, collecting).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}");
            assert!(e.problem.contains(says), "{pairs:?}: {e}");
        }
        let replicated = read(&Vars::new(&lookup_in(&[(RETENTION, POLICY)])), true, true).unwrap_err();
        assert!(replicated.problem.contains("REPLICAS"), "{replicated}");
    }

    fn cached(pairs: &[(&str, &str)], prefixes: &[&str]) -> Result<Option<RetentionConfig>, SettingsError> {
        let lookup = lookup_in(pairs);
        let vars = Vars::new(&lookup);
        with_cache_policies(&vars, read(&vars, true, false)?, prefixes, true)
    }

    #[test]
    fn cache_prefixes_get_their_own_policy_after_the_others() {
        let alone = cached(&[], &["hub", "ghcr"]).unwrap().unwrap();
        let patterns: Vec<&str> = alone.rules.policies().iter().map(|p| p.repositories.as_str()).collect();
        assert_eq!(patterns, ["hub/*", "ghcr/*"]);
        assert_eq!(alone.rules.policies()[0].keep_last, Some(10));
        assert_eq!(alone.rules.policies()[0].untagged_older_than_days, Some(7));
        assert!(!alone.apply, "a dry run unless RETENTION_MODE says apply");
        let applied = cached(&[(RETENTION_MODE, "apply"), (UPSTREAM_RETENTION, "{\"keep_last\": 2}")], &["hub"]);
        let applied = applied.unwrap().unwrap();
        assert!(applied.apply);
        assert_eq!(applied.rules.policies()[0].keep_last, Some(2));
        let with_user = cached(&[(RETENTION, r#"[{"repositories": "hub/big/*", "keep_last": 50}]"#)], &["hub"]);
        let with_user = with_user.unwrap().unwrap();
        let patterns: Vec<&str> = with_user.rules.policies().iter().map(|p| p.repositories.as_str()).collect();
        assert_eq!(patterns, ["hub/big/*", "hub/*"], "the user's policies win where they match");
        let covered = cached(&[(RETENTION, r#"[{"repositories": "*", "keep_last": 5}]"#)], &["hub"]).unwrap().unwrap();
        assert_eq!(covered.rules.policies().len(), 1, "a policy for every name covers the cache too");
        assert_eq!(cached(&[], &[]).unwrap(), None);
    }

    #[test]
    fn a_bad_cache_policy_names_its_var() {
        for value in ["[]", "{\"repositories\": \"x\"}", "{\"keep_last\": -1}", "{\"keep_pulled_within_days\": 3}", "{"]
        {
            assert_eq!(
                cached(&[(UPSTREAM_RETENTION, value)], &["hub"]).unwrap_err().var,
                UPSTREAM_RETENTION,
                "{value}"
            );
        }
        let lookup = lookup_in(&[(UPSTREAM_RETENTION, "{}")]);
        let vars = Vars::new(&lookup);
        assert_eq!(with_cache_policies(&vars, None, &[], true).unwrap_err().var, UPSTREAM_RETENTION);
        assert_eq!(with_cache_policies(&vars, None, &["hub"], false).unwrap_err().var, UPSTREAM_RETENTION);
        let empty = lookup_in(&[]);
        assert_eq!(with_cache_policies(&Vars::new(&empty), None, &["hub"], false).unwrap(), None);
    }
}
