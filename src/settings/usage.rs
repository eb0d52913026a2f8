//! The storage usage count's settings (part of the lifecycle feature): whether it runs,
//! the budget of one step and how often the cron trigger starts a run.

use super::vars::Vars;
use super::SettingsError;
use crate::lifecycle::usage::{UsageConfig, DEFAULT_CALLS_PER_STEP, DEFAULT_INTERVAL_MS};

/// Var: `on` or `off`; on by default with one bucket, off (and not yet available) with
/// `REPLICAS`.
pub const USAGE: &str = "USAGE";
/// Var: the most storage calls one usage step (one invocation) makes; default 40 (a Free
/// plan's invocation may make 50), 900 on a Paid plan; at least 10.
pub const USAGE_CALLS_PER_STEP: &str = "USAGE_CALLS_PER_STEP";
/// Var: seconds between the end of one usage run and the start of the next by the cron
/// trigger; default 3600.
pub const USAGE_INTERVAL_SECONDS: &str = "USAGE_INTERVAL_SECONDS";

/// The fewest calls a step may be given: the job's read and save, a repository's entry
/// and the next catalog entry, and room to move.
pub const MIN_CALLS_PER_STEP: u64 = 10;

const CALLS_HINT: &str = "set at most the calls one invocation may make, e.g. 40 on the Free plan (the default) or \
                          900 on a Paid plan; at least 10";
const INTERVAL_HINT: &str = "set the seconds between runs, e.g. 3600 (the default)";

/// Reads the usage count's settings (all of them, also while it is off); `None` when off.
pub fn read(vars: &Vars, replicated: bool) -> Result<Option<UsageConfig>, SettingsError> {
    let on =
        match vars.text(USAGE).as_deref() {
            None => !replicated,
            Some("on") if replicated => return Err(SettingsError::new(
                USAGE,
                "the usage count does not run with REPLICAS yet (it would count one replica's copy); set USAGE to off \
                 or remove it",
            )),
            Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(SettingsError::new(USAGE, format!("{other:?} is neither on nor off; set on or off")))
            }
        };
    let calls_per_step = vars.number(USAGE_CALLS_PER_STEP, "calls", CALLS_HINT)?.unwrap_or(DEFAULT_CALLS_PER_STEP);
    if calls_per_step < MIN_CALLS_PER_STEP {
        return Err(SettingsError::new(USAGE_CALLS_PER_STEP, format!("{calls_per_step} is too few; {CALLS_HINT}")));
    }
    let interval_ms = vars.seconds_as_ms(USAGE_INTERVAL_SECONDS, INTERVAL_HINT)?.unwrap_or(DEFAULT_INTERVAL_MS);
    Ok(on.then_some(UsageConfig { calls_per_step, interval_ms }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn parse(pairs: &[(&str, &str)], replicated: bool) -> Result<Option<UsageConfig>, SettingsError> {
        read(&Vars::new(&lookup_in(pairs)), replicated)
    }

    #[test]
    fn on_by_default_hourly_within_the_free_plan() {
        assert_eq!(parse(&[], false).unwrap(), Some(UsageConfig { calls_per_step: 40, interval_ms: 3_600_000 }));
        let tuned = [(USAGE_CALLS_PER_STEP, "900"), (USAGE_INTERVAL_SECONDS, "0")];
        assert_eq!(parse(&tuned, false).unwrap(), Some(UsageConfig { calls_per_step: 900, interval_ms: 0 }));
        assert_eq!(parse(&[(USAGE, "off")], false).unwrap(), None);
    }

    #[test]
    fn off_with_replicas_and_refused_on_with_them() {
        assert_eq!(parse(&[], true).unwrap(), None);
        assert_eq!(parse(&[(USAGE, "on")], true).unwrap_err().var, USAGE);
    }

    #[test]
    fn bad_values_name_the_var() {
        assert_eq!(parse(&[(USAGE, "yes")], false).unwrap_err().var, USAGE);
        assert_eq!(parse(&[(USAGE_CALLS_PER_STEP, "9")], false).unwrap_err().var, USAGE_CALLS_PER_STEP);
        assert_eq!(parse(&[(USAGE_INTERVAL_SECONDS, "hourly")], false).unwrap_err().var, USAGE_INTERVAL_SECONDS);
        assert_eq!(parse(&[(USAGE, "off"), (USAGE_CALLS_PER_STEP, "x")], false).unwrap_err().var, USAGE_CALLS_PER_STEP);
    }
}
