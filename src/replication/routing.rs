//! Which replicas one request may use, in which order: the preference order for its
//! location, minus replicas taken out of routing, with unhealthy ones tried only as a last
//! resort. Upload sessions are pinned to the replica that opened them through their id.

use super::config::{home_of, preference_order, Location, ReplicaSpec};
use super::health::{Health, Traffic};
use crate::ids::{IdSource, UploadId};
use std::rc::Rc;

/// Milliseconds since the epoch, injected.
pub type Now = Rc<dyn Fn() -> u64>;

/// The routing of one request (or one replication job).
pub struct Routing {
    pub(crate) specs: Rc<Vec<ReplicaSpec>>,
    pub(crate) health: Rc<Health>,
    pub(crate) now: Now,
    pub(crate) traffic: Traffic,
    /// Preference order for the request's location.
    order: Vec<usize>,
    /// Replicas taken out of client routing by the operator's switch.
    disabled: Vec<bool>,
    /// Replicas the fault-injection hook makes fail (tests and dev only).
    pub(crate) failing: Vec<bool>,
    /// Replicas whose replication messages the fault hook drops (tests and dev only).
    pub(crate) dropping: Vec<bool>,
    /// Replicas the fault hook makes hang until the read timeout (tests and dev only).
    pub(crate) stalling: Vec<bool>,
    /// A test hook: serve from this replica alone, without falling back.
    pinned: Option<usize>,
}

impl Routing {
    /// Routing for client traffic from `location`; `disabled` and `failing` name replicas.
    pub fn for_client(specs: Rc<Vec<ReplicaSpec>>, health: Rc<Health>, now: Now, location: &Location) -> Self {
        let order = preference_order(&specs, location);
        Self::new(specs, health, now, Traffic::Client, order)
    }

    /// Routing for replication, repair and status: every replica, switch or not, home first.
    pub fn for_maintenance(specs: Rc<Vec<ReplicaSpec>>, health: Rc<Health>, now: Now) -> Self {
        let order = preference_order(&specs, &Location::default());
        Self::new(specs, health, now, Traffic::Maintenance, order)
    }

    fn new(specs: Rc<Vec<ReplicaSpec>>, health: Rc<Health>, now: Now, traffic: Traffic, order: Vec<usize>) -> Self {
        let n = specs.len();
        health.ensure(n);
        Routing {
            specs,
            health,
            now,
            traffic,
            order,
            disabled: vec![false; n],
            failing: vec![false; n],
            dropping: vec![false; n],
            stalling: vec![false; n],
            pinned: None,
        }
    }

    fn flags(&self, names: &[String]) -> Vec<bool> {
        self.specs.iter().map(|s| names.contains(&s.name)).collect()
    }

    /// Takes the named replicas out of client routing.
    pub fn with_disabled(mut self, names: &[String]) -> Self {
        self.disabled = self.flags(names);
        self
    }

    /// Fault injection (see [`FaultPlan`](super::FaultPlan)): replicas that fail every
    /// operation, that lose their incoming messages, or that never answer.
    pub fn with_faults(mut self, plan: &super::FaultPlan) -> Self {
        self.failing = self.flags(&plan.fail);
        self.dropping = self.flags(&plan.drop);
        self.stalling = self.flags(&plan.stall);
        self
    }

    /// Test hook: serve from the named replica alone (no fallback). Unknown names pin
    /// nothing, so the request finds nothing.
    pub fn pinned_to(mut self, name: &str) -> Self {
        self.pinned = Some(self.index_of(name).unwrap_or(usize::MAX));
        self
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn name(&self, replica: usize) -> &str {
        &self.specs[replica].name
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    pub fn is_disabled(&self, replica: usize) -> bool {
        self.disabled.get(replica).copied().unwrap_or(false)
    }

    /// Whether this traffic may touch `replica` at all.
    pub fn routable(&self, replica: usize) -> bool {
        replica < self.len()
            && match self.traffic {
                Traffic::Client => !self.is_disabled(replica) && self.pinned.is_none_or(|p| p == replica),
                Traffic::Maintenance => true,
            }
    }

    /// Whether this traffic may reach the home replica for the collector's keys, which live
    /// nowhere else: unless the operator took it out of routing (a pin to another replica,
    /// the test hook, still reads its states there).
    pub fn home_reachable(&self) -> bool {
        let home = self.home();
        home < self.len()
            && match self.traffic {
                Traffic::Client => !self.is_disabled(home),
                Traffic::Maintenance => true,
            }
    }

    /// The replicas to try, in order: the routable ones usable now (healthy, or due a
    /// probe). Replicas in their back-off are skipped, unless every routable replica is,
    /// and then all of them are tried rather than none.
    pub fn candidates(&self) -> Vec<usize> {
        let now = (self.now)();
        let routable = self.order.iter().copied().filter(|&i| self.routable(i));
        let (usable, resting): (Vec<usize>, Vec<usize>) = routable.partition(|&i| self.health.usable(i, now));
        if usable.is_empty() {
            resting
        } else {
            usable
        }
    }

    /// Every replica this traffic may touch, in preference order, whatever its health.
    pub fn routable_in_order(&self) -> Vec<usize> {
        self.order.iter().copied().filter(|&i| self.routable(i)).collect()
    }

    /// The home replica, which decides conditional puts of replicated keys.
    pub fn home(&self) -> usize {
        home_of(&self.specs)
    }

    /// The replica that takes this request's writes (`None`: none may be routed to).
    pub fn writer(&self) -> Option<usize> {
        self.candidates().first().copied()
    }

    /// The replica an upload session lives in: its id's [replica slot](UploadId::replica_slot),
    /// if that names a declared replica.
    pub fn session_replica(&self, upload_id: &UploadId) -> Option<usize> {
        let index = upload_id.replica_slot();
        (index < self.len()).then_some(index)
    }
}

/// Upload ids that name the replica holding the session: a fresh id from `random`
/// [pinned](UploadId::pinned_to) to the replica taking this request's writes.
pub struct ReplicaIds {
    pub routing: Rc<Routing>,
    pub random: Box<dyn IdSource>,
}

impl IdSource for ReplicaIds {
    fn new_id(&self) -> String {
        let replica = self.routing.writer().unwrap_or(0);
        UploadId::fresh(&*self.random).pinned_to(replica).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::config::parse_replicas;

    fn specs() -> Rc<Vec<ReplicaSpec>> {
        Rc::new(
            parse_replicas(
                r#"[{"name":"a","binding":"A","region":"weur","serves":["EU"],"home":true},
                    {"name":"b","binding":"B","region":"enam","serves":["NA"]},
                    {"name":"c","binding":"C","region":"apac","serves":["AS"]}]"#,
            )
            .unwrap(),
        )
    }

    fn at(code: &str, health: &Rc<Health>) -> Routing {
        Routing::for_client(specs(), health.clone(), Rc::new(|| 1_000), &Location::from_code(code))
    }

    #[test]
    fn disabled_replicas_get_no_client_traffic_but_maintenance_reaches_them() {
        let health = Rc::new(Health::new(3, 1000));
        let routing = at("EU", &health).with_disabled(&["a".into()]);
        assert_eq!(routing.candidates(), vec![1, 2]);
        assert_eq!(routing.writer(), Some(1));
        let all = Routing::for_maintenance(specs(), health, Rc::new(|| 1_000)).with_disabled(&["a".into()]);
        assert_eq!(all.candidates(), vec![0, 1, 2]);
    }

    #[test]
    fn unhealthy_replicas_are_skipped_until_their_backoff_ends() {
        let health = Rc::new(Health::new(3, 10_000));
        health.failed(1, 0, "down");
        assert_eq!(at("NA", &health).candidates(), vec![0, 2], "skipped during its back-off");
        health.failed(0, 0, "down");
        health.failed(2, 0, "down");
        assert_eq!(at("NA", &health).candidates(), vec![1, 0, 2], "all resting: try them all");
        let later = Routing::for_client(specs(), health, Rc::new(|| 20_000), &Location::from_code("NA"));
        assert_eq!(later.candidates(), vec![1, 0, 2], "probed again after the back-off");
    }

    #[test]
    fn upload_ids_carry_the_writer_replica() {
        struct Zeros;
        impl IdSource for Zeros {
            fn new_id(&self) -> String {
                "f".repeat(32)
            }
        }
        let health = Rc::new(Health::new(3, 1000));
        let routing = Rc::new(at("AS", &health));
        let id = ReplicaIds { routing: routing.clone(), random: Box::new(Zeros) }.new_id();
        assert_eq!(id, format!("2{}", "f".repeat(31)));
        assert_eq!(routing.session_replica(&UploadId::parse(&id).unwrap()), Some(2));
        let beyond = UploadId::parse(&format!("9{}", "a".repeat(31))).unwrap();
        assert_eq!(routing.session_replica(&beyond), None, "an index beyond the replicas pins nothing");
        let pinned = at("AS", &health).pinned_to("b");
        assert_eq!(pinned.candidates(), vec![1]);
        assert!(at("AS", &health).pinned_to("zz").candidates().is_empty());
    }
}
