//! Development tasks for claude-bottle: `cargo xtask <task>`.
//!
//! - `ci`: what CI runs — fmt check, clippy `-D warnings`, the tests, the package checks.
//! - `package`: `cargo package` for every publishable crate, in publish order.
//! - `images`: builds every image the tests need from local parts (no registry needed).
//! - `bench`: benchmarks (`bench egress`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod images;
#[cfg(test)]
mod tidy;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    match task {
        "ci" => ci::run(rest),
        "package" => ci::package(rest),
        "images" => images::run(rest),
        "bench" => bench::run(rest),
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
  bench      benchmarks: `bench egress`
";
