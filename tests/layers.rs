//! The layering of ARCHITECTURE.md, checked: each top-level module of `src/` may name only
//! the modules its row allows (`crate::<module>` paths in code outside its unit tests).
//! Adding a dependency between layers means changing the table here and in
//! ARCHITECTURE.md together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module -> the modules it may call. `replication::admin` stands for the admin port only.
const ALLOWED: &[(&str, &[&str])] = &[
    ("oci", &[]),
    ("ids", &["oci"]),
    ("storage", &["oci", "ids"]),
    ("auth", &["oci", "ids", "storage"]),
    ("registry", &["oci", "ids", "storage"]),
    ("lifecycle", &["oci", "ids", "storage"]),
    ("replication", &["oci", "ids", "storage"]),
    ("mirror", &["oci"]),
    ("settings", &["oci", "auth", "registry", "replication", "lifecycle", "mirror"]),
    ("api", &["oci", "ids", "storage", "auth", "registry", "replication::admin", "lifecycle", "mirror", "settings"]),
    ("edge", &["*"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its unit tests (by this crate's
/// convention a trailing `#[cfg(test)]` module, or a file of tests of its own).
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    if path.file_name().unwrap().to_string_lossy().ends_with("tests.rs") {
        return String::new();
    }
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// `crate::a` and `crate::a::b` named in `code`, as (a, a::b).
fn named_modules(code: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let mut parts = path.split("::").filter(|p| !p.is_empty());
        if let Some(top) = parts.next() {
            let second = parts.next().map(|s| format!("{top}::{s}")).unwrap_or_default();
            found.insert((top.to_owned(), second));
        }
    }
    found
}

#[test]
fn each_layer_calls_only_what_architecture_md_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(module) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        if module == "lib" {
            continue;
        }
        let rules = *allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("src/{module} is not in the layer table: add it here and to ARCHITECTURE.md"));
        seen.insert(module.clone());
        if rules == ["*"] {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.push(path.clone());
        }
        for file in files {
            for (top, second) in named_modules(&code_of(&file)) {
                let ok = top == module || rules.contains(&top.as_str()) || rules.contains(&second.as_str());
                if !ok {
                    violations.push(format!(
                        "{} names crate::{}",
                        file.display(),
                        if second.is_empty() { &top } else { &second }
                    ));
                }
            }
        }
    }
    let declared: BTreeSet<String> = allowed.keys().map(|k| k.to_string()).collect();
    let missing: Vec<_> = declared.difference(&seen).filter(|m| *m != "settings").collect();
    assert!(missing.is_empty(), "the layer table names modules that do not exist: {missing:?}");
    assert!(
        violations.is_empty(),
        "calls across layers that ARCHITECTURE.md does not allow:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_crate_paths_and_ignores_comments_and_tests() {
    let found = named_modules("use crate::registry::Registry;\nlet x = crate::oci::Digest::parse(s);");
    assert!(found.contains(&("registry".into(), "registry::Registry".into())));
    assert!(found.contains(&("oci".into(), "oci::Digest".into())));
    let dir = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sample.rs");
    fs::write(&file, "use crate::oci::Tag; // crate::edge\n#[cfg(test)]\nmod tests { use crate::edge; }\n").unwrap();
    let modules = named_modules(&code_of(&file));
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(modules.into_iter().map(|(t, _)| t).collect::<Vec<_>>(), vec!["oci".to_owned()]);
}
