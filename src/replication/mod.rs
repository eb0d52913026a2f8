//! Geo-replication across R2 buckets (opt-in: declared by the `REPLICAS` var).
//!
//! Every replica serves reads and writes. A request is routed by its location
//! ([`config`], [`routing`]): reads go to the nearest replica holding the content and fall
//! back to the next on a miss, an error or a timeout; writes land in the nearest usable
//! replica ([`store`]; [`placement`] says where each key goes, [`calls`] makes one call
//! to one replica, [`listing`] merges listings). The garbage collector's keys live in the
//! home replica alone, and it runs over a strict view of every replica
//! ([`Cluster::collector`]). Each committed write becomes a pending marker in that replica plus a
//! queue message per other replica; the consumer copies, verified against the digest, and
//! removes the marker ([`replicate`]). A scheduled job re-sends what the queue lost and
//! compares content across replicas ([`repair`]). Replicas that fail are skipped for a
//! back-off, then probed ([`health`]); an operator can take one out of routing
//! ([`control`], kept in the home replica's bucket and cached per isolate by
//! [`switch_cache`]), and [`status`] reports all of it.
//!
//! This module may call `storage`, `oci` and `ids` (never `registry`); `edge` wires it
//! to Workers (R2 buckets, a Queue, KV, the `cf` location) and `api` serves its admin
//! endpoints through the [`api::admin`](crate::api) port.

pub mod admin;
pub mod calls;
pub mod cluster;
pub mod config;
pub mod control;
pub mod health;
pub mod listing;
pub mod placement;
pub mod repair;
pub mod replicate;
pub mod routing;
pub mod status;
pub mod store;
pub mod switch_cache;
pub mod tombstone;

pub use admin::{Admin, ReplicationAdmin};
pub use cluster::{replica_pinned_ids, Cluster};
pub use config::{parse_replicas, Location, ReplicaConfigError, ReplicaSpec};
pub use control::{ChangeError, Control, FaultPlan, RoutingSwitch};
pub use health::{Health, Traffic};
pub use placement::{is_home_scoped, is_replicated};
pub use replicate::{apply, publish, Applied, Message, ReplicationQueue};
pub use routing::{Now, ReplicaIds, Routing};
pub use store::{Change, ChangeKind, Replica, Replicated, Timer};
pub use switch_cache::SwitchCache;
