//! The routing switch as one isolate routes by it: read from the home bucket at most once
//! per [`SWITCH_TTL_MS`], so a request pays no R2 read for it most of the time, and an
//! operator's change reaches every isolate within that time (the isolate that made it at
//! once).
//!
//! When the home bucket cannot be read, the isolate keeps the switch it last read; an
//! isolate that never read one uses the copy in KV, and without that routes to every
//! replica. Whichever it uses, it keeps for another [`SWITCH_TTL_MS`] before it asks the
//! home bucket again, so an outage of home costs one failed read (at most the read
//! timeout) per isolate per period, not one per request.

use super::control::{Control, RoutingSwitch};
use crate::storage::{BlobStore, MetaStore};
use std::cell::RefCell;

/// How long an isolate routes by the switch it read before reading it again.
pub const SWITCH_TTL_MS: u64 = 5_000;

/// One isolate's copy of the switch.
#[derive(Debug)]
pub struct SwitchCache {
    ttl_ms: u64,
    /// The switch and when it is to be read again (ms).
    entry: RefCell<Option<(RoutingSwitch, u64)>>,
}

impl Default for SwitchCache {
    fn default() -> Self {
        SwitchCache::new(SWITCH_TTL_MS)
    }
}

/// Where the switch a request routes by came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// This isolate's copy, read less than the TTL ago.
    Cached,
    /// The home bucket, just now.
    Home,
    /// The home bucket failed (the message says how); the switch is this isolate's last
    /// one, KV's copy, or none disabled.
    Fallback(String),
}

impl SwitchCache {
    pub fn new(ttl_ms: u64) -> Self {
        SwitchCache { ttl_ms, entry: RefCell::new(None) }
    }

    /// Keeps `switch` as read (or written) at `now`.
    pub fn keep(&self, switch: RoutingSwitch, now: u64) {
        *self.entry.borrow_mut() = Some((switch, now.saturating_add(self.ttl_ms)));
    }

    fn fresh(&self, now: u64) -> Option<RoutingSwitch> {
        self.entry.borrow().as_ref().filter(|(_, until)| now < *until).map(|(switch, _)| switch.clone())
    }

    fn last(&self) -> Option<RoutingSwitch> {
        self.entry.borrow().as_ref().map(|(switch, _)| switch.clone())
    }

    /// The switch to route by at `now`; `fresh` skips the cached copy (the status report).
    pub async fn switch<S: BlobStore, M: MetaStore>(
        &self,
        control: &Control<'_, S, M>,
        now: u64,
        fresh: bool,
    ) -> (RoutingSwitch, Source) {
        if !fresh {
            if let Some(switch) = self.fresh(now) {
                return (switch, Source::Cached);
            }
        }
        let (switch, source) = match control.switch().await {
            Ok(read) => (read.value, Source::Home),
            Err(e) => {
                let switch = match self.last() {
                    Some(last) => last,
                    None => control.switch_copy().await.ok().flatten().unwrap_or_default(),
                };
                (switch, Source::Fallback(e.to_string()))
            }
        };
        self.keep(switch.clone(), now);
        (switch, source)
    }
}
