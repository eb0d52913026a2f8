//! The garbage collector's settings (part of the lifecycle feature): whether it runs, its
//! grace period, the budget of one step and how often the cron trigger starts a run.

use super::vars::{scaled, Vars};
use super::SettingsError;
use crate::lifecycle::gc::{GcConfig, DEFAULT_CALLS_PER_STEP, DEFAULT_GRACE_MS};

/// Var: `on` or `off`; on by default with one bucket, off by default with `REPLICAS`
/// (where, on, every push needs the home replica: the README says why).
pub const GC: &str = "GC";
/// Var: seconds content stays after a run found it unreachable before a later run may
/// delete it, and so the longest a push may take (see the README); default 3600.
pub const GC_GRACE_SECONDS: &str = "GC_GRACE_SECONDS";
/// Var: the most storage calls one collector step (one invocation) makes; default 40 (a
/// Free plan's invocation may make 50), 900 on a Paid plan; at least 20, and with
/// `REPLICAS` at least 60 per replica (a call may then make three per replica).
pub const GC_CALLS_PER_STEP: &str = "GC_CALLS_PER_STEP";
/// Var: seconds between the end of one run and the start of the next by the cron
/// trigger; default the grace period.
pub const GC_INTERVAL_SECONDS: &str = "GC_INTERVAL_SECONDS";

/// The fewest calls a step may be given: a swept key may take 7, a page's listings 3.
pub const MIN_CALLS_PER_STEP: u64 = 20;

/// With replicas, one call may make this many backend calls per replica (a delete and the
/// record of it), and the collector reserves for that: the fewest calls a step may then be
/// given is [`MIN_CALLS_PER_STEP`] times this per replica.
pub const CALLS_PER_REPLICA: u64 = 3;

const SWITCH_HINT: &str = "set on or off";
const GRACE_HINT: &str = "set the seconds a push may take at most, e.g. 3600 (the default); content unreachable for \
                          that long is deleted";
const CALLS_HINT: &str = "set at most the calls one invocation may make, e.g. 40 on the Free plan (the default) or \
                          900 on a Paid plan; at least 20, and with REPLICAS at least 60 per replica";
const INTERVAL_HINT: &str = "set the seconds between runs, e.g. 3600";

/// Reads the collector's settings (all of them, also while it is off); `None` when off.
/// `replicas`: how many `REPLICAS` declares (0 with one bucket).
pub fn read(vars: &Vars, replicas: usize) -> Result<Option<GcConfig>, SettingsError> {
    let replicated = replicas > 0;
    let on = match vars.text(GC).as_deref() {
        None => !replicated,
        Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(SettingsError::new(GC, format!("{other:?} is neither on nor off; {SWITCH_HINT}"))),
    };
    let grace_ms = match vars.number(GC_GRACE_SECONDS, "seconds", GRACE_HINT)? {
        None => DEFAULT_GRACE_MS,
        Some(0) => {
            return Err(SettingsError::new(
                GC_GRACE_SECONDS,
                format!("0 would delete content a push relies on; {GRACE_HINT}"),
            ))
        }
        Some(s) => scaled(GC_GRACE_SECONDS, s, 1000, "seconds", GRACE_HINT)?,
    };
    let fewest = if replicated { MIN_CALLS_PER_STEP * CALLS_PER_REPLICA * replicas as u64 } else { MIN_CALLS_PER_STEP };
    let calls_per_step = match vars.number(GC_CALLS_PER_STEP, "calls", CALLS_HINT)? {
        Some(calls) => calls,
        None => DEFAULT_CALLS_PER_STEP.max(fewest),
    };
    if calls_per_step < fewest {
        let why = if replicated {
            format!("{calls_per_step} is too few for {replicas} replicas (at least {fewest}); {CALLS_HINT}")
        } else {
            format!("{calls_per_step} is too few; {CALLS_HINT}")
        };
        return Err(SettingsError::new(GC_CALLS_PER_STEP, why));
    }
    let interval_ms = match vars.number(GC_INTERVAL_SECONDS, "seconds", INTERVAL_HINT)? {
        None => grace_ms,
        Some(s) => scaled(GC_INTERVAL_SECONDS, s, 1000, "seconds", INTERVAL_HINT)?,
    };
    // Read and checked even while off, so a bad value shows before it is turned on.
    Ok(on.then_some(GcConfig { grace_ms, calls_per_step, interval_ms }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn parse(pairs: &[(&str, &str)], replicated: bool) -> Result<Option<GcConfig>, SettingsError> {
        read(&Vars::new(&lookup_in(pairs)), if replicated { 3 } else { 0 })
    }

    #[test]
    fn on_by_default_with_an_hour_of_grace() {
        let gc = parse(&[], false).unwrap().unwrap();
        assert_eq!(gc, GcConfig { grace_ms: 3_600_000, calls_per_step: 40, interval_ms: 3_600_000 });
        let tuned = [(GC_GRACE_SECONDS, "7200"), (GC_CALLS_PER_STEP, "40"), (GC_INTERVAL_SECONDS, "60")];
        let gc = parse(&tuned, false).unwrap().unwrap();
        assert_eq!(gc, GcConfig { grace_ms: 7_200_000, calls_per_step: 40, interval_ms: 60_000 });
        assert_eq!(parse(&[(GC, "off")], false).unwrap(), None);
    }

    #[test]
    fn off_by_default_with_replicas_and_on_when_asked_with_a_budget_for_them() {
        assert_eq!(parse(&[], true).unwrap(), None);
        let gc = parse(&[(GC, "on")], true).unwrap().unwrap();
        assert_eq!(gc.calls_per_step, 180, "three calls per replica for three replicas, 20 times");
        let paid = parse(&[(GC, "on"), (GC_CALLS_PER_STEP, "900")], true).unwrap().unwrap();
        assert_eq!(paid.calls_per_step, 900);
        let few = parse(&[(GC, "on"), (GC_CALLS_PER_STEP, "40")], true).unwrap_err();
        assert_eq!(few.var, GC_CALLS_PER_STEP);
        assert!(few.problem.contains("at least 180"), "{}", few.problem);
    }

    #[test]
    fn bad_values_name_the_var() {
        assert_eq!(parse(&[(GC, "yes")], false).unwrap_err().var, GC);
        assert_eq!(parse(&[(GC_GRACE_SECONDS, "0")], false).unwrap_err().var, GC_GRACE_SECONDS);
        assert_eq!(parse(&[(GC_CALLS_PER_STEP, "10")], false).unwrap_err().var, GC_CALLS_PER_STEP);
        assert_eq!(parse(&[(GC_INTERVAL_SECONDS, "soon")], false).unwrap_err().var, GC_INTERVAL_SECONDS);
    }
}
