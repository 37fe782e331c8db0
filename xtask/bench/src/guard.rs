//! `cargo xtask bench guard`: a regression guard that noise cannot fool. bottle-egress runs
//! under `valgrind --tool=callgrind`, which counts the instructions it executes, while the
//! harness (outside the counted process) sends it a fixed script; the counts are compared with
//! the committed baseline `xtask/bench/guard-baseline.json`, within ±[`TOLERANCE_PERCENT`].
//!
//! Each kind of work is its own run of the egress, and the count of a run that does nothing
//! (start, then SIGTERM) is subtracted, so a figure is what that work costs:
//!
//! - `warm-h1`: one tunnel, then [`WARM_REQUESTS`] `GET /` in turn on one HTTP/1.1 connection;
//! - `warm-h2`: the same on one HTTP/2 connection, one stream at a time;
//! - `first-contact`: [`FIRST_HOSTS`] never-seen hosts, one new connection and `GET /` each
//!   (a leaf minted, an upstream dialled);
//! - `body-1mb`: one tunnel, then [`BODIES`] downloads and as many uploads of 1 MB;
//! - `idle-10k-routes` and `warm-h1-10k-routes`: `idle` and `warm-h1` again with
//!   [`MANY_ROUTES`] more routes in the table (the first net of `idle`, the second of
//!   `idle-10k-routes`): a lookup that stays O(1) or O(log n) keeps `warm-h1-10k-routes` per
//!   request where `warm-h1` is.
//!
//! What keeps the count still: one egress thread (its default), the same sizes and request
//! counts every time, requests one after another (no race decides HTTP/1.1 against a shared
//! HTTP/2 upstream), IP literals (no resolver), and the client, the origin and every timer in
//! the harness process, which is not counted. What moves it on purpose: a different rustc,
//! dependency versions, valgrind or CPU family; the guard names the ones that differ from the
//! baseline's, and `--update` records a new baseline.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};

use crate::egress::{client, origin, proxies};
use crate::util::{self, Proc, Tool};

pub(crate) const TOLERANCE_PERCENT: f64 = 3.0;
const WARM_REQUESTS: u32 = 300;
const FIRST_HOSTS: u8 = 10;
const BODIES: u32 = 3;
const BODY_BYTES: usize = 1_000_000;
const MANY_ROUTES: usize = 10_000;

pub(crate) const USAGE: &str = "\
cargo xtask bench guard [--update] [--runs N] [--profile DIR]

  --update       measure and rewrite xtask/bench/guard-baseline.json (commit it)
  --runs N       run the script N times and fail unless every run agrees within the tolerance
                 (checks that the count is deterministic; default 1)
  --profile DIR  no comparison: a symbolised build (cargo --profile profiling) under callgrind,
                 DIR/<kind>.callgrind.out kept, the hottest functions of each kind printed";

const VALGRIND: Tool = Tool {
    name: "valgrind",
    version_args: &["--version"],
    install: "apt-get install valgrind",
};

/// A kind of work in the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    Idle,
    WarmH1,
    WarmH2,
    FirstContact,
    #[serde(rename = "body-1mb")]
    Body1mb,
    #[serde(rename = "idle-10k-routes")]
    Idle10kRoutes,
    #[serde(rename = "warm-h1-10k-routes")]
    WarmH1Routes10k,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Idle,
        Kind::WarmH1,
        Kind::WarmH2,
        Kind::FirstContact,
        Kind::Body1mb,
        Kind::Idle10kRoutes,
        Kind::WarmH1Routes10k,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Idle => "idle",
            Kind::WarmH1 => "warm-h1",
            Kind::WarmH2 => "warm-h2",
            Kind::FirstContact => "first-contact",
            Kind::Body1mb => "body-1mb",
            Kind::Idle10kRoutes => "idle-10k-routes",
            Kind::WarmH1Routes10k => "warm-h1-10k-routes",
        }
    }

    /// The run whose count is subtracted from this one's (`None`: the whole count).
    fn base(self) -> Option<Kind> {
        match self {
            Kind::Idle => None,
            Kind::WarmH1Routes10k => Some(Kind::Idle10kRoutes),
            _ => Some(Kind::Idle),
        }
    }

    /// Routes for hosts nobody asks for, besides the script's own.
    fn filler_routes(self) -> usize {
        match self {
            Kind::Idle10kRoutes | Kind::WarmH1Routes10k => MANY_ROUTES,
            _ => 0,
        }
    }

    /// What one unit of this kind is, and how many the script does.
    fn units(self) -> (&'static str, u32) {
        match self {
            Kind::Idle => ("start and stop", 1),
            Kind::Idle10kRoutes => ("10 000 routes loaded", 1),
            Kind::WarmH1 | Kind::WarmH2 | Kind::WarmH1Routes10k => ("request", WARM_REQUESTS),
            Kind::FirstContact => ("new host", u32::from(FIRST_HOSTS)),
            Kind::Body1mb => ("1 MB body", 2 * BODIES),
        }
    }
}

/// One kind's count: for `idle` the whole run, for the others the run minus its base run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Count {
    pub(crate) kind: Kind,
    pub(crate) instructions: u64,
}

/// The committed baseline and how it was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    pub(crate) measured: String,
    pub(crate) cpu: String,
    pub(crate) valgrind: String,
    pub(crate) rustc: String,
    /// Which build was counted.
    pub(crate) binary: String,
    /// How long one run of the script took, in seconds (the build not included).
    pub(crate) seconds: f64,
    /// With `--runs N` (N ≥ 2): the largest difference between runs of any kind, in percent.
    #[serde(default)]
    pub(crate) runs: u32,
    #[serde(default)]
    pub(crate) spread_percent: Option<f64>,
    pub(crate) counts: Vec<Count>,
}

impl Baseline {
    pub(crate) fn read(path: &Path) -> Result<Option<Baseline>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a guard baseline; rewrite it with `cargo xtask bench guard --update`", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn count(&self, kind: Kind) -> Option<u64> {
        self.counts
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.instructions)
    }
}

pub(crate) fn baseline_path() -> PathBuf {
    util::workspace_root().join("xtask/bench/guard-baseline.json")
}

#[derive(Debug, Default)]
struct Options {
    update: bool,
    runs: u32,
    profile: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        runs: 1,
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--update" => o.update = true,
            "--runs" => {
                o.runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=10).contains(n))
                    .context("--runs takes a count from 1 to 10")?;
            }
            "--profile" => {
                o.profile = Some(PathBuf::from(
                    it.next().context("--profile needs a directory")?,
                ));
            }
            other => bail!("unknown argument `{other}`; see `cargo xtask bench --help`"),
        }
    }
    if o.update && o.profile.is_some() {
        bail!("--profile counts a symbolised build, not the shipped one: it cannot --update");
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    util::require("bench guard", &[VALGRIND])?;
    let started = Instant::now();
    let (binary, what) = match &o.profile {
        Some(_) => (
            build_profiling()?,
            "cargo --profile profiling (symbols kept)".to_owned(),
        ),
        None => (
            crate::images::build_static("egress", "bottle-egress")?,
            "the egress image's static release build (+crt-static)".to_owned(),
        ),
    };
    let built = started.elapsed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut runs = Vec::new();
    let mut seconds = 0.0;
    for run in 1..=o.runs {
        eprintln!("guard: run {run} of {}", o.runs);
        let t = Instant::now();
        let counts = runtime.block_on(async {
            tokio::select! {
                r = script(&binary, o.profile.as_deref()) => r,
                s = util::interrupted() => bail!("{s}: stopped the egress and the origin"),
            }
        })?;
        seconds = t.elapsed().as_secs_f64();
        eprintln!("guard: run {run} took {seconds:.1} s");
        runs.push(counts);
    }
    println!(
        "guard: built in {:.1} s; one run of the script {seconds:.1} s",
        built.as_secs_f64()
    );
    if let Some(dir) = &o.profile {
        return annotate(dir);
    }
    let counts = runs.last().expect("at least one run").clone();
    let spread_percent = (runs.len() > 1).then(|| max_spread(&runs));
    if runs.len() > 1 {
        println!("{}", spread_table(&runs));
        if spread_percent.is_some_and(|s| s > TOLERANCE_PERCENT) {
            bail!("the count is not deterministic: runs differ by more than {TOLERANCE_PERCENT}%");
        }
    }
    let now = Baseline {
        measured: util::utc_now(),
        cpu: util::Machine::describe(&[]).cpu,
        valgrind: VALGRIND.version().unwrap_or_default(),
        rustc: util::first_line("rustc", &["--version"]).unwrap_or_default(),
        binary: what,
        seconds: (seconds * 10.0).round() / 10.0,
        runs: o.runs,
        spread_percent: spread_percent.map(|s| (s * 1000.0).round() / 1000.0),
        counts,
    };
    if o.update {
        let path = baseline_path();
        util::write_file(&path, &format!("{}\n", serde_json::to_string_pretty(&now)?))?;
        println!("{}", comparison(None, &now).0);
        println!("wrote {} (commit it)", path.display());
        return Ok(());
    }
    let baseline = Baseline::read(&baseline_path())?.with_context(|| {
        format!(
            "no baseline at {}; record one with `cargo xtask bench guard --update`",
            baseline_path().display()
        )
    })?;
    let (table, pass) = comparison(Some(&baseline), &now);
    println!("{table}");
    if !pass {
        bail!(
            "instruction counts moved by more than {TOLERANCE_PERCENT}% from the baseline{}. \
             If the change is intended (or the toolchain changed), record a new baseline with \
             `cargo xtask bench guard --update` and commit it; to see where, use `--profile DIR`",
            what_differs(&baseline, &now)
        );
    }
    Ok(())
}

/// The toolchain facts of `now` that differ from the baseline's, as a clause.
fn what_differs(baseline: &Baseline, now: &Baseline) -> String {
    let mut differ = Vec::new();
    for (what, a, b) in [
        ("rustc", &baseline.rustc, &now.rustc),
        ("valgrind", &baseline.valgrind, &now.valgrind),
        ("CPU", &baseline.cpu, &now.cpu),
        ("build", &baseline.binary, &now.binary),
    ] {
        if a != b {
            differ.push(format!("{what} is `{b}`, the baseline's `{a}`"));
        }
    }
    if differ.is_empty() {
        String::new()
    } else {
        format!(" (note: {})", differ.join("; "))
    }
}

/// The counts against the baseline (or alone), and whether every kind is within tolerance.
fn comparison(baseline: Option<&Baseline>, now: &Baseline) -> (String, bool) {
    use std::fmt::Write as _;
    let mut s = String::from(
        "| kind | instructions | per unit | baseline | change | result |\n|---|---:|---:|---:|---:|---|\n",
    );
    let mut pass = true;
    for c in &now.counts {
        let (unit, n) = c.kind.units();
        let per = c.instructions / u64::from(n.max(1));
        let (base, change, result) = match baseline.and_then(|b| b.count(c.kind)) {
            Some(base) => {
                let change = (c.instructions as f64 - base as f64) / base.max(1) as f64 * 100.0;
                let ok = change.abs() <= TOLERANCE_PERCENT;
                pass &= ok;
                (
                    base.to_string(),
                    format!("{change:+.2}%"),
                    if ok { "PASS" } else { "**FAIL**" },
                )
            }
            None if baseline.is_some() => {
                pass = false;
                (
                    "—".to_owned(),
                    "—".to_owned(),
                    "**FAIL**: not in the baseline",
                )
            }
            None => ("—".to_owned(), "—".to_owned(), "recorded"),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {per} per {unit} | {base} | {change} | {result} |",
            c.kind.name(),
            c.instructions
        );
    }
    (s, pass)
}

/// One kind's counts over several runs.
fn counts_of(runs: &[Vec<Count>], kind: Kind) -> Vec<u64> {
    runs.iter()
        .filter_map(|r| r.iter().find(|c| c.kind == kind).map(|c| c.instructions))
        .collect()
}

/// The difference between the largest and the smallest count, in percent of the smallest.
fn spread(counts: &[u64]) -> f64 {
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    (max - min) as f64 / min.max(1) as f64 * 100.0
}

/// The largest spread of any kind.
fn max_spread(runs: &[Vec<Count>]) -> f64 {
    Kind::ALL
        .iter()
        .map(|&k| spread(&counts_of(runs, k)))
        .fold(0.0, f64::max)
}

/// Each kind's counts over several runs and their spread.
fn spread_table(runs: &[Vec<Count>]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("| kind | counts | spread | |\n|---|---|---:|---|\n");
    for kind in Kind::ALL {
        let counts = counts_of(runs, kind);
        let spread = spread(&counts);
        let _ = writeln!(
            s,
            "| {} | {} | {spread:.3}% | {} |",
            kind.name(),
            counts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if spread <= TOLERANCE_PERCENT {
                "stable"
            } else {
                "**unstable**"
            }
        );
    }
    s
}

/// `cargo build --profile profiling`: the release settings with line tables, not stripped.
/// Defined here with `--config`, so the workspace's manifest carries no profile for it.
fn build_profiling() -> Result<PathBuf> {
    eprintln!("guard: building bottle-egress with --profile profiling (symbols kept)");
    let status = util::cargo()
        .args(["build", "--quiet", "--locked", "--bin", "bottle-egress"])
        .args(["--config", "profile.profiling.inherits=\"release\""])
        .args(["--config", "profile.profiling.strip=\"none\""])
        .args(["--config", "profile.profiling.debug=\"line-tables-only\""])
        .args(["--profile", "profiling"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building bottle-egress with --profile profiling failed");
    }
    Ok(util::target_dir()?.join("profiling").join("bottle-egress"))
}

/// Prints the hottest functions of each kind's callgrind file.
fn annotate(dir: &Path) -> Result<()> {
    for kind in Kind::ALL {
        let file = dir.join(format!("{}.callgrind.out", kind.name()));
        let out = std::process::Command::new("callgrind_annotate")
            .arg(&file)
            .output()
            .context("running callgrind_annotate (it comes with valgrind)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        println!("== {} ({})", kind.name(), file.display());
        for line in text
            .lines()
            .skip_while(|l| !l.contains("file:function"))
            .take(17)
        {
            println!("{line}");
        }
    }
    Ok(())
}

/// One run of the whole script: every kind, each in its own counted egress.
async fn script(binary: &Path, profile: Option<&Path>) -> Result<Vec<Count>> {
    let work = tempfile::Builder::new().prefix("bench-guard-").tempdir()?;
    let dir = work.path();
    let out_dir = profile.unwrap_or(dir);
    std::fs::create_dir_all(out_dir)?;
    let hosts: Vec<IpAddr> = (0..FIRST_HOSTS)
        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k)))
        .collect();
    let origin_ca = origin::TestCa::generate()?;
    let origin_ca_pem = dir.join("origin-ca.pem");
    origin_ca.write_pem(&origin_ca_pem)?;
    let origin = origin::Origin::start(&origin_ca, &hosts, true).await?;
    let ca_dir = dir.join("egress-ca");
    proxies::mint_egress_ca(binary, &ca_dir)?;
    let tls_h1 = client::tls_config(&ca_dir.join("ca.crt"), false)?;
    let tls_h2 = client::tls_config(&ca_dir.join("ca.crt"), true)?;
    let mut totals = Vec::new();
    for kind in Kind::ALL {
        let port = util::free_port()?;
        let config = dir.join(format!("{}.yaml", kind.name()));
        let rule = proxies::Rule {
            extra: &hosts,
            port: origin.port,
            filler: kind.filler_routes(),
            // The baseline's instruction counts are of the proxy without DLP.
            dlp: false,
        };
        // Every request names 127.0.0.1 or a 127.0.0.k: no resolver runs in the counted process.
        let yaml = rule
            .egress_yaml(port, &ca_dir, &origin_ca_pem)
            .replace("\"localhost\"", "\"127.0.0.1\"");
        std::fs::write(&config, yaml)?;
        let out = out_dir.join(format!("{}.callgrind.out", kind.name()));
        let mut egress = counted_egress(binary, &config, &out, dir, port).await?;
        let via = client::Via {
            name: "bottle-egress under callgrind",
            proxy: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            ca: ca_dir.join("ca.crt"),
        };
        let t = Instant::now();
        let done = work_of(kind, &via, &tls_h1, &tls_h2, origin.port, &hosts).await;
        if let Err(e) = done {
            let alive = egress.check_alive().err().map(|e| format!("; {e:#}"));
            return Err(e.context(format!(
                "the guard's {} script failed{}; bottle-egress's last output:\n{}",
                kind.name(),
                alive.unwrap_or_default(),
                egress.last_words()
            )));
        }
        let status = egress.stop("-TERM", Duration::from_secs(60))?;
        if !status.success() {
            bail!(
                "bottle-egress under callgrind exited with {status} after the {} script",
                kind.name()
            );
        }
        let total = callgrind_total(
            &std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?,
        )
        .with_context(|| format!("no summary line in {}", out.display()))?;
        eprintln!(
            "guard: {} {} instructions ({:.1} s)",
            kind.name(),
            total,
            t.elapsed().as_secs_f64()
        );
        totals.push((kind, total));
    }
    drop(origin);
    Ok(above_idle(&totals))
}

/// Each kind's total minus its base run's; `idle` keeps its own total.
fn above_idle(totals: &[(Kind, u64)]) -> Vec<Count> {
    let total = |kind: Kind| {
        totals
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    };
    totals
        .iter()
        .map(|&(kind, n)| Count {
            kind,
            instructions: kind.base().map_or(n, |base| n.saturating_sub(total(base))),
        })
        .collect()
}

/// bottle-egress under callgrind, once it listens.
async fn counted_egress(
    binary: &Path,
    config: &Path,
    out: &Path,
    work: &Path,
    port: u16,
) -> Result<Proc> {
    let mut cmd = std::process::Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .args(["run", "--threads", "1", "--config"])
        .arg(config)
        .env("BOTTLE_EGRESS_LOG", "warn");
    let mut proc = Proc::spawn(
        "bottle-egress under callgrind",
        cmd,
        work.join("callgrind.stderr"),
    )?;
    // A connection that only probes the port costs the egress an accept; every kind pays it.
    proc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    Ok(proc)
}

/// The `summary:` (or `totals:`) line of a callgrind output file: the instructions executed.
fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
}

/// The client's side of one kind of the script.
async fn work_of(
    kind: Kind,
    via: &client::Via,
    tls_h1: &Arc<rustls::ClientConfig>,
    tls_h2: &Arc<rustls::ClientConfig>,
    port: u16,
    hosts: &[IpAddr],
) -> Result<()> {
    let warm_host = "127.0.0.1";
    match kind {
        Kind::Idle | Kind::Idle10kRoutes => Ok(()),
        Kind::WarmH1 | Kind::WarmH1Routes10k => {
            let mut sender = h1(via, tls_h1, warm_host, port).await?;
            for _ in 0..WARM_REQUESTS {
                get(&mut sender, warm_host, port, "/").await?;
            }
            Ok(())
        }
        Kind::WarmH2 => {
            let stream = client::connect(via, tls_h2, warm_host, port).await?;
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await?;
            let conn = tokio::spawn(conn);
            for _ in 0..WARM_REQUESTS {
                let req = http::Request::builder()
                    .uri(format!("https://{warm_host}:{port}/"))
                    .body(Empty::<Bytes>::new())?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                ensure_ok(resp.status())?;
                resp.into_body().collect().await?;
            }
            drop(sender);
            let _ = conn.await;
            Ok(())
        }
        Kind::FirstContact => {
            for host in hosts {
                let host = host.to_string();
                let mut sender = h1(via, tls_h1, &host, port).await?;
                get(&mut sender, &host, port, "/").await?;
            }
            Ok(())
        }
        Kind::Body1mb => {
            let mut sender = h1(via, tls_h1, warm_host, port).await?;
            for _ in 0..BODIES {
                let body = get(
                    &mut sender,
                    warm_host,
                    port,
                    &format!("/bytes/{BODY_BYTES}"),
                )
                .await?;
                if body.len() != BODY_BYTES {
                    bail!("a 1 MB download brought {} bytes", body.len());
                }
            }
            let upload = Bytes::from(vec![b'u'; BODY_BYTES]);
            for _ in 0..BODIES {
                let req = http::Request::builder()
                    .method(http::Method::POST)
                    .uri("/upload")
                    .header(http::header::HOST, format!("{warm_host}:{port}"))
                    .body(Full::new(upload.clone()))?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                ensure_ok(resp.status())?;
                let echoed = resp.into_body().collect().await?.to_bytes();
                if echoed.as_ref() != format!("{BODY_BYTES}\n").as_bytes() {
                    bail!("the origin counted {echoed:?} of a 1 MB upload");
                }
            }
            Ok(())
        }
    }
}

type H1Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A tunnel to `host` and an HTTP/1.1 connection in it; the connection task ends with the
/// sender.
async fn h1(
    via: &client::Via,
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<H1Sender> {
    let stream = client::connect(via, tls, host, port).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// `GET path` on an HTTP/1.1 connection; the body.
async fn get(sender: &mut H1Sender, host: &str, port: u16, path: &str) -> Result<Bytes> {
    let req = http::Request::builder()
        .uri(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(Full::default())?;
    // A keep-alive connection takes the next request only once it has finished the last.
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    ensure_ok(resp.status())?;
    Ok(resp.into_body().collect().await?.to_bytes())
}

fn ensure_ok(status: http::StatusCode) -> Result<()> {
    if status != http::StatusCode::OK {
        bail!("bottle-egress under callgrind answered {status}");
    }
    Ok(())
}

/// The guard's section of `docs/performance.md`, from the committed baseline.
pub(crate) fn markdown(baseline: Option<&Baseline>) -> String {
    let mut s = format!(
        "## The regression guard\n\n\
         `cargo xtask bench guard` runs bottle-egress under `valgrind --tool=callgrind`, which\n\
         counts the instructions it executes, while the harness sends it a fixed script: {WARM_REQUESTS}\n\
         warm requests on one HTTP/1.1 connection, {WARM_REQUESTS} on one HTTP/2 connection, {FIRST_HOSTS}\n\
         first contacts, {BODIES} downloads and {BODIES} uploads of 1 MB, and the warm HTTP/1.1 requests\n\
         again with {MANY_ROUTES} more routes in the table. Each kind runs in its own egress; a run\n\
         that only starts and stops (`idle`, or `idle-10k-routes` with the large table) is\n\
         subtracted from the others. A flat route lookup keeps `warm-h1-10k-routes` per request\n\
         where `warm-h1` is. The\n\
         counts are compared with `xtask/bench/guard-baseline.json`: a kind more than\n\
         ±{TOLERANCE_PERCENT}% away fails. Load on the machine cannot move an instruction count; a new\n\
         rustc, new dependency versions, another valgrind or CPU family can, and the guard names\n\
         which of those differ from the baseline's.\n\n\
         - `cargo xtask bench guard` compares; `--update` records a new baseline (commit it with\n\
         \x20 the change that moved it, saying why); `--runs 2` checks that the count repeats;\n\
         \x20 `--profile DIR` shows where the instructions go.\n\
         - It counts the egress image's own binary (the static release build), in one thread,\n\
         \x20 with IP-literal hosts (no resolver) and requests one after another; the client, the\n\
         \x20 origin and every timer are in the harness, which is not counted.\n\n"
    );
    match baseline {
        Some(b) => {
            s.push_str(&format!(
                "`cargo xtask ci` runs the guard after the images wherever valgrind is installed\n\
                 (`.ci/run` installs it). The baseline was measured {} on {} with {} and {},\n\
                 counting {}; one run of the script took {:.1} s (the build aside){}:\n\n",
                b.measured,
                b.cpu,
                b.rustc,
                b.valgrind,
                b.binary,
                b.seconds,
                match b.spread_percent {
                    Some(spread) => format!(", and {} runs agreed within {spread:.2}%", b.runs),
                    None => String::new(),
                }
            ));
            s.push_str("| kind | instructions | per unit |\n|---|---:|---:|\n");
            for c in &b.counts {
                let (unit, n) = c.kind.units();
                s.push_str(&format!(
                    "| {} | {} | {} per {unit} |\n",
                    c.kind.name(),
                    c.instructions,
                    c.instructions / u64::from(n.max(1))
                ));
            }
        }
        None => s.push_str("_No baseline recorded yet: `cargo xtask bench guard --update`._\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(counts: &[(Kind, u64)]) -> Baseline {
        Baseline {
            measured: "2026-01-01 00:00 UTC".to_owned(),
            cpu: "test CPU".to_owned(),
            valgrind: "valgrind-3.19.0".to_owned(),
            rustc: "rustc 1.95.0".to_owned(),
            binary: "static".to_owned(),
            seconds: 42.0,
            runs: 1,
            spread_percent: None,
            counts: counts
                .iter()
                .map(|&(kind, instructions)| Count { kind, instructions })
                .collect(),
        }
    }

    #[test]
    fn the_idle_run_is_subtracted_from_every_other_kind() {
        let counts = above_idle(&[
            (Kind::Idle, 1000),
            (Kind::WarmH1, 1600),
            (Kind::Body1mb, 900),
        ]);
        let got: Vec<u64> = counts.iter().map(|c| c.instructions).collect();
        assert_eq!(got, [1000, 600, 0]);
    }

    #[test]
    fn a_count_beyond_the_tolerance_fails_either_way() {
        let base = baseline(&[(Kind::Idle, 1_000_000), (Kind::WarmH1, 3_000_000)]);
        let within = baseline(&[(Kind::Idle, 1_029_000), (Kind::WarmH1, 2_950_000)]);
        assert!(comparison(Some(&base), &within).1);
        let slower = baseline(&[(Kind::Idle, 1_000_000), (Kind::WarmH1, 3_100_000)]);
        let (table, pass) = comparison(Some(&base), &slower);
        assert!(!pass);
        assert!(
            table.contains(
                "| warm-h1 | 3100000 | 10333 per request | 3000000 | +3.33% | **FAIL** |"
            ),
            "{table}"
        );
        let faster = baseline(&[(Kind::Idle, 900_000), (Kind::WarmH1, 3_000_000)]);
        assert!(!comparison(Some(&base), &faster).1);
        let new_kind = baseline(&[(Kind::Idle, 1_000_000), (Kind::WarmH2, 1)]);
        assert!(!comparison(Some(&base), &new_kind).1);
    }

    #[test]
    fn a_toolchain_change_is_named() {
        let base = baseline(&[]);
        let mut now = baseline(&[]);
        assert_eq!(what_differs(&base, &now), "");
        now.rustc = "rustc 1.96.0".to_owned();
        assert_eq!(
            what_differs(&base, &now),
            " (note: rustc is `rustc 1.96.0`, the baseline's `rustc 1.95.0`)"
        );
    }

    #[test]
    fn callgrind_totals_are_read_from_the_summary() {
        let out = "# callgrind format\nversion: 1\nevents: Ir\nfl=(1)\n0 5\nsummary: 123456789\ntotals: 123456789\n";
        assert_eq!(callgrind_total(out), Some(123_456_789));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }

    #[test]
    fn unstable_runs_are_flagged() {
        let run = |n: u64| {
            vec![Count {
                kind: Kind::WarmH1,
                instructions: n,
            }]
        };
        assert!(!spread_table(&[run(1000), run(1010)]).contains("**unstable**"));
        assert!(spread_table(&[run(1000), run(1100)]).contains("**unstable**"));
        assert!((max_spread(&[run(1000), run(1010)]) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn options_are_checked() {
        let args = |a: &[&str]| a.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert!(parse(&args(&["--update"])).unwrap().update);
        assert_eq!(parse(&args(&["--runs", "2"])).unwrap().runs, 2);
        assert!(parse(&args(&["--runs", "0"])).is_err());
        assert!(parse(&args(&["--update", "--profile", "/tmp/p"])).is_err());
    }
}
