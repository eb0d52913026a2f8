//! The registry core's settings: the plan's request body limit, how many references one
//! manifest may have, how long an idle upload session is kept, and how big a step of a
//! repository deletion is.

use super::vars::{scaled, Vars};
use super::SettingsError;
use crate::registry::{Config, DEFAULT_MAX_MANIFEST_REFERENCES, MIN_REPOSITORY_DELETE_CALLS_PER_STEP};

/// Var: the plan's request body limit in MB (100 Free/Pro, 200 Business, 500 Enterprise);
/// 0 or unset for none.
pub const MAX_REQUEST_BODY_MB: &str = "MAX_REQUEST_BODY_MB";
/// Var: the most references (blobs, child manifests) one manifest may have; 0 or unset for
/// the default, 400: two calls each stay below the 1,000 calls to Cloudflare services one
/// request may make.
pub const MAX_MANIFEST_REFERENCES: &str = "MAX_MANIFEST_REFERENCES";
/// Var: seconds an upload session may stay idle before the scheduled job discards it.
pub const UPLOAD_EXPIRY_SECONDS: &str = "UPLOAD_EXPIRY_SECONDS";
/// Var: the most storage calls one step of a repository deletion makes.
pub const REPOSITORY_DELETE_CALLS_PER_STEP: &str = "REPOSITORY_DELETE_CALLS_PER_STEP";

/// The default [`RegistrySettings::upload_expiry_seconds`]: a day.
pub const DEFAULT_UPLOAD_EXPIRY_SECONDS: u64 = 24 * 3600;

const BODY_HINT: &str = "set your plan's request body limit (100 on Free and Pro, 200 on Business, 500 on \
                         Enterprise), or 0 for none";
const REFERENCES_HINT: &str = "set the most blobs and child manifests one manifest may reference, or 0 for the \
                               default (400)";
const DELETE_CALLS_HINT: &str = "set the most storage calls one step of a repository deletion makes: at least 7, \
                                 40 (the default) on the Free plan, up to 900 on a Paid one";
const EXPIRY_HINT: &str = "set how long an upload session may stay idle, e.g. 86400 for a day (the default)";

/// The core's section.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// The registry's tunables, with the body limit and the reference bound set.
    pub config: Config,
    /// Upload sessions idle longer than this are discarded by the cron job.
    pub upload_expiry_seconds: u64,
}

impl RegistrySettings {
    pub fn read(vars: &Vars) -> Result<Self, SettingsError> {
        let megabytes = vars.number(MAX_REQUEST_BODY_MB, "megabytes", BODY_HINT)?.filter(|mb| *mb > 0);
        let max_request_bytes =
            megabytes.map(|mb| scaled(MAX_REQUEST_BODY_MB, mb, 1_000_000, "MB", BODY_HINT)).transpose()?;
        let references = match vars.number(MAX_MANIFEST_REFERENCES, "references", REFERENCES_HINT)? {
            None | Some(0) => DEFAULT_MAX_MANIFEST_REFERENCES,
            Some(n) => usize::try_from(n).map_err(|_| {
                SettingsError::new(MAX_MANIFEST_REFERENCES, format!("{n} is too large; {REFERENCES_HINT}"))
            })?,
        };
        let upload_expiry_seconds =
            vars.number(UPLOAD_EXPIRY_SECONDS, "seconds", EXPIRY_HINT)?.unwrap_or(DEFAULT_UPLOAD_EXPIRY_SECONDS);
        scaled(UPLOAD_EXPIRY_SECONDS, upload_expiry_seconds, 1000, "seconds", EXPIRY_HINT)?;
        let delete_calls = vars
            .number(REPOSITORY_DELETE_CALLS_PER_STEP, "calls", DELETE_CALLS_HINT)?
            .unwrap_or(crate::registry::REPOSITORY_DELETE_CALLS_PER_STEP);
        if delete_calls < MIN_REPOSITORY_DELETE_CALLS_PER_STEP {
            let problem = format!("{delete_calls} is too few; {DELETE_CALLS_HINT}");
            return Err(SettingsError::new(REPOSITORY_DELETE_CALLS_PER_STEP, problem));
        }
        Ok(RegistrySettings {
            config: Config {
                max_request_bytes,
                max_manifest_references: references,
                repository_delete_calls_per_step: delete_calls,
                ..Config::default()
            },
            upload_expiry_seconds,
        })
    }

    /// [`Self::upload_expiry_seconds`] in milliseconds (checked not to overflow when read).
    pub fn upload_expiry_ms(&self) -> u64 {
        self.upload_expiry_seconds * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars::lookup_in;

    fn read(pairs: &[(&str, &str)]) -> Result<RegistrySettings, SettingsError> {
        RegistrySettings::read(&Vars::new(&lookup_in(pairs)))
    }

    #[test]
    fn the_values_accepted_before_mean_what_they_meant() {
        let plain = read(&[]).unwrap();
        assert_eq!(plain.config.max_request_bytes, None);
        assert_eq!(plain.config.max_manifest_references, DEFAULT_MAX_MANIFEST_REFERENCES);
        assert_eq!(plain.upload_expiry_ms(), DEFAULT_UPLOAD_EXPIRY_SECONDS * 1000);
        let set =
            read(&[(MAX_REQUEST_BODY_MB, "100"), (MAX_MANIFEST_REFERENCES, " 20 "), (UPLOAD_EXPIRY_SECONDS, "5")])
                .unwrap();
        assert_eq!(set.config.max_request_bytes, Some(100_000_000));
        assert_eq!(set.config.max_manifest_references, 20);
        assert_eq!(set.upload_expiry_seconds, 5);
        assert_eq!(set.config.part_size, Config::default().part_size);
        let zeros =
            read(&[(MAX_REQUEST_BODY_MB, "0"), (MAX_MANIFEST_REFERENCES, "0"), (UPLOAD_EXPIRY_SECONDS, "0")]).unwrap();
        assert_eq!(zeros.config.max_request_bytes, None, "0: no limit");
        assert_eq!(zeros.config.max_manifest_references, DEFAULT_MAX_MANIFEST_REFERENCES, "0: the default");
        assert_eq!(zeros.upload_expiry_seconds, 0);
    }

    #[test]
    fn junk_that_used_to_fall_back_silently_is_refused() {
        let e = read(&[(MAX_REQUEST_BODY_MB, "100MB")]).unwrap_err();
        assert_eq!(e.var, MAX_REQUEST_BODY_MB);
        assert!(e.problem.contains("\"100MB\" is not a whole number of megabytes"), "{e}");
        assert!(e.problem.contains("0 for none"), "says how to fix it: {e}");
        assert_eq!(read(&[(MAX_MANIFEST_REFERENCES, "many")]).unwrap_err().var, MAX_MANIFEST_REFERENCES);
        assert_eq!(read(&[(UPLOAD_EXPIRY_SECONDS, "1d")]).unwrap_err().var, UPLOAD_EXPIRY_SECONDS);
        let huge = (u64::MAX / 1000 + 1).to_string();
        assert!(read(&[(UPLOAD_EXPIRY_SECONDS, &huge)]).unwrap_err().problem.contains("too large"));
        assert!(read(&[(MAX_REQUEST_BODY_MB, &huge)]).unwrap_err().problem.contains("too large"));
    }

    #[test]
    fn a_repository_deletion_step_has_a_budget_of_at_least_seven_calls() {
        assert_eq!(read(&[]).unwrap().config.repository_delete_calls_per_step, 40);
        let set = read(&[(REPOSITORY_DELETE_CALLS_PER_STEP, "900")]).unwrap();
        assert_eq!(set.config.repository_delete_calls_per_step, 900);
        assert_eq!(
            read(&[(REPOSITORY_DELETE_CALLS_PER_STEP, "7")]).unwrap().config.repository_delete_calls_per_step,
            7
        );
        let few = read(&[(REPOSITORY_DELETE_CALLS_PER_STEP, "6")]).unwrap_err();
        assert_eq!(few.var, REPOSITORY_DELETE_CALLS_PER_STEP);
        assert!(few.problem.contains("too few"), "{few}");
    }
}
