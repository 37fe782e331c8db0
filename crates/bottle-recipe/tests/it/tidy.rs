//! The recipe is backend-neutral: no Docker (or other engine) client and no terminal crate in
//! its normal dependency graph, checked with `cargo tree`. (The egress brings the TLS stack; that
//! is what this crate is for.)

use std::process::Command;

const FORBIDDEN: [&str; 6] = [
    "bollard",
    "kube",
    "k8s-openapi",
    "crossterm",
    "ratatui",
    "indicatif",
];

#[test]
fn no_engine_client_or_terminal_crate_in_the_dependency_graph() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "-p", "bottle-recipe"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.iter().any(|n| n == "bottle-egress"),
        "the tree was read: {names:?}"
    );
    let found: Vec<&String> = names
        .iter()
        .filter(|n| FORBIDDEN.contains(&n.as_str()))
        .collect();
    assert!(found.is_empty(), "forbidden dependencies: {found:?}");
}
