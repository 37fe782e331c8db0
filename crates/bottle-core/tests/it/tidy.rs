//! bottle-core stays free of Docker, TLS, HTTP and terminal crates: its normal dependency graph
//! is checked with `cargo tree`.

use std::process::Command;

const FORBIDDEN: [&str; 12] = [
    "bollard",
    "rustls",
    "tokio-rustls",
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "openssl",
    "native-tls",
    "crossterm",
    "termion",
    "ratatui",
    "indicatif",
];

fn dependency_names(extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "-p", "bottle-core"])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_docker_tls_or_terminal_crates_in_the_dependency_graph() {
    for features in [&[][..], &["--all-features"][..]] {
        let names = dependency_names(features);
        assert!(
            names.iter().any(|n| n == "tokio"),
            "the tree was read (tokio is a dependency): {names:?}"
        );
        let found: Vec<&String> = names
            .iter()
            .filter(|n| FORBIDDEN.contains(&n.as_str()) || n.starts_with("aws-lc"))
            .collect();
        assert!(
            found.is_empty(),
            "forbidden dependencies {features:?}: {found:?}"
        );
    }
}
