//! The README's settings table lists exactly the vars the settings read: a feature that
//! adds a setting documents it, and a row never outlives its setting.

use edge_registry::settings::{lookup_in, Settings};
use std::cell::RefCell;
use std::collections::BTreeSet;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const REPLICAS: &str = r#"[{"name": "us", "binding": "BLOBS_US", "region": "enam", "home": true}]"#;

/// Every name the settings look up when every section is on.
fn names_read() -> BTreeSet<String> {
    let on = [("AUTH_ANONYMOUS", "[]"), ("AUTH_TOKEN_SECRET", SECRET), ("REPLICAS", REPLICAS)];
    let values = lookup_in(&on);
    let read = RefCell::new(BTreeSet::new());
    let recording = |name: &str| {
        read.borrow_mut().insert(name.to_owned());
        values(name)
    };
    let settings = Settings::from_lookup(&recording).expect("valid settings");
    assert!(settings.access.is_some() && settings.replication.is_some(), "every section on");
    read.into_inner()
}

/// The names in the second column of the table under "### Settings".
fn names_documented() -> BTreeSet<String> {
    let readme = include_str!("../README.md");
    let section = readme.split("\n### Settings\n").nth(1).expect("README has a ### Settings section");
    let section = section.split("\n#").next().unwrap_or(section);
    let rows = section.lines().filter(|l| l.starts_with('|')).skip(2);
    rows.map(|row| {
        let cell = row.split('|').nth(2).expect("a name column").trim();
        cell.trim_matches('`').to_owned()
    })
    .collect()
}

#[test]
fn the_readme_table_lists_exactly_the_settings_read() {
    let (read, documented) = (names_read(), names_documented());
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    assert!(undocumented.is_empty(), "read but not in README's settings table: {undocumented:?}");
    assert!(stale.is_empty(), "in README's settings table but never read: {stale:?}");
    assert!(read.len() >= 13, "{read:?}");
}
