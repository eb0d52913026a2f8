//! [`Cluster`]: the declared replicas with what outlives a request (their health, the
//! routing switch as last read, the timer and clock), from which each request or job gets
//! its [`Replicated`] view and the [`Control`] store of the switch and fault plan.

use super::config::{home_of, Location, ReplicaSpec};
use super::control::{Control, FaultPlan, HomeFault, RoutingSwitch};
use super::health::Health;
use super::routing::{Now, ReplicaIds, Routing};
use super::store::{Replica, Replicated, Timer};
use super::switch_cache::SwitchCache;
use crate::ids::IdSource;
use std::rc::Rc;

pub struct Cluster<S> {
    pub specs: Rc<Vec<ReplicaSpec>>,
    pub replicas: Rc<Vec<Replica<S>>>,
    pub health: Rc<Health>,
    /// The routing switch as this isolate last read it.
    pub switch_cache: Rc<SwitchCache>,
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

    /// The garbage collector's view: every replica, as for maintenance, but strict (see
    /// [`Replicated::strict`]): what it cannot reach it reports rather than hide.
    pub fn collector(&self, switch: &RoutingSwitch, faults: &FaultPlan) -> Replicated<S> {
        self.maintenance(switch, faults).strict()
    }

    /// The index of the home replica (exactly one is declared home).
    pub fn home(&self) -> usize {
        home_of(&self.specs)
    }

    /// The store of the routing switch and the fault plan: the home replica's bucket
    /// (with the plan's faults for it applied to the switch), and `kv`, where they were
    /// kept before and a copy is kept now.
    pub fn control<'a, M>(&'a self, kv: &'a M, faults: &FaultPlan) -> Control<'a, S, M> {
        let home = self.home();
        let name = &self.replicas[home].name;
        Control {
            home: &self.replicas[home].store,
            home_name: name,
            kv,
            fault: HomeFault::of(faults, name),
            timer: &*self.timer,
            timeout_ms: self.read_timeout_ms,
        }
    }

    fn view(&self, routing: Routing) -> Replicated<S> {
        Replicated::new(self.replicas.clone(), Rc::new(routing), self.timer.clone(), self.read_timeout_ms)
    }
}

/// Upload ids for requests served through `store`, each pinned to a replica: the id names
/// the replica that takes the session's writes.
pub fn replica_pinned_ids<S>(store: &Replicated<S>, random: Box<dyn IdSource>) -> ReplicaIds {
    ReplicaIds { routing: store.routing.clone(), random }
}
