//! The status report: per replica its region, routing flag, health as this isolate sees
//! it, and the replication backlog (pending markers aimed at it) with its oldest age.

use super::control::RoutingSwitch;
use super::health::HealthReport;
use super::replicate::message_of_marker;
use super::store::Replicated;
use crate::storage::{keys, list_all, BlobStore};
use serde::Serialize;

/// One replica's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    pub name: String,
    pub region: String,
    pub home: bool,
    /// `enabled`, or `disabled` by the routing switch (still receiving replication).
    pub routing: &'static str,
    pub health: HealthReport,
    /// Changes not yet copied into this replica.
    pub backlog: usize,
    /// Age of the oldest of them, in seconds.
    pub oldest_pending_seconds: Option<u64>,
    /// False when a replica holding markers could not be listed (the backlog is a floor).
    pub backlog_complete: bool,
}

/// Builds the report with a maintenance-routed store.
pub async fn status<S: BlobStore>(store: &Replicated<S>, switch: &RoutingSwitch) -> Vec<ReplicaStatus> {
    let now = (store.routing.now)();
    let n = store.routing.len();
    let mut backlog = vec![0usize; n];
    let mut oldest: Vec<Option<u64>> = vec![None; n];
    let mut complete = true;
    for (source, replica) in store.replicas.iter().enumerate() {
        let Ok(markers) = store.run(source, false, list_all(&replica.store, keys::PENDING_PREFIX)).await else {
            complete = false;
            continue;
        };
        for marker in markers {
            let Some((message, _)) = message_of_marker(&replica.name, &marker.key, &marker.metadata) else { continue };
            let Some(target) = store.routing.index_of(&message.target) else { continue };
            backlog[target] += 1;
            let age = now.saturating_sub(message.enqueued_at) / 1000;
            oldest[target] = Some(oldest[target].map_or(age, |a| a.max(age)));
        }
    }
    store
        .routing
        .specs
        .iter()
        .enumerate()
        .map(|(i, spec)| ReplicaStatus {
            name: spec.name.clone(),
            region: spec.region.clone(),
            home: spec.home,
            routing: if switch.disabled.contains(&spec.name) { "disabled" } else { "enabled" },
            health: store.routing.health.report(i, now),
            backlog: backlog[i],
            oldest_pending_seconds: oldest[i],
            backlog_complete: complete,
        })
        .collect()
}
