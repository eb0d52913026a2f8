//! The replica declaration (the `REPLICAS` var) and the routing order it implies for a
//! request's location: nearest first, then home, then the rest as declared.

use serde::{Deserialize, Serialize};

/// At most this many replicas: an upload id carries its replica's index in one hex digit.
pub const MAX_REPLICAS: usize = 16;

/// One replica as declared in `wrangler.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSpec {
    /// Short name used in the status report and the routing switch (`[a-z0-9-]`).
    pub name: String,
    /// The R2 bucket binding that holds this replica.
    pub binding: String,
    /// Where the bucket lives: its location hint (`weur`, `enam`, `apac`, ...) or
    /// jurisdiction (`eu`, `fedramp`). Reported, not interpreted.
    pub region: String,
    /// Locations this replica is nearest to: Cloudflare colo codes (`FRA`), ISO country
    /// codes (`DE`) or continent codes (`EU`), as in the request's `cf` object.
    #[serde(default)]
    pub serves: Vec<String>,
    /// The replica used when a request's location matches none; exactly one is home.
    #[serde(default)]
    pub home: bool,
}

/// Why a replica declaration (the `REPLICAS` var, which `settings` names in front of this
/// text) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaConfigError {
    #[error(
        "not a JSON list of replicas, each {{\"name\", \"binding\", \"region\", \"serves\": [...], \"home\"}}: {0}"
    )]
    Syntax(String),
    #[error("declares no replica; declare at least one, or leave it unset for one bucket (BLOBS)")]
    Empty,
    #[error("declares {0} replicas; at most {MAX_REPLICAS} are supported")]
    TooMany(usize),
    #[error("replica name {0:?} must be 1-32 characters of a-z, 0-9 and '-'")]
    BadName(String),
    #[error("replica name {0:?} is declared twice")]
    Duplicate(String),
    #[error("must mark exactly one replica \"home\": true, not {0}")]
    Home(usize),
}

/// Parses and checks the `REPLICAS` var (a JSON list of [`ReplicaSpec`]).
pub fn parse_replicas(json: &str) -> Result<Vec<ReplicaSpec>, ReplicaConfigError> {
    let specs: Vec<ReplicaSpec> = serde_json::from_str(json).map_err(|e| ReplicaConfigError::Syntax(e.to_string()))?;
    if specs.is_empty() {
        return Err(ReplicaConfigError::Empty);
    }
    if specs.len() > MAX_REPLICAS {
        return Err(ReplicaConfigError::TooMany(specs.len()));
    }
    for (i, spec) in specs.iter().enumerate() {
        let valid = (1..=32).contains(&spec.name.len())
            && spec.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(ReplicaConfigError::BadName(spec.name.clone()));
        }
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(ReplicaConfigError::Duplicate(spec.name.clone()));
        }
    }
    let homes = specs.iter().filter(|s| s.home).count();
    if homes != 1 {
        return Err(ReplicaConfigError::Home(homes));
    }
    Ok(specs)
}

/// Where a request comes from, as far as the platform knows (`cf.colo`, `cf.country`,
/// `cf.continent`); all `None` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub colo: Option<String>,
    pub country: Option<String>,
    pub continent: Option<String>,
}

impl Location {
    /// A location given as one code (a test hook's header): it is tried as colo, country
    /// and continent alike.
    pub fn from_code(code: &str) -> Self {
        let code = Some(code.trim().to_ascii_uppercase());
        Location { colo: code.clone(), country: code.clone(), continent: code }
    }
}

/// The index of the home replica (exactly one is declared home; the first if none is).
pub fn home_of(specs: &[ReplicaSpec]) -> usize {
    specs.iter().position(|s| s.home).unwrap_or(0)
}

/// Replica indexes in the order a request from `location` should try them: the replica
/// serving its colo, else its country, else its continent; then home; then the others in
/// declaration order.
pub fn preference_order(specs: &[ReplicaSpec], location: &Location) -> Vec<usize> {
    let serves = |i: usize, code: &Option<String>| {
        code.as_deref().is_some_and(|c| specs[i].serves.iter().any(|s| s.eq_ignore_ascii_case(c)))
    };
    let nearest = [&location.colo, &location.country, &location.continent]
        .into_iter()
        .find_map(|code| (0..specs.len()).find(|&i| serves(i, code)));
    let home = specs.iter().position(|s| s.home);
    let mut order: Vec<usize> = nearest.into_iter().chain(home).collect();
    order.dedup();
    let rest: Vec<usize> = (0..specs.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"[
        {"name": "eu", "binding": "BLOBS_EU", "region": "weur", "serves": ["EU", "AF"]},
        {"name": "us", "binding": "BLOBS_US", "region": "enam", "serves": ["NA", "SA", "DFW"], "home": true},
        {"name": "ap", "binding": "BLOBS_AP", "region": "apac", "serves": ["AS", "OC", "DE"]}
    ]"#;

    #[test]
    fn nearest_by_colo_then_country_then_continent_then_home() {
        let specs = parse_replicas(THREE).unwrap();
        let at = |colo: Option<&str>, country: Option<&str>, continent: Option<&str>| {
            let location = Location {
                colo: colo.map(Into::into),
                country: country.map(Into::into),
                continent: continent.map(Into::into),
            };
            preference_order(&specs, &location)
        };
        assert_eq!(at(None, None, Some("EU")), vec![0, 1, 2]);
        assert_eq!(at(None, Some("DE"), Some("EU")), vec![2, 1, 0], "country beats continent");
        assert_eq!(at(Some("DFW"), Some("DE"), Some("EU")), vec![1, 0, 2], "colo beats country");
        assert_eq!(at(None, None, Some("OC")), vec![2, 1, 0]);
        assert_eq!(at(None, None, None), vec![1, 0, 2], "unknown goes home first");
        assert_eq!(at(None, None, Some("AN")), vec![1, 0, 2]);
        assert_eq!(preference_order(&specs, &Location::from_code("eu")), vec![0, 1, 2]);
    }

    #[test]
    fn refuses_bad_declarations() {
        let one = |name: &str, home: bool| format!(r#"{{"name":"{name}","binding":"B","region":"r","home":{home}}}"#);
        assert!(matches!(parse_replicas("nope"), Err(ReplicaConfigError::Syntax(_))));
        assert_eq!(parse_replicas("[]"), Err(ReplicaConfigError::Empty));
        assert_eq!(parse_replicas(&format!("[{}]", one("a", false))), Err(ReplicaConfigError::Home(0)));
        assert_eq!(
            parse_replicas(&format!("[{},{}]", one("a", true), one("b", true))),
            Err(ReplicaConfigError::Home(2))
        );
        assert_eq!(
            parse_replicas(&format!("[{},{}]", one("a", true), one("a", false))),
            Err(ReplicaConfigError::Duplicate("a".into()))
        );
        assert_eq!(parse_replicas(&format!("[{}]", one("A", true))), Err(ReplicaConfigError::BadName("A".into())));
        let many: Vec<String> = (0..17).map(|i| one(&format!("r{i}"), i == 0)).collect();
        assert_eq!(parse_replicas(&format!("[{}]", many.join(","))), Err(ReplicaConfigError::TooMany(17)));
        assert!(matches!(
            parse_replicas(r#"[{"name":"a","binding":"B","region":"r","home":true,"zone":1}]"#),
            Err(ReplicaConfigError::Syntax(_))
        ));
        assert_eq!(parse_replicas(&format!("[{}]", one("a-1", true))).unwrap().len(), 1);
    }
}
