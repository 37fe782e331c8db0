//! Development tasks for claude-bottle: `cargo xtask <task>`.
//!
//! - `ci`: what CI runs — fmt check, clippy `-D warnings`, the tests, the package checks.
//! - `package`: `cargo package` for every publishable crate, in publish order.
//! - `images`: builds every image the tests need from local parts (no registry needed).
//! - `bench`: benchmarks (`bench egress`, `bench bottle`, `bench guard`; `bench --help`).
//!
//! This package depends on `anyhow` alone, so `cargo xtask ci` starts its `fmt` check at once.
//! `images` and `bench` need the Docker, HTTP and TLS stacks: they live in the `xtask-bench`
//! package (`xtask/bench/`), which [`heavy`] runs through `cargo run`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod ci;
#[cfg(test)]
mod tidy;

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    match task {
        "ci" => ci::run(rest),
        "package" => ci::package(rest),
        "images" => heavy(Profile::Dev, "images", rest),
        // The guard counts instructions of the egress binary, not of the harness: the quicker build.
        "bench" if rest.first().is_some_and(|a| a == "guard") => heavy(Profile::Dev, "bench", rest),
        "bench" => heavy(Profile::Release, "bench", rest),
        "help" | "--help" | "-h" => {
            println!("{}", HELP.trim());
            Ok(())
        }
        other => bail!("unknown task `{other}`; run `cargo xtask help` for the list"),
    }
}

const HELP: &str = "
cargo xtask <task>

Tasks:
  ci         fmt check, clippy -D warnings, the whole test suite, package checks
  package    cargo package for each publishable crate, in publish order
  images     build the images the tests need from local parts (debootstrap base, egress, git-gate, agent)
  bench      benchmarks: `bench egress`, `bench bottle`, `bench guard`; `bench --help` for all
";

/// How `xtask-bench` is built for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// `images` and `bench guard`: nothing they do is timed, so the quicker build.
    Dev,
    /// `bench`: the origin and the clients share the machine with what they measure, so they
    /// must be fast, or they and not the proxy would set the pace.
    Release,
}

/// The `xtask-bench` command for `task` and `args`, built with `profile`.
pub(crate) fn heavy_command(profile: Profile, task: &str, args: &[String]) -> Command {
    let mut command = ci::cargo(&["run", "--quiet", "--locked", "-p", "xtask-bench"]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    command.arg("--").arg(task).args(args);
    command
}

/// Runs a task of `xtask-bench` and exits with its status. A Ctrl-C reaches it as well (it is in
/// our process group), and it stops what it started itself.
fn heavy(profile: Profile, task: &str, args: &[String]) -> Result<()> {
    let status = heavy_command(profile, task, args)
        .status()
        .context("could not start `cargo run -p xtask-bench`")?;
    if !status.success() {
        // xtask-bench has said what went wrong; only the status is passed on.
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
