//! The geo-replication section: the replicas (`REPLICAS`, checked by
//! [`parse_replicas`]), the test hooks, and the timings of health back-off, read fallback,
//! copy retries and repair re-sends. Off, and its other vars unread, without `REPLICAS`.

use super::{SettingsError, Vars};
use crate::replication::{health, parse_replicas, store, ReplicaSpec};
use std::rc::Rc;

/// Var: the replicas, a JSON list (see README, Reliability). Unset: one bucket, `BLOBS`.
pub const REPLICAS: &str = "REPLICAS";
/// Var: `on` enables the fault-injection endpoint and the replica-pinning header. Never
/// set it in a deployment.
pub const REPLICATION_TEST_HOOKS: &str = "REPLICATION_TEST_HOOKS";
/// Var: seconds a failed replica is skipped before it is probed (doubling per failure).
pub const REPLICA_BACKOFF_SECONDS: &str = "REPLICA_BACKOFF_SECONDS";
/// Var: milliseconds a replica read may take before the next replica is tried.
pub const REPLICA_READ_TIMEOUT_MS: &str = "REPLICA_READ_TIMEOUT_MS";
/// Var: seconds after which the repair re-sends a change still pending.
pub const REPLICATION_RESEND_AFTER_SECONDS: &str = "REPLICATION_RESEND_AFTER_SECONDS";
/// Var: the first retry delay of a failed copy, in seconds; later ones grow with its age.
pub const REPLICATION_RETRY_SECONDS: &str = "REPLICATION_RETRY_SECONDS";

/// The default [`ReplicationSettings::resend_after_ms`]: ten minutes.
pub const DEFAULT_RESEND_AFTER_MS: u64 = 600_000;
/// The default [`ReplicationSettings::first_retry_seconds`].
pub const DEFAULT_RETRY_SECONDS: u64 = 10;

/// Replication's section.
#[derive(Debug, Clone)]
pub struct ReplicationSettings {
    /// The declared replicas (valid names, exactly one home, at most 16).
    pub specs: Rc<Vec<ReplicaSpec>>,
    /// The fault-injection endpoint and the replica-pinning header (tests and dev only).
    pub test_hooks: bool,
    /// How long a failed replica is first skipped.
    pub backoff_ms: u64,
    /// How long a replica read may take before the next replica is tried.
    pub read_timeout_ms: u64,
    /// Pending changes last sent longer ago than this are re-sent by the repair.
    pub resend_after_ms: u64,
    /// The first retry delay of a failed copy, at least 1 s.
    pub first_retry_seconds: u64,
}

impl ReplicationSettings {
    /// `None` when `REPLICAS` is unset or blank (replication off).
    pub fn read(vars: &Vars) -> Result<Option<Self>, SettingsError> {
        let Some(json) = vars.text(REPLICAS) else { return Ok(None) };
        let specs = parse_replicas(&json).map_err(|e| SettingsError::new(REPLICAS, e.to_string()))?;
        let backoff = "set how long a failed replica is skipped, e.g. 30";
        let timeout = "set how long a replica read may take, e.g. 5000";
        let resend = "set when the repair re-sends a pending change, e.g. 600";
        let retry = "set the first retry delay of a failed copy, e.g. 10";
        Ok(Some(ReplicationSettings {
            specs: Rc::new(specs),
            test_hooks: vars.on_off(REPLICATION_TEST_HOOKS)?,
            backoff_ms: vars.seconds_as_ms(REPLICA_BACKOFF_SECONDS, backoff)?.unwrap_or(health::DEFAULT_BACKOFF_MS),
            read_timeout_ms: vars
                .number(REPLICA_READ_TIMEOUT_MS, "milliseconds", timeout)?
                .unwrap_or(store::DEFAULT_READ_TIMEOUT_MS),
            resend_after_ms: vars
                .seconds_as_ms(REPLICATION_RESEND_AFTER_SECONDS, resend)?
                .unwrap_or(DEFAULT_RESEND_AFTER_MS),
            first_retry_seconds: vars
                .number(REPLICATION_RETRY_SECONDS, "seconds", retry)?
                .unwrap_or(DEFAULT_RETRY_SECONDS)
                .max(1),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    const TWO: &str = r#"[{"name": "eu", "binding": "BLOBS_EU", "region": "weur", "serves": ["EU"]},
                          {"name": "us", "binding": "BLOBS_US", "region": "enam", "home": true}]"#;

    fn read_with(pairs: &[(&str, &str)]) -> Result<Option<ReplicationSettings>, SettingsError> {
        ReplicationSettings::read(&Vars::new(&lookup_in(pairs)))
    }

    #[test]
    fn off_without_replicas_whatever_else_is_set() {
        assert!(read_with(&[]).unwrap().is_none());
        assert!(read_with(&[(REPLICAS, " "), (REPLICA_BACKOFF_SECONDS, "soon")]).unwrap().is_none());
    }

    #[test]
    fn defaults_and_the_values_the_tests_set() {
        let plain = read_with(&[(REPLICAS, TWO)]).unwrap().unwrap();
        assert_eq!(plain.specs.len(), 2);
        assert!(!plain.test_hooks);
        assert_eq!(plain.backoff_ms, health::DEFAULT_BACKOFF_MS);
        assert_eq!(plain.read_timeout_ms, store::DEFAULT_READ_TIMEOUT_MS);
        assert_eq!(plain.resend_after_ms, DEFAULT_RESEND_AFTER_MS);
        assert_eq!(plain.first_retry_seconds, DEFAULT_RETRY_SECONDS);
        let tuned = read_with(&[
            (REPLICAS, TWO),
            (REPLICATION_TEST_HOOKS, "on"),
            (REPLICATION_RETRY_SECONDS, "0"),
            (REPLICA_BACKOFF_SECONDS, "2"),
            (REPLICATION_RESEND_AFTER_SECONDS, "0"),
            (REPLICA_READ_TIMEOUT_MS, "500"),
        ])
        .unwrap()
        .unwrap();
        assert!(tuned.test_hooks);
        assert_eq!(tuned.first_retry_seconds, 1, "at least a second, as before");
        assert_eq!((tuned.backoff_ms, tuned.resend_after_ms, tuned.read_timeout_ms), (2000, 0, 500));
    }

    #[test]
    fn refusals_name_their_var() {
        let e = read_with(&[(REPLICAS, "[]")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "REPLICAS: declares no replica; declare at least one, or leave it unset for one bucket (BLOBS)"
        );
        let home = read_with(&[(REPLICAS, r#"[{"name": "a", "binding": "B", "region": "r"}]"#)]).unwrap_err();
        assert_eq!(home.to_string(), "REPLICAS: must mark exactly one replica \"home\": true, not 0");
        for var in [
            REPLICA_BACKOFF_SECONDS,
            REPLICA_READ_TIMEOUT_MS,
            REPLICATION_RESEND_AFTER_SECONDS,
            REPLICATION_RETRY_SECONDS,
        ] {
            assert_eq!(read_with(&[(REPLICAS, TWO), (var, "5s")]).unwrap_err().var, var);
        }
        assert_eq!(
            read_with(&[(REPLICAS, TWO), (REPLICATION_TEST_HOOKS, "yes")]).unwrap_err().var,
            REPLICATION_TEST_HOOKS
        );
    }
}
