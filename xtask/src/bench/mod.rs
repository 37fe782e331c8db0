// Owned by the benchmark work; the egress engineer does not edit this file.
//! `cargo xtask bench egress`: bottle-egress against a direct connection and against
//! mitmdump, side by side in one run, on loopback, with the same origin and the same clients;
//! and, for scale, two reference relays that do less than any intercepting proxy can
//! (`relay.rs`).
//!
//! What it measures and the targets it judges are in `docs/performance.md`, which it writes.
//! It needs `oha` (`cargo install oha --locked`), `mitmdump` (`pip install mitmproxy`) and
//! `curl`, and says so when one is missing.
//!
//! The measuring side (the origin and our own TLS client) runs in this process, so a debug
//! `cargo xtask` first builds itself and bottle-egress in release mode and runs that build;
//! otherwise the origin, not the proxy, would set the pace. Every process the bench starts is
//! held by a guard that kills it on every exit path, Ctrl-C and SIGTERM included.

mod client;
mod origin;
mod proxies;
mod relay;
mod report;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::future::try_join_all;

use client::{LoadSpec, Via};
use report::{FirstContact, Memory, NEW_CONN, PATHS, Results, WARM_C1, WARM_C32};

const USAGE: &str = "usage: cargo xtask bench egress [--seconds N] [--rounds N] [--hosts N] [--tunnels N] [--out FILE]";
const DOWNLOAD_BYTES: u64 = 50_000_000;
/// Tunnels are opened this many at a time.
const TUNNEL_BATCH: usize = 50;

#[derive(Debug, Clone)]
struct Options {
    /// Duration of each oha run.
    seconds: u64,
    /// Rounds of each load scenario, the paths interleaved; the median round is reported.
    rounds: u32,
    /// Never-seen hosts per path for the first-contact figure.
    hosts: u8,
    /// Idle tunnels held open for the memory figure.
    tunnels: usize,
    /// The origin offers only HTTP/1.1 (by default it offers h2 too, as real APIs do): shows
    /// what HTTP/2 upstream costs or saves.
    origin_h1: bool,
    out: PathBuf,
    /// Set by the debug xtask when it hands over to its release build.
    egress_bin: Option<PathBuf>,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some((what, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match what.as_str() {
        "egress" => egress(rest),
        // The reference hop `bench egress` starts as a child process.
        "relay" => relay::run(rest),
        other => bail!("unknown benchmark `{other}`; {USAGE}"),
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        seconds: 5,
        rounds: 3,
        hosts: 20,
        tunnels: 1000,
        origin_h1: false,
        out: workspace_root().join("docs/performance.md"),
        egress_bin: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("`{a}` needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = value()?.parse().context("--seconds takes whole seconds")?,
            "--rounds" => o.rounds = value()?.parse().context("--rounds takes a count")?,
            "--hosts" => o.hosts = value()?.parse().context("--hosts takes 1 to 80")?,
            "--tunnels" => o.tunnels = value()?.parse().context("--tunnels takes a count")?,
            "--out" => o.out = PathBuf::from(value()?),
            "--origin-h1" => o.origin_h1 = true,
            "--egress-bin" => o.egress_bin = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument `{other}`; {USAGE}"),
        }
    }
    if o.seconds == 0 || o.seconds > 600 {
        bail!("--seconds must be between 1 and 600");
    }
    if o.rounds == 0 || o.rounds > 15 {
        bail!("--rounds must be between 1 and 15");
    }
    // Three disjoint sets of 127.0.0.k, k from 2, must stay within 127.0.0.254.
    if o.hosts == 0 || o.hosts > 80 {
        bail!("--hosts must be between 1 and 80");
    }
    if o.tunnels == 0 || o.tunnels > 20_000 {
        bail!("--tunnels must be between 1 and 20000");
    }
    Ok(o)
}

fn egress(args: &[String]) -> Result<()> {
    let mut options = parse(args)?;
    check_tools()?;
    check_fd_limit(options.tunnels)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if cfg!(debug_assertions) {
        // Hand over to an optimised build of ourselves (see the module docs).
        // `--bin` applies to every `-p`, so both binaries are named.
        let release = build_release(&[
            "-p",
            "bottle-egress",
            "-p",
            "xtask",
            "--bin",
            "bottle-egress",
            "--bin",
            "xtask",
        ])?;
        let mut cmd = tokio::process::Command::new(release.join("xtask"));
        cmd.args(["bench", "egress"])
            .args(args)
            .arg("--egress-bin")
            .arg(release.join("bottle-egress"));
        return runtime.block_on(run_forwarding_signals(cmd));
    }
    let egress_bin = match options.egress_bin.take() {
        Some(bin) => bin,
        None => {
            build_release(&["-p", "bottle-egress", "--bin", "bottle-egress"])?.join("bottle-egress")
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        tokio::select! {
            r = bench(&options, &egress_bin) => r,
            s = interrupted() => bail!("{s}: stopped the proxies and the origin, wrote nothing"),
        }
    })
}

/// Waits for SIGINT or SIGTERM and names it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

/// Runs the release build; a signal to us is passed on as SIGTERM, and we wait for it to
/// stop its own children before returning.
async fn run_forwarding_signals(mut cmd: tokio::process::Command) -> Result<()> {
    let mut child = cmd
        .kill_on_drop(true)
        .spawn()
        .context("starting the release build of xtask")?;
    let status = tokio::select! {
        s = child.wait() => s?,
        s = interrupted() => {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            child.wait().await?;
            bail!("{s}");
        }
    };
    if !status.success() {
        bail!("the egress benchmark failed ({status})");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A nested `cargo` command, without the variables `cargo run` set for us: build scripts such
/// as ring's rerun when `CARGO_MANIFEST_DIR` changes, so passing it on would rebuild half the
/// graph on every bench (and again on the next plain build).
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// `cargo build --release <packages>`; returns the release directory.
fn build_release(packages: &[&str]) -> Result<PathBuf> {
    let root = workspace_root();
    eprintln!("bench: building {} in release mode", packages.join(" "));
    let status = cargo()
        .args(["build", "--release", "--quiet"])
        .args(packages)
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release {}` failed", packages.join(" "));
    }
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let target = meta["target_directory"]
        .as_str()
        .context("no target_directory in cargo metadata")?;
    Ok(Path::new(target).join("release"))
}

const TOOLS: [(&str, &str); 3] = [
    ("oha", "cargo install oha --locked"),
    ("mitmdump", "pip install mitmproxy"),
    ("curl", "apt-get install curl"),
];

fn check_tools() -> Result<()> {
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| first_line(tool, &["--version"]).is_none())
        .map(|(tool, how)| format!("`{tool}` (install it with `{how}`)"))
        .collect();
    if !missing.is_empty() {
        bail!("`bench egress` needs {}", missing.join(" and "));
    }
    Ok(())
}

/// Each tunnel costs a descriptor in the bench, in the proxy and (mitmdump connects upstream
/// at once) one more in the origin, which lives in the bench process.
fn check_fd_limit(tunnels: usize) -> Result<()> {
    let need = 2 * tunnels + 256;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < need
    {
        bail!(
            "{tunnels} idle tunnels need about {need} open files, the limit is {soft}; raise it with `ulimit -n {need}` and run again"
        );
    }
    Ok(())
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

/// The machine and tool versions, as markdown list items.
fn machine(egress_bin: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_owned();
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let kernel = first_line("uname", &["-sr"]).unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let version =
        |cmd: &str| first_line(cmd, &["--version"]).unwrap_or_else(|| "unknown".to_owned());
    let egress = first_line(&egress_bin.to_string_lossy(), &["--version"]).unwrap_or_default();
    format!(
        "- CPU: {model}; nproc {nproc}\n\
         - Memory: {mem_gib:.1} GiB\n\
         - Kernel: {kernel}\n\
         - Load average when the run started: {} (the machine is shared)\n\
         - {} (bench and {egress}, release builds, rustls with ring)\n\
         - oha: {}\n\
         - mitmproxy: {}\n\
         - curl: {}\n",
        load.join(" "),
        version("rustc"),
        version("oha"),
        version("mitmdump"),
        version("curl"),
    )
}

async fn bench(o: &Options, egress_bin: &Path) -> Result<()> {
    let started = utc_now();
    let machine = machine(egress_bin);
    let work = tempfile::Builder::new().prefix("bench-egress-").tempdir()?;
    let dir = work.path();

    // Never-seen hosts: three disjoint sets of loopback addresses, one per path.
    let hosts: Vec<IpAddr> = (0..3 * u16::from(o.hosts))
        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(k + 2).unwrap_or(254))))
        .collect();

    let origin_ca = origin::TestCa::generate()?;
    let origin_ca_pem = dir.join("origin-ca.pem");
    origin_ca.write_pem(&origin_ca_pem)?;
    let origin = origin::Origin::start(&origin_ca, &hosts, !o.origin_h1).await?;
    let port = origin.port;
    eprintln!("bench: origin on https://localhost:{port}");

    let rule = proxies::Rule {
        extra: &hosts,
        port,
    };
    let ca_dir = dir.join("egress-ca");
    proxies::mint_egress_ca(egress_bin, &ca_dir)?;
    let egress_port = proxies::free_port()?;
    let config = dir.join("egress.yaml");
    std::fs::write(
        &config,
        rule.egress_yaml(egress_port, &ca_dir, &origin_ca_pem),
    )?;
    let mut egress = proxies::start_egress(egress_bin, &config, dir, egress_port).await?;
    eprintln!("bench: bottle-egress on 127.0.0.1:{egress_port}");

    let addon = dir.join("rule.py");
    std::fs::write(&addon, rule.mitm_addon())?;
    let mitm_port = proxies::free_port()?;
    let (mut mitm, mitm_ca) = proxies::start_mitmdump(
        &addon,
        &dir.join("mitmproxy"),
        &origin_ca_pem,
        dir,
        mitm_port,
    )
    .await?;
    eprintln!("bench: mitmdump on 127.0.0.1:{mitm_port}");
    // The reference hops (relay.rs): the origin CA signs the TLS relay's leaf, so clients
    // reach both relays with the same trust as the direct path.
    let relay_cert = dir.join("relay-cert.pem");
    let relay_key = dir.join("relay-key.pem");
    origin_ca.write_leaf(vec![relay::TLS_NAME.to_owned()], &relay_cert, &relay_key)?;
    let mut relays = Vec::new();
    for (name, tls) in [
        (report::RELAYS[0], None),
        (
            report::RELAYS[1],
            Some(proxies::RelayTls {
                cert: &relay_cert,
                key: &relay_key,
                ca: &origin_ca_pem,
            }),
        ),
    ] {
        let relay_port = proxies::free_port()?;
        let proc = proxies::start_relay(name, dir, relay_port, port, tls).await?;
        eprintln!("bench: {name} on 127.0.0.1:{relay_port}");
        let via = Via {
            name,
            proxy: None,
            ca: origin_ca_pem.clone(),
        };
        relays.push((proc, via, format!("https://localhost:{relay_port}/")));
    }

    let vias = [
        Via {
            name: PATHS[0],
            proxy: None,
            ca: origin_ca_pem.clone(),
        },
        Via {
            name: PATHS[1],
            proxy: Some(SocketAddr::from(([127, 0, 0, 1], egress_port))),
            ca: ca_dir.join("ca.crt"),
        },
        Via {
            name: PATHS[2],
            proxy: Some(SocketAddr::from(([127, 0, 0, 1], mitm_port))),
            ca: mitm_ca,
        },
    ];
    let tls: Vec<_> = vias
        .iter()
        .map(|v| client::tls_config(&v.ca))
        .collect::<Result<_>>()?;

    // One request per path first: the leaf for localhost is minted, pools are warm.
    for (via, tls) in vias.iter().zip(&tls) {
        client::one_request(via, tls, "localhost", port).await?;
    }

    // Memory first, while the proxies' allocators hold nothing left over from load.
    let mut memory = Vec::new();
    for (i, proc) in [(1, &mut egress), (2, &mut mitm)] {
        eprintln!("bench: {} idle tunnels via {}", o.tunnels, vias[i].name);
        memory.push(idle_tunnels(proc, &vias[i], &tls[i], port, o.tunnels).await?);
    }

    let url = format!("https://localhost:{port}/");
    let mut load = Vec::new();
    let mut reference = Vec::new();
    for (label, concurrency, keepalive) in [
        (WARM_C1, 1, true),
        (WARM_C32, 32, true),
        (NEW_CONN, 1, false),
    ] {
        let spec = LoadSpec {
            concurrency,
            keepalive,
            seconds: o.seconds,
        };
        // Rounds interleave the paths, so a burst of load from elsewhere on the machine hits
        // every path alike; each path's median round (by req/s) is reported.
        let mut runs: Vec<Vec<client::Load>> = vec![Vec::new(); vias.len() + relays.len()];
        for round in 1..=o.rounds {
            for (i, via) in vias.iter().enumerate() {
                eprintln!(
                    "bench: {label} via {} (round {round}/{})",
                    via.name, o.rounds
                );
                runs[i].push(client::oha(via, &url, spec).await?);
                egress.check_alive()?;
                mitm.check_alive()?;
            }
            if keepalive {
                for (i, (proc, via, url)) in relays.iter_mut().enumerate() {
                    eprintln!(
                        "bench: {label} via {} (round {round}/{})",
                        via.name, o.rounds
                    );
                    runs[vias.len() + i].push(client::oha(via, url, spec).await?);
                    proc.check_alive()?;
                }
            }
        }
        let mut medians = runs.into_iter().map(report::median_run);
        let row: Vec<client::Load> = medians.by_ref().take(vias.len()).flatten().collect();
        for (name, relay) in report::RELAYS.iter().zip(medians) {
            if let Some(relay) = relay {
                reference.push((label, *name, relay));
            }
        }
        load.push((
            label,
            row.try_into().map_err(|_| anyhow::anyhow!("three paths"))?,
        ));
    }

    let big = format!("https://localhost:{port}/bytes/{DOWNLOAD_BYTES}");
    let mut download = Vec::new();
    for via in &vias {
        eprintln!(
            "bench: {} MB download via {}",
            DOWNLOAD_BYTES / 1_000_000,
            via.name
        );
        download.push(client::download(via, &big, DOWNLOAD_BYTES, 3).await?);
    }

    // Interleaved, so a burst of load from elsewhere on the machine hits every path alike.
    eprintln!(
        "bench: first requests to {} never-seen hosts per path",
        o.hosts
    );
    let mut first: [FirstContact; 3] = std::array::from_fn(|_| FirstContact {
        first: Vec::new(),
        again: Vec::new(),
    });
    for k in 0..usize::from(o.hosts) {
        for (i, (via, tls)) in vias.iter().zip(&tls).enumerate() {
            let host = hosts[i * usize::from(o.hosts) + k].to_string();
            first[i]
                .first
                .push(client::one_request(via, tls, &host, port).await?);
            first[i]
                .again
                .push(client::one_request(via, tls, &host, port).await?);
        }
    }
    egress.check_alive()?;
    mitm.check_alive()?;
    drop((egress, mitm, relays, origin));

    let results = Results {
        seconds: o.seconds,
        rounds: o.rounds,
        origin_h2: !o.origin_h1,
        load,
        reference,
        download_mb_s: download
            .try_into()
            .map_err(|_| anyhow::anyhow!("three paths"))?,
        download_mb: DOWNLOAD_BYTES / 1_000_000,
        first,
        memory: memory
            .try_into()
            .map_err(|_| anyhow::anyhow!("two proxies"))?,
    };
    let doc = results.document(&machine, &started);
    if let Some(parent) = o.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&o.out, &doc).with_context(|| format!("writing {}", o.out.display()))?;
    println!(
        "{machine}\n{}\n{}",
        results.targets_table(),
        results.details()
    );
    println!("wrote {}", o.out.display());
    Ok(())
}

/// Opens `n` CONNECT + TLS tunnels through the proxy, holds them, and reads its RSS.
async fn idle_tunnels(
    proc: &mut proxies::Proc,
    via: &Via,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    port: u16,
    n: usize,
) -> Result<Memory> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_kib = proc.rss_kib()?;
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        let batch = TUNNEL_BATCH.min(n - held.len());
        let opened = try_join_all((0..batch).map(|_| client::connect(via, tls, "localhost", port)))
            .await
            .with_context(|| {
                format!("opening tunnel {} of {n} via {}", held.len() + 1, via.name)
            })?;
        held.extend(opened);
    }
    // Let the proxy settle (mitmdump connects upstream in the background).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tunnels_kib = proc.rss_kib()?;
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(Memory {
        idle_kib,
        tunnels_kib,
        tunnels: n,
    })
}

/// The current time in UTC, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn options_are_bounded() {
        let o = parse(&args(&[
            "--seconds",
            "3",
            "--tunnels",
            "10",
            "--out",
            "/tmp/p.md",
        ]))
        .unwrap();
        assert_eq!((o.seconds, o.hosts, o.tunnels), (3, 20, 10));
        assert_eq!(o.out, PathBuf::from("/tmp/p.md"));
        assert!(parse(&args(&["--seconds", "0"])).is_err());
        assert!(parse(&args(&["--hosts", "81"])).is_err());
        assert!(
            parse(&args(&["--seconds"]))
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
        assert!(
            run(&args(&["nope"]))
                .unwrap_err()
                .to_string()
                .contains("unknown benchmark")
        );
    }
}
