//! The operator's routing switch and the fault-injection plan. Both are small JSON objects
//! in the home replica's bucket (R2 is strongly consistent and has conditional puts),
//! under `replication/control/`, which is never replicated. They are read and written
//! there directly, not through [`Replicated`](super::Replicated), whose routing the switch
//! itself decides.
//!
//! Every change is a compare-and-swap: read the object and its etag, compute the new
//! value (refusing it, e.g. taking the last replica out of routing, against exactly the
//! value read), and put it only if the etag still matches (`Absent` for the first write).
//! A lost race re-reads and tries again, at most [`MAX_ATTEMPTS`] times, so two concurrent
//! changes never lose one and never both pass a guard that only one of them may.
//!
//! Migration: while the bucket holds no object and KV still holds the value an older
//! version kept there (`replication/routing`, `replication/faults`), the first read adopts
//! it with a create-only put. After each change the value is also copied to that KV key,
//! a copy read only when the home bucket cannot be ([`super::switch_cache`]).

use super::config::ReplicaSpec;
use super::store::Timer;
use crate::storage::{keys, BlobStore, MetaStore, Metadata, PutIf, StorageError, StorageResult};
use futures::future::{select, Either};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::future::Future;

/// A change that keeps losing the race this many times is refused (the caller retries).
pub const MAX_ATTEMPTS: usize = 5;

/// Replicas taken out of client routing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingSwitch {
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// Faults to inject (honoured only when the test hooks are enabled).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Replicas whose every operation fails, as if the bucket were down.
    #[serde(default)]
    pub fail: Vec<String>,
    /// Replicas whose incoming replication messages are dropped (lost messages).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Replicas that never answer: every operation waits out the read timeout, then fails.
    #[serde(default)]
    pub stall: Vec<String>,
}

/// A value as the home bucket holds it, with the etag a change must match (`None`: no
/// object yet, so the change must create it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: Option<String>,
}

/// Why a change was not made.
#[derive(Debug)]
pub enum ChangeError {
    /// Refused by its guard, or it lost the race [`MAX_ATTEMPTS`] times (a 409).
    Refused(String),
    /// The home bucket failed.
    Storage(StorageError),
}

impl From<StorageError> for ChangeError {
    fn from(e: StorageError) -> Self {
        ChangeError::Storage(e)
    }
}

/// Trouble injected into the home bucket by the fault plan (tests and dev only). The plan
/// itself is exempt, so that a test can always lift it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HomeFault {
    #[default]
    None,
    Fail,
    Stall,
}

impl HomeFault {
    pub fn of(plan: &FaultPlan, home: &str) -> Self {
        let named = |names: &[String]| names.iter().any(|n| n == home);
        match (named(&plan.fail), named(&plan.stall)) {
            (true, _) => HomeFault::Fail,
            (_, true) => HomeFault::Stall,
            _ => HomeFault::None,
        }
    }
}

/// The controls' store: the home replica's bucket, and KV for migration and the copy.
pub struct Control<'a, S, M> {
    pub home: &'a S,
    pub home_name: &'a str,
    pub kv: &'a M,
    pub fault: HomeFault,
    pub timer: &'a dyn Timer,
    /// Reads slower than this fail (a home bucket that does not answer).
    pub timeout_ms: u64,
}

fn parse<T: DeserializeOwned + Default>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_default()
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data serializes")
}

impl<S: BlobStore, M: MetaStore> Control<'_, S, M> {
    fn failure(&self, what: &str) -> StorageError {
        StorageError::Backend(format!("home replica {}: {what}", self.home_name))
    }

    /// One operation on the home bucket, with the injected fault (when `faulty`) and, for
    /// reads, the timeout.
    async fn on_home<T>(
        &self,
        faulty: bool,
        timed: bool,
        op: impl Future<Output = StorageResult<T>>,
    ) -> StorageResult<T> {
        match if faulty { self.fault } else { HomeFault::None } {
            HomeFault::Fail => return Err(self.failure("injected fault")),
            HomeFault::Stall => {
                self.timer.sleep(self.timeout_ms).await;
                return Err(self.failure(&format!("no answer in {} ms (injected stall)", self.timeout_ms)));
            }
            HomeFault::None => {}
        }
        if !timed {
            return op.await;
        }
        let op = std::pin::pin!(op);
        match select(op, self.timer.sleep(self.timeout_ms)).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(self.failure(&format!("no answer in {} ms", self.timeout_ms))),
        }
    }

    /// Reads `key`; when absent, adopts what KV holds under `legacy` (create-only).
    async fn read<T>(&self, key: &str, legacy: &str, faulty: bool) -> StorageResult<Versioned<T>>
    where
        T: DeserializeOwned + Serialize + Default,
    {
        if let Some((info, bytes)) = self.on_home(faulty, true, self.home.get_bytes(key)).await? {
            return Ok(Versioned { value: parse(&bytes), etag: Some(info.etag) });
        }
        let Some(entry) = self.kv.get(legacy).await? else {
            return Ok(Versioned { value: T::default(), etag: None });
        };
        let value: T = parse(&entry.value);
        let put = self.home.put_bytes_if(key, json(&value), Metadata::new(), PutIf::Absent);
        if let Some(info) = self.on_home(faulty, false, put).await? {
            return Ok(Versioned { value, etag: Some(info.etag) });
        }
        // Someone else created it meanwhile (adopted it too, or changed it): theirs stands.
        match self.on_home(faulty, true, self.home.get_bytes(key)).await? {
            Some((info, bytes)) => Ok(Versioned { value: parse(&bytes), etag: Some(info.etag) }),
            None => Err(self.failure(&format!("{key} was created and is gone again"))),
        }
    }

    /// Compare-and-swap loop: `change` maps the value read to the value to write, or
    /// refuses. A value that does not change is not written.
    async fn change<T>(
        &self,
        key: &str,
        legacy: &str,
        faulty: bool,
        change: impl Fn(&T) -> Result<T, String>,
    ) -> Result<T, ChangeError>
    where
        T: DeserializeOwned + Serialize + Default + PartialEq,
    {
        for _ in 0..MAX_ATTEMPTS {
            let current: Versioned<T> = self.read(key, legacy, faulty).await?;
            let next = change(&current.value).map_err(ChangeError::Refused)?;
            if next == current.value && current.etag.is_some() {
                return Ok(next);
            }
            let condition = match &current.etag {
                Some(etag) => PutIf::EtagMatches(etag),
                None => PutIf::Absent,
            };
            let put = self.home.put_bytes_if(key, json(&next), Metadata::new(), condition);
            if self.on_home(faulty, false, put).await?.is_some() {
                // Best effort: the copy only serves reads while the home bucket is down.
                let _ = self.kv.put(legacy, json(&next), None).await;
                return Ok(next);
            }
        }
        Err(ChangeError::Refused(format!(
            "{key} was changed by concurrent requests {MAX_ATTEMPTS} times while this change was tried: try again"
        )))
    }

    /// The routing switch as the home bucket holds it (the fault plan applies).
    pub async fn switch(&self) -> StorageResult<Versioned<RoutingSwitch>> {
        self.read(&keys::routing_switch(), keys::KV_ROUTING, true).await
    }

    /// The copy of the switch in KV (eventually consistent; for when home is down).
    pub async fn switch_copy(&self) -> StorageResult<Option<RoutingSwitch>> {
        Ok(self.kv.get(keys::KV_ROUTING).await?.map(|entry| parse(&entry.value)))
    }

    /// Sets `replica`'s routing flag, keeping the others. Refused when it would leave no
    /// replica of `specs` in routing, judged against the switch this change replaces.
    pub async fn set_routing(
        &self,
        specs: &[ReplicaSpec],
        replica: &str,
        enabled: bool,
    ) -> Result<RoutingSwitch, ChangeError> {
        self.change(&keys::routing_switch(), keys::KV_ROUTING, true, |current: &RoutingSwitch| {
            let mut next = current.clone();
            next.disabled.retain(|name| name != replica);
            if !enabled {
                next.disabled.push(replica.to_owned());
            }
            if !specs.iter().any(|s| !next.disabled.contains(&s.name)) {
                return Err(format!("{replica} is the last replica in routing: enable another one first"));
            }
            Ok(next)
        })
        .await
    }

    /// The fault plan (the plan's own faults do not apply to it).
    pub async fn faults(&self) -> StorageResult<FaultPlan> {
        Ok(self.read(&keys::fault_plan(), keys::KV_FAULTS, false).await?.value)
    }

    pub async fn set_faults(&self, plan: &FaultPlan) -> Result<FaultPlan, ChangeError> {
        self.change(&keys::fault_plan(), keys::KV_FAULTS, false, |_: &FaultPlan| Ok(plan.clone())).await
    }
}
