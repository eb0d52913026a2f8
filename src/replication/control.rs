//! The operator's routing switch and the fault-injection plan, kept in KV so that every
//! isolate sees them (within KV's propagation time, about a minute when deployed).

use crate::storage::{keys, MetaStore, StorageResult};
use serde::{Deserialize, Serialize};

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

async fn load<T: for<'de> Deserialize<'de> + Default, M: MetaStore>(meta: &M, key: &str) -> StorageResult<T> {
    Ok(meta.get(key).await?.and_then(|entry| serde_json::from_slice(&entry.value).ok()).unwrap_or_default())
}

async fn save<T: Serialize, M: MetaStore>(meta: &M, key: &str, value: &T) -> StorageResult<()> {
    let json = serde_json::to_vec(value).expect("plain data serializes");
    meta.put(key, json, None).await
}

pub async fn load_switch<M: MetaStore>(meta: &M) -> StorageResult<RoutingSwitch> {
    load(meta, keys::KV_ROUTING).await
}

/// Sets `replica`'s routing flag, keeping the others.
pub async fn set_routing<M: MetaStore>(meta: &M, replica: &str, enabled: bool) -> StorageResult<RoutingSwitch> {
    let mut switch = load_switch(meta).await?;
    switch.disabled.retain(|name| name != replica);
    if !enabled {
        switch.disabled.push(replica.to_owned());
    }
    save(meta, keys::KV_ROUTING, &switch).await?;
    Ok(switch)
}

pub async fn load_faults<M: MetaStore>(meta: &M) -> StorageResult<FaultPlan> {
    load(meta, keys::KV_FAULTS).await
}

pub async fn save_faults<M: MetaStore>(meta: &M, plan: &FaultPlan) -> StorageResult<()> {
    save(meta, keys::KV_FAULTS, plan).await
}
