//! Failed-login counters (per isolate), bounded so that a spray of made-up user names can
//! neither grow memory without limit nor evict the counter of a real user being guessed:
//! configured users are counted in their own table (at most one entry per configured
//! user, never evicted), made-up names in a bounded one that drops its oldest windows.

use std::collections::HashMap;

/// Failed logins per user within [`FAILURE_WINDOW_MS`] before further tries get 429.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW_MS: u64 = 60_000;
/// Most made-up user names counted at once.
pub const MAX_UNKNOWN_NAMES: usize = 4096;

/// Failures and the start of their window, per user name.
#[derive(Debug, Default)]
pub struct Failures {
    known: HashMap<String, (u32, u64)>,
    unknown: HashMap<String, (u32, u64)>,
}

impl Failures {
    fn table(&self, known: bool) -> &HashMap<String, (u32, u64)> {
        if known {
            &self.known
        } else {
            &self.unknown
        }
    }

    /// `Some(seconds to wait)` when `user` has used up its tries in the current window.
    pub fn throttled(&self, user: &str, known: bool, now_ms: u64) -> Option<u64> {
        match self.table(known).get(user) {
            Some((count, start)) if *count >= MAX_FAILURES && now_ms < start + FAILURE_WINDOW_MS => {
                Some((start + FAILURE_WINDOW_MS - now_ms).div_ceil(1000))
            }
            _ => None,
        }
    }

    /// Counts a failed login. `known` says whether `user` is a configured user.
    pub fn record(&mut self, user: &str, known: bool, now_ms: u64) {
        if !known && !self.unknown.contains_key(user) && self.unknown.len() >= MAX_UNKNOWN_NAMES {
            self.unknown.retain(|_, (_, start)| now_ms < *start + FAILURE_WINDOW_MS);
            if self.unknown.len() >= MAX_UNKNOWN_NAMES {
                let oldest = self.unknown.iter().min_by_key(|(_, (_, start))| *start).map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    self.unknown.remove(&oldest);
                }
            }
        }
        let table = if known { &mut self.known } else { &mut self.unknown };
        let entry = table.entry(user.to_owned()).or_insert((0, now_ms));
        if now_ms >= entry.1 + FAILURE_WINDOW_MS {
            *entry = (0, now_ms);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets `user`'s failures (after a successful login).
    pub fn clear(&mut self, user: &str) {
        self.known.remove(user);
    }

    /// How many user names have failures counted: (known users, unknown names).
    pub fn counted_names(&self) -> (usize, usize) {
        (self.known.len(), self.unknown.len())
    }

    /// Whether no name has failures counted.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty() && self.unknown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_user_stays_throttled_through_a_spray_of_made_up_names() {
        let mut failures = Failures::default();
        for i in 0..MAX_FAILURES {
            failures.record("reader", true, u64::from(i));
        }
        assert_eq!(failures.throttled("reader", true, 100), Some(60));
        for i in 0..(3 * MAX_UNKNOWN_NAMES) {
            failures.record(&format!("spray-{i}"), false, 200 + i as u64);
        }
        assert_eq!(failures.throttled("reader", true, 20_000), Some(40));
        assert_eq!(failures.counted_names(), (1, MAX_UNKNOWN_NAMES));
        // The newest made-up names are still counted; the oldest were dropped.
        assert!(failures.unknown.contains_key(&format!("spray-{}", 3 * MAX_UNKNOWN_NAMES - 1)));
        assert!(!failures.unknown.contains_key("spray-0"));
    }

    #[test]
    fn made_up_names_are_throttled_too_and_windows_end() {
        let mut failures = Failures::default();
        for _ in 0..MAX_FAILURES {
            failures.record("nobody", false, 0);
        }
        // Known and unknown names answer alike, so 429s do not tell which users exist.
        assert_eq!(failures.throttled("nobody", false, 1), Some(60));
        assert_eq!(failures.throttled("nobody", false, FAILURE_WINDOW_MS), None);
        failures.record("nobody", false, FAILURE_WINDOW_MS);
        assert_eq!(failures.throttled("nobody", false, FAILURE_WINDOW_MS + 1), None);
    }

    #[test]
    fn expired_windows_go_first_when_the_unknown_table_is_full() {
        let mut failures = Failures::default();
        for i in 0..MAX_UNKNOWN_NAMES {
            failures.record(&format!("old-{i}"), false, 0);
        }
        failures.record("fresh", false, FAILURE_WINDOW_MS + 1);
        assert_eq!(failures.counted_names(), (0, 1));
    }

    #[test]
    fn a_successful_login_clears_the_count() {
        let mut failures = Failures::default();
        for _ in 0..MAX_FAILURES {
            failures.record("writer", true, 0);
        }
        failures.clear("writer");
        assert!(failures.is_empty());
        assert_eq!(failures.throttled("writer", true, 1), None);
    }
}
