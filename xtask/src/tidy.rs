//! Tidy checks, as ordinary tests: `cargo test -p xtask` (and so `cargo xtask ci`) enforces them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ci::PUBLISH_ORDER;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn metadata() -> serde_json::Value {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {output:?}");
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

fn packages() -> Vec<serde_json::Value> {
    metadata()["packages"]
        .as_array()
        .expect("packages is an array")
        .clone()
}

#[test]
fn every_publishable_crate_is_in_the_publish_order_and_has_its_metadata() {
    let packages = packages();
    let publishable: Vec<&serde_json::Value> = packages
        .iter()
        .filter(|p| {
            p["publish"]
                .as_array()
                .is_none_or(|registries| !registries.is_empty())
        })
        .collect();
    let mut names: Vec<&str> = publishable
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut ordered = PUBLISH_ORDER.to_vec();
    ordered.sort_unstable();
    assert_eq!(
        names, ordered,
        "PUBLISH_ORDER in xtask/src/ci.rs must list every publishable crate"
    );

    for package in publishable {
        let name = package["name"].as_str().unwrap();
        for field in ["description", "license", "repository", "readme"] {
            assert!(
                package[field].as_str().is_some_and(|v| !v.is_empty()),
                "{name}: `{field}` is missing from its Cargo.toml"
            );
        }
        for list in ["keywords", "categories"] {
            assert!(
                package[list].as_array().is_some_and(|v| !v.is_empty()),
                "{name}: `{list}` is missing from its Cargo.toml"
            );
        }
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let readme = manifest
            .parent()
            .unwrap()
            .join(package["readme"].as_str().unwrap());
        assert!(
            readme.is_file(),
            "{name}: its readme {} does not exist",
            readme.display()
        );
    }
}

#[test]
fn publish_order_puts_every_crate_after_its_local_dependencies() {
    let packages = packages();
    for (position, name) in PUBLISH_ORDER.iter().enumerate() {
        let package = packages
            .iter()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("{name} is not a workspace package"));
        for dependency in package["dependencies"].as_array().unwrap() {
            let dep = dependency["name"].as_str().unwrap();
            let is_normal = dependency["kind"].is_null();
            if let Some(dep_position) = PUBLISH_ORDER.iter().position(|n| *n == dep) {
                assert!(
                    !is_normal || dep_position < position,
                    "{name} depends on {dep}, so {dep} must come first in PUBLISH_ORDER"
                );
            }
        }
    }
}

#[test]
fn cargo_install_bottle_cli_installs_the_claude_bottle_command() {
    // The README promises `cargo install bottle-cli`: the package must carry that name and
    // build the `claude-bottle` binary.
    let packages = packages();
    let cli = packages
        .iter()
        .find(|p| p["name"] == "bottle-cli")
        .expect("a package named bottle-cli (crates/bottle-cli)");
    let binaries: Vec<&str> = cli["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(binaries, ["claude-bottle"]);
    assert!(
        PUBLISH_ORDER.contains(&"bottle-cli"),
        "bottle-cli is published"
    );
}

#[test]
fn every_crate_inherits_the_workspace_lints() {
    for package in packages() {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} must say `[lints] workspace = true`",
            manifest.display()
        );
    }
}

#[test]
fn no_stubs_or_debug_leftovers_in_the_sources() {
    let forbidden = ["todo!(", "unimplemented!(", "dbg!("];
    let mut offenders = Vec::new();
    for entry in walk(&workspace_root().join("crates")).chain(walk(&workspace_root().join("xtask")))
    {
        if entry.extension().is_none_or(|e| e != "rs") || entry.ends_with("tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        for (number, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                offenders.push(format!(
                    "{}:{}: {}",
                    entry.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "left in the code:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn ignored_tests_say_why() {
    let mut offenders = Vec::new();
    for entry in walk(&workspace_root().join("crates")) {
        if entry.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim() == "#[ignore]" {
                offenders.push(format!("{}:{}", entry.display(), number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use #[ignore = \"why\"] instead of a bare #[ignore]:\n{}",
        offenders.join("\n")
    );
}

/// Every file below `dir`, skipping build output.
fn walk(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("target") && !path.ends_with("fuzz") {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.into_iter()
}
