//! The operator's port to replication, served by `api`'s admin endpoints: the status
//! report, the routing switch, an on-demand repair, the garbage collector's view of the
//! replicas, and the fault-injection hooks (only when enabled by a test/dev var). The types the port speaks in are re-exported here, so
//! its users need no other module of `replication`.

use super::cluster::Cluster;
use super::control::ChangeError;
use super::repair::repair;
use super::replicate::ReplicationQueue;
use super::status::status;
use crate::storage::{BlobStore, MetaStore, StorageResult};

pub use super::control::FaultPlan;
pub use super::repair::RepairReport;
pub use super::status::ReplicaStatus;

/// What the admin endpoints may ask of replication.
#[allow(async_fn_in_trait)]
pub trait ReplicationAdmin {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>>;
    /// Sets a replica's routing flag; `None` when no replica has that name; `Err` when the
    /// change is refused (taking the last replica in routing out, judged against the switch
    /// it replaces, or losing the race to concurrent changes too often).
    async fn set_routing(&self, replica: &str, enabled: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String>;
    async fn repair(&self) -> StorageResult<RepairReport>;
    /// Whether the fault-injection hooks are on (never in a normal deployment).
    fn hooks_enabled(&self) -> bool;
    async fn faults(&self) -> StorageResult<FaultPlan>;
    /// Installs a fault plan; `Err` names a replica that does not exist.
    async fn set_faults(&self, plan: FaultPlan) -> Result<StorageResult<()>, String>;
    /// The store the garbage collector runs over with replicas: every replica, strict
    /// (it reports what it could not reach rather than hide it), the collector's keys in
    /// the home replica.
    type Collecting: BlobStore;
    async fn collector_view(&self) -> StorageResult<Self::Collecting>;
}

/// The port over a cluster (whose home bucket keeps the switch and the plan), the KV
/// index (where they were kept before, and a copy is kept now) and the queue.
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
            self.cluster.control(self.meta, &FaultPlan::default()).faults().await
        } else {
            Ok(FaultPlan::default())
        }
    }

    /// The switch read afresh from the home bucket (or, when it is down, what routing uses
    /// instead), with the faults in force.
    async fn switch_and_faults(&self) -> StorageResult<(super::RoutingSwitch, FaultPlan)> {
        let faults = self.faults_in_force().await?;
        let control = self.cluster.control(self.meta, &faults);
        let (switch, _) = self.cluster.switch_cache.switch(&control, (self.cluster.now)(), true).await;
        Ok((switch, faults))
    }
}

impl<S: BlobStore, M: MetaStore, Q: ReplicationQueue> ReplicationAdmin for Admin<'_, S, M, Q> {
    async fn status(&self) -> StorageResult<Vec<ReplicaStatus>> {
        let (switch, faults) = self.switch_and_faults().await?;
        let store = self.cluster.maintenance(&switch, &faults);
        Ok(status(&store, &switch).await)
    }

    async fn set_routing(&self, replica: &str, enabled: bool) -> Result<StorageResult<Option<ReplicaStatus>>, String> {
        if !self.cluster.specs.iter().any(|s| s.name == replica) {
            return Ok(Ok(None));
        }
        let faults = match self.faults_in_force().await {
            Ok(faults) => faults,
            Err(e) => return Ok(Err(e)),
        };
        let control = self.cluster.control(self.meta, &faults);
        match control.set_routing(&self.cluster.specs, replica, enabled).await {
            Ok(switch) => self.cluster.switch_cache.keep(switch, (self.cluster.now)()),
            Err(ChangeError::Refused(why)) => return Err(why),
            Err(ChangeError::Storage(e)) => return Ok(Err(e)),
        }
        Ok(self.status().await.map(|all| all.into_iter().find(|s| s.name == replica)))
    }

    async fn repair(&self) -> StorageResult<RepairReport> {
        let (switch, faults) = self.switch_and_faults().await?;
        let store = self.cluster.maintenance(&switch, &faults);
        repair(&store, self.queue, self.resend_after_ms).await
    }

    fn hooks_enabled(&self) -> bool {
        self.hooks
    }

    async fn faults(&self) -> StorageResult<FaultPlan> {
        self.faults_in_force().await
    }

    async fn set_faults(&self, plan: FaultPlan) -> Result<StorageResult<()>, String> {
        let unknown = plan
            .fail
            .iter()
            .chain(&plan.drop)
            .chain(&plan.stall)
            .find(|name| !self.cluster.specs.iter().any(|s| &s.name == *name));
        if let Some(name) = unknown {
            return Err(format!("no replica is named {name:?}"));
        }
        match self.cluster.control(self.meta, &FaultPlan::default()).set_faults(&plan).await {
            Ok(_) => Ok(Ok(())),
            Err(ChangeError::Refused(why)) => Err(why),
            Err(ChangeError::Storage(e)) => Ok(Err(e)),
        }
    }

    type Collecting = super::Replicated<S>;

    async fn collector_view(&self) -> StorageResult<super::Replicated<S>> {
        let (switch, faults) = self.switch_and_faults().await?;
        Ok(self.cluster.collector(&switch, &faults).collector_on(true))
    }
}
