//! `cargo xtask ci` and `cargo xtask package`.
//!
//! `ci` is the one command that runs the whole test suite, locally and in `.ci/run`:
//! formatting, clippy with warnings denied, the package checks, the images (only when the Docker
//! tests are on), the instruction-count guard (only where valgrind is installed), the doctests
//! and the tests. The test runner's own summary is the last thing
//! it prints, so a reader (or CI) sees the verdict at the bottom.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The publishable crates, in publish order: each only depends on those before it.
pub(crate) const PUBLISH_ORDER: &[&str] = &[
    "bottle-secrets",
    "bottle-manifest",
    "bottle-git-gate",
    "bottle-core",
    "bottle-egress",
    "bottle-recipe",
    "bottle-docker",
    "bottle-cli",
];

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether the Docker-backed tests are switched on (`CLAUDE_BOTTLE_DOCKER_TESTS=1`).
fn docker_tests_enabled() -> bool {
    std::env::var("CLAUDE_BOTTLE_DOCKER_TESTS").is_ok_and(|v| v == "1")
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask ci` takes no arguments, got `{unknown}`");
    }
    step("cargo fmt --check", cargo(&["fmt", "--all", "--check"]))?;
    step(
        "clippy -D warnings",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step("package checks", package_command())?;
    if docker_tests_enabled() {
        step("images", cargo(&["xtask", "images"]))?;
    } else {
        eprintln!("xtask: CLAUDE_BOTTLE_DOCKER_TESTS is not 1: the Docker tests will not run");
    }
    // After the images: it counts the egress image's own binary, which that step has built.
    if on_path("valgrind") {
        step(
            "instruction-count guard",
            crate::heavy_command(crate::Profile::Dev, "bench", &["guard".to_owned()]),
        )?;
    } else {
        eprintln!(
            "xtask: valgrind is not installed: the instruction-count guard (`cargo xtask bench guard`) will not run"
        );
    }
    step(
        "doctests",
        cargo(&["test", "--workspace", "--doc", "--locked"]),
    )?;
    // Last, so that nextest's own summary closes the output.
    eprintln!("xtask: == tests");
    let status = cargo(&[
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
    ])
    .status()
    .context("could not start `cargo nextest`; install it with `cargo install cargo-nextest`")?;
    if !status.success() {
        bail!("the tests failed ({status})");
    }
    Ok(())
}

pub(crate) fn package(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask package` takes no arguments, got `{unknown}`");
    }
    step("package checks", package_command())
}

/// `cargo package` over every publishable crate at once, so the local crates resolve against
/// each other before any of them is on crates.io; the order above is the order to publish in.
fn package_command() -> Command {
    forget_stale_package_sources();
    forget_stale_package_builds();
    let mut args = vec!["package", "--locked", "--allow-dirty"];
    for krate in PUBLISH_ORDER {
        args.extend(["--package", krate]);
    }
    cargo(&args)
}

/// Removes cargo's extracted copies of our own packaged crates.
///
/// `cargo package` verifies each crate against the tarballs of the others through a local
/// registry overlay, and cargo extracts those tarballs under `$CARGO_HOME/registry/src/` — and
/// never extracts a name and version again once the folder exists. Without this, a second run
/// on the same machine verifies against the sources of the first run, and fails (or passes)
/// for code that is no longer there.
fn forget_stale_package_sources() {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo"))
        });
    let Some(sources) = cargo_home.map(|home| home.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return;
    };
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for extracted in crates.flatten() {
            let name = extracted.file_name().to_string_lossy().into_owned();
            let ours = PUBLISH_ORDER.iter().any(|krate| {
                name.strip_prefix(krate)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours && std::fs::remove_dir_all(extracted.path()).is_ok() {
                eprintln!(
                    "xtask: removed a stale extracted copy: {}",
                    extracted.path().display()
                );
            }
        }
    }
}

/// Removes what cargo compiled from those extracted copies, for the same reason: it takes a
/// registry package of a given name and version as never changing, so it links the build of
/// the first run again instead of compiling the new tarball (the verification then fails on
/// code that is only in the workspace, or passes on code that is gone). The builds are found by
/// their dep-info, which names the registry folder they were compiled from.
fn forget_stale_package_builds() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    let registry_marker = format!("registry{}src", std::path::MAIN_SEPARATOR);
    for profile in ["debug", "release"] {
        let dir = target.join(profile);
        let Ok(deps) = std::fs::read_dir(dir.join("deps")) else {
            continue;
        };
        for dep in deps.flatten() {
            let file = dep.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".d") else {
                continue;
            };
            let Some((krate, hash)) = stem.rsplit_once('-') else {
                continue;
            };
            let ours = PUBLISH_ORDER.iter().any(|k| k.replace('-', "_") == krate);
            let from_registry = std::fs::read_to_string(dep.path())
                .is_ok_and(|text| text.contains(&registry_marker));
            if ours && from_registry {
                let fingerprint = dir
                    .join(".fingerprint")
                    .join(format!("{}-{hash}", krate.replace('_', "-")));
                if std::fs::remove_dir_all(&fingerprint).is_ok() {
                    eprintln!("xtask: forgot a stale build: {}", fingerprint.display());
                }
                let _ = std::fs::remove_file(dep.path());
            }
        }
    }
}

pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.args(args);
    command
}

fn step(name: &str, mut command: Command) -> Result<()> {
    eprintln!("xtask: == {name}");
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("could not start `{name}`"))?;
    eprintln!("xtask: {name}: {:.1}s", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{name}` failed ({status})");
    }
    Ok(())
}
