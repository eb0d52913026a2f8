//! The operator's port to replication, served by `api`'s admin endpoints: the status
//! report, the routing switch, an on-demand repair, and the fault-injection hooks (only
//! when enabled by a test/dev var).

use super::cluster::Cluster;
use super::control::{self, FaultPlan};
use super::repair::{repair, RepairReport};
use super::replicate::ReplicationQueue;
use super::status::{status, ReplicaStatus};
use crate::storage::{BlobStore, MetaStore, StorageResult};

/// What the admin endpoints may ask of replication.
#[allow(async_fn_in_trait)]
pub trait ReplicationAdmin {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>>;
    /// Sets a replica's routing flag; `None` when no replica has that name; `Err` when the
    /// change is refused (taking the last replica in routing out).
    async fn set_routing(&self, replica: &str, enabled: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String>;
    async fn repair(&self) -> StorageResult<RepairReport>;
    /// Whether the fault-injection hooks are on (never in a normal deployment).
    fn hooks_enabled(&self) -> bool;
    async fn faults(&self) -> StorageResult<FaultPlan>;
    /// Installs a fault plan; `Err` names a replica that does not exist.
    async fn set_faults(&self, plan: FaultPlan) -> Result<StorageResult<()>, String>;
}

/// The port over a cluster, the KV index (where the switch and plan live) and the queue.
pub struct Admin<'a, S, M, Q> {
    pub cluster: &'a Cluster<S>,
    pub meta: &'a M,
    pub queue: &'a Q,
    pub hooks: bool,
    /// Markers last sent longer ago than this are re-sent by a repair.
    pub resend_after_ms: u64,
}

impl<S: BlobStore, M: MetaStore, Q: ReplicationQueue> Admin<'_, S, M, Q> {
    async fn faults_in_force(&self) -> StorageResult<FaultPlan> {
        if self.hooks {
            control::load_faults(self.meta).await
        } else {
            Ok(FaultPlan::default())
        }
    }
}

impl<S: BlobStore, M: MetaStore, Q: ReplicationQueue> ReplicationAdmin for Admin<'_, S, M, Q> {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>> {
        let switch = control::load_switch(self.meta).await?;
        let store = self.cluster.maintenance(&switch, &self.faults_in_force().await?);
        Ok(status(&store, &switch).await)
    }

    async fn set_routing(&self, replica: &str, enabled: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String> {
        if !self.cluster.specs.iter().any(|s| s.name == replica) {
            return Ok(Ok(None));
        }
        let switch = match control::load_switch(self.meta).await {
            Ok(switch) => switch,
            Err(e) => return Ok(Err(e)),
        };
        let others_enabled = self.cluster.specs.iter().any(|s| s.name != replica && !switch.disabled.contains(&s.name));
        if !enabled && !others_enabled {
            return Err(format!("{replica} is the last replica in routing: enable another one first"));
        }
        if let Err(e) = control::set_routing(self.meta, replica, enabled).await {
            return Ok(Err(e));
        }
        Ok(self.status().await.map(|all| all.into_iter().find(|s| s.name == replica)))
    }

    async fn repair(&self) -> StorageResult<RepairReport> {
        let switch = control::load_switch(self.meta).await?;
        let store = self.cluster.maintenance(&switch, &self.faults_in_force().await?);
        repair(&store, self.queue, self.resend_after_ms).await
    }

    fn hooks_enabled(&self) -> bool {
        self.hooks
    }

    async fn faults(&self) -> StorageResult<FaultPlan> {
        self.faults_in_force().await
    }

    async fn set_faults(&self, plan: FaultPlan) -> Result<StorageResult<()>, String> {
        let unknown =
            plan.fail.iter().chain(&plan.drop).find(|name| !self.cluster.specs.iter().any(|s| &s.name == *name));
        if let Some(name) = unknown {
            return Err(format!("no replica is named {name:?}"));
        }
        Ok(control::save_faults(self.meta, &plan).await)
    }
}
