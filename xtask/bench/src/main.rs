//! `xtask-bench`: the tasks of `cargo xtask` that need the TLS, HTTP and Docker stacks, kept out
//! of the light `xtask` package so that `cargo xtask ci` starts its `fmt` check at once. `cargo
//! xtask bench …` runs this package's release build, `cargo xtask images` and `cargo xtask
//! bench guard` its debug build.
//!
//! - `bench egress` (`egress/`): bottle-egress beside direct, mitmdump, Squid with ssl-bump and
//!   two reference relays, in one run.
//! - `bench bottle` (`bottle/`): the bottle's life — `start --exec true` split into its steps,
//!   teardown, cleanup of orphans, the agent image — beside a bare `docker run --rm`.
//! - `bench guard` (`guard.rs`): instruction counts of a fixed request script through the egress
//!   under callgrind, against a committed baseline: a regression guard noise cannot fool.
//! - `images` (`images.rs`): the images the tests need, from local parts.
//!
//! Results are JSON under `docs/bench/`; `docs/performance.md` is rendered from them (`doc.rs`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bottle;
mod doc;
mod egress;
mod guard;
mod images;
mod relay;
mod util;
mod verdict;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((task, rest)) if task == "images" => images::run(rest),
        Some((task, rest)) if task == "bench" => bench(rest),
        _ => bail!("xtask-bench is run by `cargo xtask bench …` and `cargo xtask images`"),
    }
}

fn bench(args: &[String]) -> Result<()> {
    let Some((what, rest)) = args.split_first() else {
        println!("{}", help());
        bail!("`cargo xtask bench` needs a benchmark: egress, bottle, guard or render");
    };
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", help());
        return Ok(());
    }
    match what.as_str() {
        "egress" => egress::run(rest),
        "bottle" => bottle::run(rest),
        "guard" => guard::run(rest),
        "render" => doc::render_command(rest),
        // The reference hop `bench egress` starts as a child process.
        "relay" => relay::run(rest),
        "-h" | "--help" | "help" => {
            println!("{}", help());
            Ok(())
        }
        other => bail!("unknown benchmark `{other}`; `cargo xtask bench --help` lists them"),
    }
}

fn help() -> String {
    format!(
        "cargo xtask bench <benchmark> [options]

Benchmarks (each writes its JSON under docs/bench/ and re-renders docs/performance.md):
  egress   bottle-egress beside direct, mitmdump, Squid (ssl-bump) and two reference relays:
           HTTP/1.1 load at c=1/32/128 warm and c=1/8 new connections, HTTP/2 streams, a
           large download and upload, server-sent event delay, first contact, memory per
           idle tunnel, route-table size, DLP off/on. Needs oha, mitmdump, squid, curl.
  bottle   the bottle's life on the Docker engine, beside a bare `docker run --rm`:
           `claude-bottle start --yes --exec true` split into its steps, teardown, cleanup
           of 20 orphaned bottles, the agent image's size, layers, cold and warm builds.
  guard    instruction counts (valgrind --tool=callgrind) of a fixed request script
           through bottle-egress against xtask/bench/guard-baseline.json (±{tolerance}%):
           noise cannot move them. --update rewrites the baseline; --profile DIR keeps
           the callgrind files and prints the hottest functions.
  render   re-render docs/performance.md from the JSON already under docs/bench/.

Run the full set on a quiet machine (the numbers are ratios within one run):
  cargo xtask bench egress && cargo xtask bench bottle && cargo xtask bench guard

Try every row quickly, writing under target/bench-smoke/ instead of docs/:
  cargo xtask bench egress --smoke; cargo xtask bench bottle --smoke

egress options:
{egress}

bottle options:
{bottle}

guard options:
{guard}",
        tolerance = guard::TOLERANCE_PERCENT,
        egress = indent(egress::USAGE),
        bottle = indent(bottle::USAGE),
        guard = indent(guard::USAGE),
    )
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
