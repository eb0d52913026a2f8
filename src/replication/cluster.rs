//! [`Cluster`]: the declared replicas with what outlives a request (their health, the
//! timer and clock), from which each request or job gets its [`Replicated`] view.

use super::config::{Location, ReplicaSpec};
use super::control::{FaultPlan, RoutingSwitch};
use super::health::Health;
use super::routing::{Now, ReplicaIds, Routing};
use super::store::{Replica, Replicated, Timer};
use crate::registry::IdSource;
use std::rc::Rc;

pub struct Cluster<S> {
    pub specs: Rc<Vec<ReplicaSpec>>,
    pub replicas: Rc<Vec<Replica<S>>>,
    pub health: Rc<Health>,
    pub timer: Rc<dyn Timer>,
    pub now: Now,
    pub read_timeout_ms: u64,
}

impl<S: crate::storage::BlobStore> Cluster<S> {
    /// The view of a client request from `location`; `pin` is the test hook that serves
    /// from one replica without fallback.
    pub fn client(
        &self,
        location: &Location,
        switch: &RoutingSwitch,
        faults: &FaultPlan,
        pin: Option<&str>,
    ) -> Replicated<S> {
        let mut routing = Routing::for_client(self.specs.clone(), self.health.clone(), self.now.clone(), location)
            .with_disabled(&switch.disabled)
            .with_faults(faults);
        if let Some(name) = pin {
            routing = routing.pinned_to(name);
        }
        self.view(routing)
    }

    /// The view of replication, repair and status: every replica.
    pub fn maintenance(&self, switch: &RoutingSwitch, faults: &FaultPlan) -> Replicated<S> {
        let routing = Routing::for_maintenance(self.specs.clone(), self.health.clone(), self.now.clone())
            .with_disabled(&switch.disabled)
            .with_faults(faults);
        self.view(routing)
    }

    fn view(&self, routing: Routing) -> Replicated<S> {
        Replicated::new(self.replicas.clone(), Rc::new(routing), self.timer.clone(), self.read_timeout_ms)
    }
}

/// Upload ids for requests served through `store`: they name the replica that takes the
/// session's writes.
pub fn ids_for<S>(store: &Replicated<S>, random: Box<dyn IdSource>) -> ReplicaIds {
    ReplicaIds { routing: store.routing.clone(), random }
}
