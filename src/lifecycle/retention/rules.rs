//! `RETENTION` parsed and checked: a JSON list of policies. Every field is checked by
//! hand so that a mistake is reported as the policy, the field and how to fix it; an
//! unknown field is refused (a misspelt `keep_tags` would otherwise delete what it was
//! meant to keep), `null` is the same as leaving a field out, and a policy that can never
//! apply because an earlier one matches every repository it would is refused too.

use super::{plan, Inventory, Plan, Policy, Timing};
use crate::oci::{Pattern, RepositoryName, Tag};
use serde_json::{Map, Value};

/// The most policies `RETENTION` may list.
pub const MAX_POLICIES: usize = 100;
/// The largest number of days a policy may name (100 years).
pub const MAX_DAYS: u32 = 36_500;
/// The largest `keep_last`.
pub const MAX_KEEP_LAST: u32 = 100_000;

const FIELDS: &str = "repositories, keep_last, keep_tags, untagged_older_than_days, keep_pulled_within_days";
const EXAMPLE: &str = r#"[{"repositories": "ci/*", "keep_last": 10, "keep_tags": ["v*"]}]"#;

/// What is wrong with `RETENTION`: where (`policy 2 ("ci/*"), keep_last`) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct RetentionError {
    pub at: String,
    pub problem: String,
}

fn error(at: impl Into<String>, problem: impl Into<String>) -> RetentionError {
    RetentionError { at: at.into(), problem: problem.into() }
}

/// The checked policies, in the order written (the first match applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRules {
    policies: Vec<Policy>,
}

impl RetentionRules {
    /// Parses the JSON of `RETENTION`. `[]` is valid and keeps everything.
    pub fn parse(json: &str) -> Result<RetentionRules, RetentionError> {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            error("RETENTION", format!("is not valid JSON ({e}); write a list of policies, e.g. {EXAMPLE}"))
        })?;
        let Value::Array(items) = value else {
            return Err(error("RETENTION", format!("must be a list of policies, e.g. {EXAMPLE}")));
        };
        if items.len() > MAX_POLICIES {
            let problem = format!("lists {} policies, at most {MAX_POLICIES} are allowed: merge some", items.len());
            return Err(error("RETENTION", problem));
        }
        let mut policies: Vec<Policy> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let policy = parse_policy(index + 1, item)?;
            if let Some(earlier) = policies.iter().position(|p| shadows(&p.repositories, &policy.repositories)) {
                let problem = format!(
                    "never applies: policy {} ({:?}) matches every repository it would, and the first match wins; \
                     move it before that policy or remove it",
                    earlier + 1,
                    policies[earlier].repositories.as_str()
                );
                return Err(error(place(index + 1, Some(&policy.repositories), None), problem));
            }
            policies.push(policy);
        }
        Ok(RetentionRules { policies })
    }

    /// Adds `policy` after the others unless an earlier one already covers every
    /// repository it would (the first match wins); says whether it was added.
    pub fn append_unless_covered(&mut self, policy: Policy) -> bool {
        if self.policies.iter().any(|p| shadows(&p.repositories, &policy.repositories)) {
            return false;
        }
        self.policies.push(policy);
        true
    }

    /// The policies, in order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy that applies to `repository`: the first whose pattern matches it.
    pub fn policy_for(&self, repository: &RepositoryName) -> Option<&Policy> {
        self.policies.iter().find(|p| p.repositories.matches(repository.as_str()))
    }

    /// The plan for `repository`: its policy's, or keep everything when none matches.
    pub fn plan(
        &self,
        repository: &RepositoryName,
        inventory: &Inventory<'_>,
        timing: Timing,
        is_immutable: &dyn Fn(&Tag) -> bool,
    ) -> Plan {
        match self.policy_for(repository) {
            Some(policy) => plan::plan(policy, inventory, timing, is_immutable),
            None => Plan::keep_everything(inventory),
        }
    }
}

/// Whether every repository `later` matches is matched by `earlier` already, in the cases
/// that are certain: the same pattern, or `earlier` is `<prefix>*` (no other wildcard) and
/// the fixed start of `later` begins with that prefix (`ci/*` shadows `ci/app*`, `*` all).
fn shadows(earlier: &Pattern, later: &Pattern) -> bool {
    let is_wild = |c: char| c == '*' || c == '?';
    let (earlier, later) = (earlier.as_str(), later.as_str());
    let prefix = earlier.trim_end_matches('*');
    let fixed_start = &later[..later.find(is_wild).unwrap_or(later.len())];
    earlier == later || (prefix.len() < earlier.len() && !prefix.contains(is_wild) && fixed_start.starts_with(prefix))
}

/// `policy 2`, `policy 2 ("ci/*")` or `policy 2 ("ci/*"), keep_last`.
fn place(index: usize, repositories: Option<&Pattern>, field: Option<&str>) -> String {
    let mut at = format!("policy {index}");
    if let Some(pattern) = repositories {
        at.push_str(&format!(" ({:?})", pattern.as_str()));
    }
    if let Some(field) = field {
        at.push_str(&format!(", {field}"));
    }
    at
}

fn parse_policy(index: usize, item: &Value) -> Result<Policy, RetentionError> {
    let Value::Object(fields) = item else {
        let problem = format!("must be an object with \"repositories\" and rules, e.g. {EXAMPLE}");
        return Err(error(place(index, None, None), problem));
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.split(", ").any(|f| f == k.as_str())) {
        let problem = format!("is not a field of a policy (they are: {FIELDS}); check its spelling");
        return Err(error(place(index, None, Some(&format!("{unknown:?}"))), problem));
    }
    let repositories = match fields.get("repositories") {
        None | Some(Value::Null) => {
            let problem = "is missing: name the repositories the policy is for, e.g. \"ci/*\" (\"*\" for all)";
            return Err(error(place(index, None, Some("repositories")), problem));
        }
        Some(Value::String(text)) => {
            Pattern::parse(text).map_err(|e| error(place(index, None, Some("repositories")), e.to_string()))?
        }
        Some(other) => {
            let problem = format!("must be one repository pattern as a string, e.g. \"ci/*\"; got {other}");
            return Err(error(place(index, None, Some("repositories")), problem));
        }
    };
    let at = |field: &str| place(index, Some(&repositories), Some(field));
    let keep_tags = match present(fields, "keep_tags") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.is_empty() => {
            let problem = "is empty: list at least one tag pattern, e.g. [\"v*\"], or leave it out \
                           (an empty list would keep no tag by name)";
            return Err(error(at("keep_tags"), problem));
        }
        Some(Value::Array(items)) => {
            items.iter().map(|item| tag_pattern(item, &at("keep_tags"))).collect::<Result<_, _>>()?
        }
        Some(other) => {
            let problem = format!("must be a list of tag patterns, e.g. [\"v*\", \"latest\"]; got {other}");
            return Err(error(at("keep_tags"), problem));
        }
    };
    let keep_last = whole_number(fields, "keep_last", MAX_KEEP_LAST, 0, "tags", &at)?;
    let untagged_older_than_days = whole_number(fields, "untagged_older_than_days", MAX_DAYS, 0, "days", &at)?;
    let keep_pulled_within_days = whole_number(fields, "keep_pulled_within_days", MAX_DAYS, 1, "days", &at)?;
    Ok(Policy { repositories, keep_last, keep_tags, untagged_older_than_days, keep_pulled_within_days })
}

/// The field's value, `None` when absent or `null`.
fn present<'a>(fields: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    fields.get(field).filter(|v| !v.is_null())
}

fn tag_pattern(item: &Value, at: &str) -> Result<Pattern, RetentionError> {
    match item {
        Value::String(text) => Pattern::parse(text).map_err(|e| error(at, e.to_string())),
        other => Err(error(at, format!("each entry must be a tag pattern string such as \"v*\"; got {other}"))),
    }
}

fn whole_number(
    fields: &Map<String, Value>,
    field: &str,
    max: u32,
    min: u32,
    unit: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<u32>, RetentionError> {
    let Some(value) = present(fields, field) else { return Ok(None) };
    match value.as_u64() {
        Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Ok(Some(n as u32)),
        _ => {
            let problem = format!(
                "must be a whole number of {unit} from {min} to {max}, e.g. 10, or null to not use it; got {value}"
            );
            Err(error(at(field), problem))
        }
    }
}
