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
}
