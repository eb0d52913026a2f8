//! Each replica's health as this isolate has seen it: a replica whose operation fails is
//! skipped for a back-off period, then tried again (failback needs no operator), and
//! operations are counted by kind so that tests and the status report can tell which
//! replicas client traffic touched.

use std::cell::RefCell;

/// Back-off after a replica's first failure; it doubles with each failed probe.
pub const DEFAULT_BACKOFF_MS: u64 = 30_000;
/// The longest back-off, however often the probes fail.
pub const MAX_BACKOFF_MS: u64 = 5 * 60_000;

/// Who an operation was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A client's request (routing rules apply).
    Client,
    /// Replication, repair and the status report (every replica, routing switch or not).
    Maintenance,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReplicaHealth {
    /// Skip until this time (ms); 0 when healthy.
    unhealthy_until: u64,
    /// Consecutive failures.
    failures: u32,
    last_error: Option<String>,
    /// When the current outage began (ms), if one is under way.
    down_since: Option<u64>,
    client_ops: u64,
    maintenance_ops: u64,
}

/// A snapshot of one replica's health for the status report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    /// Seconds until the next probe, while unhealthy.
    pub retry_in_seconds: Option<u64>,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub client_ops: u64,
    pub replication_ops: u64,
}

/// The health table of all replicas (indexed like the declaration).
#[derive(Debug)]
pub struct Health {
    replicas: RefCell<Vec<ReplicaHealth>>,
    backoff_ms: u64,
}

impl Health {
    pub fn new(replicas: usize, backoff_ms: u64) -> Self {
        Health { replicas: RefCell::new(vec![ReplicaHealth::default(); replicas]), backoff_ms: backoff_ms.max(1) }
    }

    /// Grows the table when the declaration gained replicas (a redeploy in a live isolate).
    pub fn ensure(&self, replicas: usize) {
        let mut table = self.replicas.borrow_mut();
        if table.len() < replicas {
            table.resize(replicas, ReplicaHealth::default());
        }
    }

    /// Whether `replica` may be routed to at `now`: healthy, or its back-off has passed
    /// (the next operation is the probe).
    pub fn usable(&self, replica: usize, now: u64) -> bool {
        self.replicas.borrow().get(replica).is_none_or(|h| h.unhealthy_until <= now)
    }

    pub fn count(&self, replica: usize, traffic: Traffic) {
        if let Some(h) = self.replicas.borrow_mut().get_mut(replica) {
            match traffic {
                Traffic::Client => h.client_ops += 1,
                Traffic::Maintenance => h.maintenance_ops += 1,
            }
        }
    }

    pub fn succeeded(&self, replica: usize) {
        if let Some(h) = self.replicas.borrow_mut().get_mut(replica) {
            h.unhealthy_until = 0;
            h.failures = 0;
            h.down_since = None;
        }
    }

    /// Marks `replica` unhealthy: skipped for the back-off, which doubles with each failed
    /// probe. Failures while it is already being skipped (operations that were under way,
    /// or replication, which does not skip) do not lengthen the back-off.
    pub fn failed(&self, replica: usize, now: u64, error: &str) {
        if let Some(h) = self.replicas.borrow_mut().get_mut(replica) {
            h.last_error = Some(error.to_owned());
            if h.unhealthy_until > now {
                return;
            }
            let shift = h.failures.min(16);
            let backoff = self.backoff_ms.saturating_mul(1u64 << shift).min(MAX_BACKOFF_MS.max(self.backoff_ms));
            h.failures = h.failures.saturating_add(1);
            h.unhealthy_until = now.saturating_add(backoff);
            h.down_since.get_or_insert(now);
        }
    }

    pub fn report(&self, replica: usize, now: u64) -> HealthReport {
        let table = self.replicas.borrow();
        let h = table.get(replica).cloned().unwrap_or_default();
        let healthy = h.unhealthy_until <= now && h.failures == 0;
        HealthReport {
            healthy,
            retry_in_seconds: (h.unhealthy_until > now).then(|| (h.unhealthy_until - now).div_ceil(1000)),
            consecutive_failures: h.failures,
            last_error: h.last_error,
            client_ops: h.client_ops,
            replication_ops: h.maintenance_ops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backs_off_doubling_then_recovers_on_success() {
        let health = Health::new(2, 1000);
        assert!(health.usable(0, 0));
        health.failed(0, 10_000, "boom");
        assert!(!health.usable(0, 10_999));
        assert!(health.usable(0, 11_000), "probed again after the back-off");
        assert!(health.usable(1, 10_500), "other replicas are unaffected");
        health.failed(0, 10_500, "an operation that was under way");
        assert!(health.usable(0, 11_000), "failures during the back-off do not lengthen it");
        health.failed(0, 11_000, "boom again");
        assert!(!health.usable(0, 12_999), "a failed probe doubles the back-off");
        assert!(health.usable(0, 13_000));
        let report = health.report(0, 12_000);
        assert!(!report.healthy);
        assert_eq!(report.retry_in_seconds, Some(1));
        assert_eq!(report.consecutive_failures, 2);
        health.succeeded(0);
        assert!(health.report(0, 13_000).healthy);
        let mut now = 0;
        for _ in 0..40 {
            health.failed(1, now, "down");
            now += MAX_BACKOFF_MS; // each probe fails again
        }
        assert!(!health.usable(1, now - 1) && health.usable(1, now), "back-off is capped");
    }

    #[test]
    fn counts_client_and_replication_traffic_apart() {
        let health = Health::new(1, 1000);
        health.count(0, Traffic::Client);
        health.count(0, Traffic::Maintenance);
        health.count(0, Traffic::Maintenance);
        let report = health.report(0, 0);
        assert_eq!((report.client_ops, report.replication_ops), (1, 2));
    }
}
