//! What the cron trigger runs, in one list: each feature contributes its job here from its
//! settings section (the registry core: upload expiry and repository deletes; replication:
//! the repair), and `edge` runs them in this order (lifecycle: the collector, then the
//! usage count). A later feature (events, ...) adds its variant and its line in
//! [`Settings::scheduled_jobs`].

use super::Settings;

/// One piece of scheduled work, with what it needs from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledJob {
    /// Discard upload sessions idle for longer than this (and abort their R2 multipart
    /// uploads); with replicas, in every replica.
    ExpireUploads { idle_ms: u64 },
    /// Re-send replication changes pending for longer than this, and compare the replicas'
    /// content to enqueue whatever one of them misses.
    RepairReplicas { resend_after_ms: u64 },
    /// A step of every repository deletion in progress, within this many storage calls in
    /// all; with one bucket (repository delete is not offered with replicas).
    DeleteRepositories { calls_per_step: u64 },
    /// One step of the garbage collector (starting a run when one is due), whose runs
    /// apply the retention policies first when some are set.
    CollectGarbage {
        gc: crate::lifecycle::gc::GcConfig,
        retention: Option<crate::lifecycle::retention::RetentionConfig>,
    },
    /// One step of the storage usage count (starting a run when one is due). It shares
    /// the invocation's budget with the collector: it steps only when the collector did
    /// not (no run in progress, or the collector off).
    CountUsage(crate::lifecycle::usage::UsageConfig),
}

impl Settings {
    /// The cron trigger's jobs, in the order they run.
    pub fn scheduled_jobs(&self) -> Vec<ScheduledJob> {
        let mut jobs = vec![ScheduledJob::ExpireUploads { idle_ms: self.registry.upload_expiry_ms() }];
        if let Some(replication) = &self.replication {
            jobs.push(ScheduledJob::RepairReplicas { resend_after_ms: replication.resend_after_ms });
        }
        if self.registry.config.repository_deletes {
            let calls_per_step = self.registry.config.repository_delete_calls_per_step;
            jobs.push(ScheduledJob::DeleteRepositories { calls_per_step });
        }
        if let Some(gc) = self.gc {
            jobs.push(ScheduledJob::CollectGarbage { gc, retention: self.retention.clone() });
        }
        if let Some(usage) = self.usage {
            jobs.push(ScheduledJob::CountUsage(usage));
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(&lookup_in(pairs)).unwrap()
    }

    #[test]
    fn one_bucket_expires_uploads_deletes_repositories_collects_garbage_then_counts_usage() {
        let jobs = settings(&[("UPLOAD_EXPIRY_SECONDS", "5"), ("GC_GRACE_SECONDS", "60")]).scheduled_jobs();
        let gc = crate::lifecycle::gc::GcConfig { grace_ms: 60_000, calls_per_step: 40, interval_ms: 60_000 };
        let usage = crate::lifecycle::usage::UsageConfig { calls_per_step: 40, interval_ms: 3_600_000 };
        let deletes = ScheduledJob::DeleteRepositories { calls_per_step: 40 };
        let expire = ScheduledJob::ExpireUploads { idle_ms: 5000 };
        assert_eq!(
            jobs,
            vec![
                expire.clone(),
                deletes.clone(),
                ScheduledJob::CollectGarbage { gc, retention: None },
                ScheduledJob::CountUsage(usage)
            ]
        );
        let off = settings(&[("UPLOAD_EXPIRY_SECONDS", "5"), ("GC", "off"), ("USAGE", "off")]).scheduled_jobs();
        assert_eq!(off, vec![expire, deletes]);
    }

    #[test]
    fn replicas_add_the_repair_after_the_expiry() {
        let replicas = r#"[{"name": "us", "binding": "BLOBS_US", "region": "enam", "home": true}]"#;
        let jobs = settings(&[("REPLICAS", replicas), ("REPLICATION_RESEND_AFTER_SECONDS", "0")]).scheduled_jobs();
        assert_eq!(
            jobs,
            vec![
                ScheduledJob::ExpireUploads { idle_ms: 86_400_000 },
                ScheduledJob::RepairReplicas { resend_after_ms: 0 }
            ]
        );
    }
}
