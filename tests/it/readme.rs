//! The README is the operator's reference: it must list every variable the code reads, and
//! `.ci/run` must run exactly the README's test command.

use std::collections::BTreeSet;
use std::path::Path;

use gatehouse::config::vars::{CONFIG_FILE_VAR, VARS};

use crate::support::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `GATEHOUSE_…` name written in the sources.
fn names_in_sources(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            names_in_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            // Unit tests use made-up and misspelled names on purpose; only product code counts.
            let product = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut rest = product;
            while let Some(i) = rest.find("GATEHOUSE_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                // `GATEHOUSE_` and `GATEHOUSE_TEST_` are prefixes, not variables.
                if !name.ends_with('_') && !name.starts_with("GATEHOUSE_TEST_") {
                    out.insert(name.to_string());
                }
                rest = &tail[end..];
            }
        }
    }
}

#[test]
fn readme_lists_every_variable_the_code_reads() {
    let readme = read("README.md");
    let mut names = BTreeSet::new();
    names_in_sources(&repo_root().join("src"), &mut names);
    let known: BTreeSet<String> = VARS
        .iter()
        .map(|v| v.name.to_string())
        .chain([CONFIG_FILE_VAR.to_string()])
        .collect();
    // The scan finds the table's names, so it is looking in the right place...
    assert!(names.len() >= VARS.len(), "scan found only {names:?}");
    for name in &names {
        // ...and nothing outside the table: a name in the code is a name in the table.
        assert!(
            known.contains(name),
            "{name} is used in src/ but is not in config::vars"
        );
    }
    for name in &known {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md does not document `{name}`"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    assert!(
        readme.contains("scripts/test"),
        "README names the test command"
    );
    assert!(
        ci.lines()
            .any(|l| l.trim().starts_with("exec scripts/test")),
        ".ci/run runs scripts/test:\n{ci}"
    );
}
