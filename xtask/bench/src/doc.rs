//! `docs/performance.md`, rendered from the JSON each benchmark writes under `docs/bench/`:
//! running one benchmark re-renders the whole document with the latest figures of the others,
//! and a report can be re-rendered (`cargo xtask bench render`) without measuring again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{bottle, egress, guard, util};

/// One benchmark's figures.
#[derive(Debug)]
pub(crate) enum Part {
    Egress(Box<egress::Results>),
    Bottle(Box<bottle::Results>),
}

/// Where `out_dir`'s JSON of a part lives: `<out_dir>/bench/<name>.json`.
fn json_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join("bench").join(format!("{name}.json"))
}

/// Writes the part's JSON under `out_dir/bench/`, then re-renders `out_dir/performance.md`.
pub(crate) fn save(out_dir: &Path, part: Part) -> Result<()> {
    let (name, json) = match &part {
        Part::Egress(r) => ("egress", serde_json::to_string_pretty(r)?),
        Part::Bottle(r) => ("bottle", serde_json::to_string_pretty(r)?),
    };
    let path = json_path(out_dir, name);
    util::write_file(&path, &format!("{json}\n"))?;
    println!("wrote {}", path.display());
    render(out_dir)
}

/// `cargo xtask bench render [--out-dir DIR]`.
pub(crate) fn render_command(args: &[String]) -> Result<()> {
    let out_dir = match args {
        [] => util::workspace_root().join("docs"),
        [flag, dir] if flag == "--out-dir" => PathBuf::from(dir),
        _ => anyhow::bail!("usage: cargo xtask bench render [--out-dir DIR]"),
    };
    render(&out_dir)
}

fn render(out_dir: &Path) -> Result<()> {
    let egress = read::<egress::Results>(&json_path(out_dir, "egress"))?;
    let bottle = read::<bottle::Results>(&json_path(out_dir, "bottle"))?;
    let baseline = guard::Baseline::read(&guard::baseline_path())?;
    let path = out_dir.join("performance.md");
    util::write_file(
        &path,
        &document(egress.as_ref(), bottle.as_ref(), baseline.as_ref()),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{} is not a report of this harness; run the benchmark again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

const NOT_RUN: &str = "_Not measured yet with this harness. Run it on a quiet machine._\n";

/// The whole document.
pub(crate) fn document(
    egress: Option<&egress::Results>,
    bottle: Option<&bottle::Results>,
    baseline: Option<&guard::Baseline>,
) -> String {
    format!(
        "# Performance\n\n\
         <!-- Written by `cargo xtask bench`; edit xtask/bench/src/, not this file. -->\n\n\
         Three benchmarks, each run on its own and each writing its figures as JSON under\n\
         `docs/bench/`, from which this page is rendered:\n\n\
         - `cargo xtask bench egress` — bottle-egress side by side with a direct connection,\n\
         \x20 mitmdump, Squid with ssl-bump and two reference relays.\n\
         - `cargo xtask bench bottle` — the bottle's life on the Docker engine, beside a bare\n\
         \x20 `docker run --rm`.\n\
         - `cargo xtask bench guard` — instruction counts of a fixed request script through the\n\
         \x20 egress, against a committed baseline: the regression guard.\n\n\
         Every target is a ratio or a bound within one run, judged PASS or FAIL with its margin.\n\
         Run the first two on a quiet machine: on a shared one their numbers are noise. Every row\n\
         can be tried briefly with `--smoke` (written under `target/bench-smoke/`, not here).\n\n\
         ## What the benchmarks need\n\n\
         - `oha`: `cargo install oha --locked`\n\
         - `mitmdump`: `pip install mitmproxy`\n\
         - Squid built with OpenSSL: `apt-get install squid-openssl` (Debian). The bench writes\n\
         \x20 its own `squid.conf` and certificate database in a temporary directory and runs\n\
         \x20 `squid -N` in the foreground as Debian's unprivileged `proxy` user; no system\n\
         \x20 service is needed (stop one if the package started it: it is not used).\n\
         - `curl`, and for the guard `valgrind`: `apt-get install curl valgrind`\n\
         - `bench bottle`: a Docker engine and the images of `cargo xtask images`.\n\
         - Open files: `ulimit -n 4096` or more for 1 000 idle tunnels.\n\n\
         ## When a target is missed\n\n\
         The targets table says by how much. Then find out why before changing code:\n\n\
         - `cargo xtask bench guard --profile DIR` runs the guard's script under callgrind with\n\
         \x20 a symbolised build (`--profile profiling`: release plus line tables, not stripped),\n\
         \x20 keeps `DIR/<kind>.callgrind.out` and prints the hottest functions of each kind\n\
         \x20 (`callgrind_annotate`).\n\
         - `cargo xtask bench egress --perf DIR --egress-bin target/profiling/bottle-egress`\n\
         \x20 records where bottle-egress spends its time over a whole run (`perf record -e\n\
         \x20 cpu-clock -g`, which needs no hardware counters); `perf report -i DIR/egress.perf.data`.\n\n\
         {egress}\n{bottle}\n{guard}",
        egress = egress.map_or_else(
            || format!("## The egress, side by side\n\n{NOT_RUN}"),
            egress::Results::markdown
        ),
        bottle = bottle.map_or_else(
            || format!("## The bottle's life\n\n{NOT_RUN}"),
            bottle::Results::markdown
        ),
        guard = guard::markdown(baseline),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_with_nothing_measured_says_so_for_every_part() {
        let doc = document(None, None, None);
        assert_eq!(doc.matches(NOT_RUN).count(), 2, "{doc}");
        assert!(doc.contains("apt-get install squid-openssl"), "{doc}");
        assert!(doc.contains("## The regression guard"), "{doc}");
    }
}
