//! The worker's settings: every var and secret, read once per isolate into one
//! [`Settings`] value, with one [`SettingsError`] naming the var that is wrong and how to
//! fix it. Plain Rust over a lookup function, so native tests drive it; `edge` supplies the
//! lookup (a Workers var, else a secret of that name) and hands the parsed sections to the
//! core, which never reads the environment.
//!
//! One section per feature, each in its own submodule with the vars it reads:
//!
//! - [`registry`]: the registry core (`MAX_REQUEST_BODY_MB`, `MAX_MANIFEST_REFERENCES`,
//!   `UPLOAD_EXPIRY_SECONDS`, `REPOSITORY_DELETE_CALLS_PER_STEP`);
//! - [`access`]: access control (`AUTH_USERS`, `AUTH_ANONYMOUS`, `AUTH_TOKEN_SECRET`,
//!   `AUTH_SERVICE`); off (the registry runs open) without users or anonymous grants;
//! - [`replication`]: geo-replication (`REPLICAS` and its tuning vars); off without `REPLICAS`;
//! - [`lifecycle`]: what happens to tags after a push (`IMMUTABLE_TAGS`), enforced by the
//!   registry core, whose config gets a copy;
//! - [`gc`]: the garbage collector (`GC`, `GC_GRACE_SECONDS`, `GC_CALLS_PER_STEP`,
//!   `GC_INTERVAL_SECONDS`); on by default with one bucket;
//! - [`usage`]: the storage usage count (`USAGE`, `USAGE_CALLS_PER_STEP`,
//!   `USAGE_INTERVAL_SECONDS`); on by default with one bucket;
//! - [`mirror`]: the pull-through cache (`UPSTREAMS`, `UPSTREAM_CREDENTIALS`,
//!   `UPSTREAM_TAG_TTL_SECONDS`, `UPSTREAM_TIMEOUT_SECONDS`, `MIRROR_HOSTS`); off without
//!   `UPSTREAMS`.
//!
//! A new feature (lifecycle/GC, pull-through, events) adds its submodule, a field of
//! [`Settings`] parsed in [`Settings::from_lookup`], its rows in the README's settings
//! table (a test checks that every var read is there), and, if it has cron work, its
//! [`ScheduledJob`] in [`schedule`].

pub mod access;
pub mod gc;
pub mod lifecycle;
pub mod mirror;
pub mod registry;
pub mod replication;
pub mod retention;
pub mod schedule;
pub mod usage;
mod vars;

pub use lifecycle::LifecycleSettings;
pub use registry::RegistrySettings;
pub use replication::ReplicationSettings;
pub use schedule::ScheduledJob;
pub use vars::{lookup_in, Vars};

use crate::auth::AuthConfig;
use crate::lifecycle::gc::GcConfig;
use crate::lifecycle::usage::UsageConfig;

/// Looks a setting up by name: a Workers var or secret, `None` when neither is set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything the worker is configured with, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The registry core: request body limit, manifest bounds, upload expiry.
    pub registry: RegistrySettings,
    /// Access control; `None` runs the registry open (anyone may push, pull and delete).
    pub access: Option<AuthConfig>,
    /// Geo-replication; `None` with one bucket, `BLOBS`.
    pub replication: Option<ReplicationSettings>,
    /// Lifecycle rules (immutable tags); none by default.
    pub lifecycle: LifecycleSettings,
    /// The garbage collector; `None` when it is off (`GC=off`, or with replicas unless `GC=on`).
    pub gc: Option<GcConfig>,
    /// The retention policies the collector's runs apply; `None` when none are set.
    pub retention: Option<crate::lifecycle::retention::RetentionConfig>,
    /// The storage usage count; `None` when it is off (`USAGE=off`, or with replicas).
    pub usage: Option<UsageConfig>,
    /// The pull-through cache; `None` without `UPSTREAMS`.
    pub mirror: Option<crate::mirror::MirrorConfig>,
}

impl Settings {
    /// Reads and checks every section; the first setting that cannot be used is the error.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Settings, SettingsError> {
        let vars = Vars::new(lookup);
        let mut registry = RegistrySettings::read(&vars)?;
        let access = access::read(&vars)?;
        let replication = ReplicationSettings::read(&vars)?;
        let lifecycle = LifecycleSettings::read(&vars)?;
        let gc = gc::read(&vars, replication.as_ref().map_or(0, |r| r.specs.len()))?;
        let retention = retention::read(&vars, gc.is_some(), replication.is_some())?;
        let usage = usage::read(&vars, replication.is_some())?;
        let mirror = mirror::read(&vars, replication.is_some())?;
        // Each cache prefix gets its own policy after the RETENTION ones.
        let prefixes: Vec<&str> = mirror.iter().flat_map(|m| m.upstreams.iter().map(|u| u.prefix.as_str())).collect();
        let retention = retention::with_cache_policies(&vars, retention, &prefixes, gc.is_some())?;
        // The core enforces immutable tags on every push and delete.
        registry.config.immutable_tags = lifecycle.immutable_tags.clone();
        // Retention runs only on one bucket; only there do pushes yield to it.
        registry.config.yield_to_retention = replication.is_none();
        // Repository delete is offered with one bucket only (README, Garbage collection).
        registry.config.repository_deletes = replication.is_none();
        Ok(Settings { registry, access, replication, lifecycle, gc, retention, usage, mirror })
    }
}

/// A setting that cannot be used. The registry refuses to serve rather than guess (or run
/// open): every request is answered 500 with this text, which names the var.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct SettingsError {
    /// The var or secret at fault.
    pub var: &'static str,
    /// What is wrong with it and how to fix it.
    pub problem: String,
}

impl SettingsError {
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        SettingsError { var, problem: problem.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(&lookup_in(pairs))
    }

    #[test]
    fn nothing_set_is_an_open_single_bucket_registry_with_defaults() {
        let settings = parse(&[]).unwrap();
        assert!(settings.access.is_none());
        assert!(settings.replication.is_none());
        assert_eq!(settings.registry.config.max_request_bytes, None);
        assert_eq!(settings.registry.upload_expiry_seconds, 24 * 3600);
    }

    #[test]
    fn the_error_names_the_var_first() {
        let e = parse(&[("UPLOAD_EXPIRY_SECONDS", "a day")]).unwrap_err();
        assert_eq!(e.var, "UPLOAD_EXPIRY_SECONDS");
        assert!(e.to_string().starts_with("UPLOAD_EXPIRY_SECONDS: \"a day\" is not"), "{e}");
    }

    #[test]
    fn every_section_is_checked() {
        assert_eq!(parse(&[("MAX_REQUEST_BODY_MB", "x")]).unwrap_err().var, "MAX_REQUEST_BODY_MB");
        assert_eq!(parse(&[("AUTH_USERS", "{")]).unwrap_err().var, "AUTH_USERS");
        assert_eq!(parse(&[("REPLICAS", "[]")]).unwrap_err().var, "REPLICAS");
        assert_eq!(parse(&[("IMMUTABLE_TAGS", "{")]).unwrap_err().var, "IMMUTABLE_TAGS");
    }

    #[test]
    fn the_registry_core_gets_the_immutable_tags() {
        let settings = parse(&[("IMMUTABLE_TAGS", r#"[{"repositories": "release/*"}]"#)]).unwrap();
        assert_eq!(settings.lifecycle.immutable_tags.rules.len(), 1);
        assert_eq!(settings.registry.config.immutable_tags, settings.lifecycle.immutable_tags);
        assert!(parse(&[]).unwrap().registry.config.immutable_tags.is_empty());
    }
}
