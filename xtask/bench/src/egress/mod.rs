//! `cargo xtask bench egress`: bottle-egress against a direct connection, mitmdump and Squid
//! with ssl-bump, side by side in one run, on loopback, with the same origin and the same
//! clients; and, for scale, two reference relays that do less than any intercepting proxy can
//! (`relay.rs`).
//!
//! What it measures and the targets it judges are in `docs/performance.md`, which it writes
//! (from `docs/bench/egress.json`, which it writes first). Every process it starts is held by a
//! guard that kills it on every exit path, Ctrl-C and SIGTERM included.
//!
//! The run is a sequence of phases over one [`Lab`] (the origin, the proxies, the relays and a
//! client setting per path), each phase a method returning its typed rows.

pub(crate) mod client;
pub(crate) mod origin;
mod paths;
pub(crate) mod proxies;
mod report;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::future::try_join_all;

use crate::util::{self, Proc, Tool};
use client::{LoadSpec, Transfer, Via};
use paths::{Cell, Path, PerPath, Proxies, Relay, Relays};
pub(crate) use report::Results;
use report::{Dlp, FirstContact, LoadRow, Memory, RoutesRow, Scenario, Settings, Sse};

pub(crate) const USAGE: &str = "\
cargo xtask bench egress [--smoke] [--seconds N] [--rounds N] [--hosts N] [--tunnels N]
                         [--h2-streams N] [--sse-events N] [--transfer-mb N] [--routes N,N,…]
                         [--origin-h1] [--out-dir DIR] [--perf DIR] [--egress-bin FILE]

  --smoke        every row, briefly (1 s, 1 round, 3 hosts, 100 tunnels, 5 MB, 20 events),
                 written to target/bench-smoke/ unless --out-dir says otherwise
  --seconds N    length of each load run (5)         --rounds N   rounds per scenario (3)
  --hosts N      never-seen hosts per path (20)      --tunnels N  idle tunnels per proxy (1000)
  --h2-streams N streams on the HTTP/2 connection (100)
  --sse-events N server-sent events per path (100, one every 10 ms)
  --transfer-mb N size of the download and the upload (50)
  --routes LIST  route-table sizes for the lookup rows (10,1000,10000)
  --origin-h1    the origin offers HTTP/1.1 only (by default h2 too, as real APIs do)
  --out-dir DIR  write DIR/bench/egress.json and DIR/performance.md (DIR is docs/ by default)
  --perf DIR     record bottle-egress with `perf record -e cpu-clock -g` for the whole run
  --egress-bin F measure this bottle-egress binary instead of a fresh release build";

/// The extra configuration of the second egress of the DLP row, whose routes have DLP on
/// (every detector, and this known secret); every other egress's routes say `dlp: off`.
const DLP_CONFIG: Option<&str> = Some("known_secrets: [BENCH_DLP_SECRET]\n");
/// The variable holding the DLP row's known secret, set for every egress the bench starts.
pub(crate) const DLP_SECRET_VAR: &str = "BENCH_DLP_SECRET";
const DLP_UNAVAILABLE: &str = "not available in this build (bottle-egress has no DLP yet)";
const SQUID_NO_H2: &str = "not measured: Squid speaks HTTP/1.1 only to its clients";

/// Tunnels are opened this many at a time.
const TUNNEL_BATCH: usize = 50;

const TOOLS: [Tool; 4] = [
    Tool {
        name: "oha",
        version_args: &["--version"],
        install: "cargo install oha --locked",
    },
    Tool {
        name: "mitmdump",
        version_args: &["--version"],
        install: "pip install mitmproxy",
    },
    Tool {
        name: "squid",
        version_args: &["-v"],
        install: "apt-get install squid-openssl",
    },
    Tool {
        name: "curl",
        version_args: &["--version"],
        install: "apt-get install curl",
    },
];

#[derive(Debug, Clone)]
struct Options {
    settings: Settings,
    out_dir: Option<PathBuf>,
    smoke: bool,
    perf: Option<PathBuf>,
    egress_bin: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut o = Options {
        settings: Settings {
            seconds: if smoke { 1 } else { 5 },
            rounds: if smoke { 1 } else { 3 },
            hosts: if smoke { 3 } else { 20 },
            tunnels: if smoke { 100 } else { 1000 },
            h2_streams: 100,
            sse_events: if smoke { 20 } else { 100 },
            sse_every_ms: 10,
            transfer_mb: if smoke { 5 } else { 50 },
            route_counts: vec![10, 1000, 10_000],
            origin_h2: true,
        },
        out_dir: None,
        smoke,
        perf: None,
        egress_bin: None,
    };
    let s = &mut o.settings;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("`{a}` needs a value; see `cargo xtask bench --help`"))
        };
        match a.as_str() {
            "--smoke" => {}
            "--seconds" => s.seconds = value()?.parse().context("--seconds takes whole seconds")?,
            "--rounds" => s.rounds = value()?.parse().context("--rounds takes a count")?,
            "--hosts" => s.hosts = value()?.parse().context("--hosts takes 1 to 60")?,
            "--tunnels" => s.tunnels = value()?.parse().context("--tunnels takes a count")?,
            "--h2-streams" => {
                s.h2_streams = value()?.parse().context("--h2-streams takes a count")?
            }
            "--sse-events" => {
                s.sse_events = value()?.parse().context("--sse-events takes a count")?
            }
            "--transfer-mb" => {
                s.transfer_mb = value()?.parse().context("--transfer-mb takes megabytes")?;
            }
            "--routes" => {
                s.route_counts = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context(
                        "--routes takes a comma-separated list of counts, e.g. 10,1000,10000",
                    )?;
            }
            "--origin-h1" => s.origin_h2 = false,
            "--out-dir" => o.out_dir = Some(PathBuf::from(value()?)),
            "--perf" => o.perf = Some(PathBuf::from(value()?)),
            "--egress-bin" => o.egress_bin = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument `{other}`; see `cargo xtask bench --help`"),
        }
    }
    let s = &o.settings;
    if s.seconds == 0 || s.seconds > 600 {
        bail!("--seconds must be between 1 and 600");
    }
    if s.rounds == 0 || s.rounds > 15 {
        bail!("--rounds must be between 1 and 15");
    }
    // Four disjoint sets of 127.0.0.k, k from 2, must stay within 127.0.0.254.
    if s.hosts == 0 || s.hosts > 60 {
        bail!("--hosts must be between 1 and 60");
    }
    if s.tunnels == 0 || s.tunnels > 20_000 {
        bail!("--tunnels must be between 1 and 20000");
    }
    if s.h2_streams == 0 || s.h2_streams > 1000 {
        bail!("--h2-streams must be between 1 and 1000");
    }
    if s.sse_events == 0 || s.transfer_mb == 0 || s.transfer_mb > 10_000 {
        bail!("--sse-events must be at least 1 and --transfer-mb between 1 and 10000");
    }
    if s.route_counts.is_empty() || s.route_counts.iter().any(|&n| n == 0 || n > 100_000) {
        bail!("--routes takes counts between 1 and 100000");
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut options = parse(args)?;
    if cfg!(debug_assertions) {
        bail!(
            "`bench egress` measures with its own origin and clients, so it must be a release \
             build: run it as `cargo xtask bench egress`"
        );
    }
    util::require("bench egress", &TOOLS)?;
    if options.perf.is_some() {
        util::require(
            "bench egress --perf",
            &[Tool {
                name: "perf",
                version_args: &["--version"],
                install: "apt-get install linux-perf",
            }],
        )?;
    }
    check_fd_limit(options.settings.tunnels)?;
    let egress_bin = match options.egress_bin.take() {
        Some(bin) => bin,
        None => util::build_release(Some("bottle-egress"), "bottle-egress")?,
    };
    let out_dir = options.out_dir.clone().unwrap_or_else(|| {
        if options.smoke {
            util::workspace_root().join("target/bench-smoke")
        } else {
            util::workspace_root().join("docs")
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let results = runtime.block_on(async {
        tokio::select! {
            r = bench(&options, &egress_bin) => r,
            s = util::interrupted() => bail!("{s}: stopped the proxies and the origin, wrote nothing"),
        }
    })?;
    let verdicts = results.verdicts();
    println!(
        "{}",
        crate::verdict::table(&verdicts, report::PROFILE_MEANS)
    );
    crate::doc::save(&out_dir, crate::doc::Part::Egress(Box::new(results)))?;
    Ok(())
}

/// Each tunnel costs a descriptor in the bench, in the proxy and (mitmdump connects upstream
/// at once) one more in the origin, which lives in the bench process.
fn check_fd_limit(tunnels: usize) -> Result<()> {
    let need = 2 * tunnels + 512;
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

/// Everything a phase of the run needs: the origin, the proxies and relays as processes, and
/// how a client reaches the origin on each path.
struct Lab {
    dir: PathBuf,
    egress_bin: PathBuf,
    origin: origin::Origin,
    origin_ca_pem: PathBuf,
    egress_ca_dir: PathBuf,
    /// Each path's own never-seen hosts.
    hosts: PerPath<Vec<IpAddr>>,
    procs: Proxies<Proc>,
    /// Each relay's process and the URL that reaches the origin through it.
    relays: Relays<(Proc, String)>,
    vias: PerPath<Via>,
    /// Client settings offering HTTP/1.1, and offering only HTTP/2.
    tls: PerPath<Arc<rustls::ClientConfig>>,
    tls_h2: PerPath<Arc<rustls::ClientConfig>>,
    /// `perf record`, attached to bottle-egress for the whole run, when asked for.
    perf: Option<Proc>,
}

impl Lab {
    async fn start(o: &Options, dir: &FsPath, egress_bin: &FsPath) -> Result<Lab> {
        let n = usize::from(o.settings.hosts);
        // Never-seen hosts: four disjoint sets of loopback addresses, one per path.
        let all_hosts: Vec<IpAddr> = (0..4 * n)
            .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(k + 2).unwrap_or(254))))
            .collect();
        let mut sets = all_hosts.chunks(n).map(<[IpAddr]>::to_vec);
        let hosts = PerPath::from_fn(|_| sets.next().unwrap_or_default());

        let origin_ca = origin::TestCa::generate()?;
        let origin_ca_pem = dir.join("origin-ca.pem");
        origin_ca.write_pem(&origin_ca_pem)?;
        let origin = origin::Origin::start(&origin_ca, &all_hosts, o.settings.origin_h2).await?;
        let port = origin.port;
        eprintln!("bench: origin on https://localhost:{port}");

        let rule = proxies::Rule {
            extra: &all_hosts,
            port,
            filler: 0,
            dlp: false,
        };
        let egress_ca_dir = dir.join("egress-ca");
        proxies::mint_egress_ca(egress_bin, &egress_ca_dir)?;
        let ports = Proxies {
            egress: util::free_port()?,
            mitmdump: util::free_port()?,
            squid: util::free_port()?,
        };
        let config = dir.join("egress.yaml");
        std::fs::write(
            &config,
            rule.egress_yaml(ports.egress, &egress_ca_dir, &origin_ca_pem),
        )?;
        let egress = proxies::start_egress(egress_bin, &config, dir, ports.egress).await?;
        let perf = match &o.perf {
            Some(out) => Some(perf_record(&egress, out, dir)?),
            None => None,
        };
        let addon = dir.join("rule.py");
        std::fs::write(&addon, rule.mitm_addon())?;
        let (mitmdump, mitm_ca) = proxies::start_mitmdump(
            &addon,
            &dir.join("mitmproxy"),
            &origin_ca_pem,
            dir,
            ports.mitmdump,
        )
        .await?;
        let squid = proxies::start_squid(
            &rule,
            &dir.join("squid"),
            &egress_ca_dir.join("ca.crt"),
            &egress_ca_dir.join("ca.key"),
            &origin_ca_pem,
            ports.squid,
        )
        .await?;
        let procs = Proxies {
            egress,
            mitmdump,
            squid,
        };
        for (path, p) in procs.iter() {
            eprintln!(
                "bench: {} (pid {}) on 127.0.0.1:{}",
                path.name(),
                p.pid(),
                match path {
                    Path::Egress => ports.egress,
                    Path::Mitmdump => ports.mitmdump,
                    _ => ports.squid,
                }
            );
        }
        let relays = start_relays(&origin_ca, dir, port, &origin_ca_pem).await?;

        let proxy = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        let vias = PerPath {
            direct: Via {
                name: Path::Direct.name(),
                proxy: None,
                ca: origin_ca_pem.clone(),
            },
            egress: Via {
                name: Path::Egress.name(),
                proxy: proxy(ports.egress),
                ca: egress_ca_dir.join("ca.crt"),
            },
            mitmdump: Via {
                name: Path::Mitmdump.name(),
                proxy: proxy(ports.mitmdump),
                ca: mitm_ca,
            },
            squid: Via {
                name: Path::Squid.name(),
                proxy: proxy(ports.squid),
                // Squid signs with the same CA as bottle-egress.
                ca: egress_ca_dir.join("ca.crt"),
            },
        };
        let tls = tls_per_path(&vias, false)?;
        let tls_h2 = tls_per_path(&vias, true)?;
        Ok(Lab {
            dir: dir.to_path_buf(),
            egress_bin: egress_bin.to_path_buf(),
            origin,
            origin_ca_pem,
            egress_ca_dir,
            hosts,
            procs,
            relays,
            vias,
            tls,
            tls_h2,
            perf,
        })
    }

    fn port(&self) -> u16 {
        self.origin.port
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/", self.port())
    }

    /// Fails with a proxy's last words if one has died.
    fn check_alive(&mut self) -> Result<()> {
        for (_, p) in self.procs.iter_mut() {
            p.check_alive()?;
        }
        for relay in Relay::ALL {
            self.relays.get_mut(relay).0.check_alive()?;
        }
        Ok(())
    }

    /// One request per path first: the leaf for localhost is minted, pools are warm.
    async fn warm_up(&self) -> Result<()> {
        for path in Path::ALL {
            client::one_request(
                self.vias.get(path),
                self.tls.get(path),
                "localhost",
                self.port(),
            )
            .await
            .with_context(|| format!("the first request via {}", path.name()))?;
        }
        Ok(())
    }

    /// Memory first, while the proxies' allocators hold nothing left over from load.
    async fn memory(&mut self, o: &Options) -> Result<Proxies<Memory>> {
        let port = self.port();
        let mut out = Vec::new();
        for path in Proxies::<()>::PATHS {
            eprintln!(
                "bench: {} idle tunnels via {}",
                o.settings.tunnels,
                path.name()
            );
            let proc = self.procs.get_mut(path).expect("a proxy path");
            let (via, tls) = (self.vias.get(path), self.tls.get(path));
            out.push(idle_tunnels(proc, via, tls, port, o.settings.tunnels).await?);
        }
        let [egress, mitmdump, squid] = out.try_into().expect("one per proxy");
        Ok(Proxies {
            egress,
            mitmdump,
            squid,
        })
    }

    /// The HTTP/1.1 load scenarios, rounds interleaving every path and relay, so that a burst
    /// of load from elsewhere on the machine hits them all alike.
    async fn load_rows(&mut self, o: &Options) -> Result<Vec<LoadRow>> {
        let mut rows = Vec::new();
        for scenario in Scenario::ALL {
            let spec = LoadSpec {
                concurrency: scenario.concurrency,
                keepalive: scenario.keepalive,
                seconds: o.settings.seconds,
            };
            let label = scenario.label();
            let mut paths: PerPath<Vec<client::Load>> = PerPath::from_fn(|_| Vec::new());
            let mut relays: Relays<Vec<client::Load>> = Relays {
                blind: Vec::new(),
                tls: Vec::new(),
            };
            for round in 1..=o.settings.rounds {
                for path in Path::ALL {
                    eprintln!(
                        "bench: {label} via {} (round {round}/{})",
                        path.name(),
                        o.settings.rounds
                    );
                    let load = client::oha(self.vias.get(path), &self.url(), spec).await?;
                    paths.get_mut(path).push(load);
                    self.check_alive()?;
                }
                for relay in Relay::ALL {
                    eprintln!(
                        "bench: {label} via {} (round {round}/{})",
                        relay.name(),
                        o.settings.rounds
                    );
                    let via = self.relay_via(relay);
                    let url = self.relays.get(relay).1.clone();
                    relays
                        .get_mut(relay)
                        .push(client::oha(&via, &url, spec).await?);
                    self.check_alive()?;
                }
            }
            let median =
                |runs: Vec<client::Load>| report::median_run(runs).expect("at least one round");
            rows.push(LoadRow {
                scenario,
                paths: paths.map(|_, runs| median(runs)),
                relays: Relays {
                    blind: median(relays.blind),
                    tls: median(relays.tls),
                },
            });
        }
        Ok(rows)
    }

    /// Clients reach a relay like the origin itself: the origin CA signed the TLS relay's leaf.
    fn relay_via(&self, relay: Relay) -> Via {
        Via {
            name: relay.name(),
            proxy: None,
            ca: self.origin_ca_pem.clone(),
        }
    }

    /// Many streams on one HTTP/2 connection, on every path that speaks HTTP/2 to its clients.
    async fn h2_row(&mut self, o: &Options) -> Result<PerPath<Cell<client::Load>>> {
        let mut row = PerPath::from_fn(|_| Cell::Unavailable(SQUID_NO_H2.to_owned()));
        for path in [Path::Direct, Path::Egress, Path::Mitmdump] {
            eprintln!(
                "bench: HTTP/2, {} streams on one connection via {}",
                o.settings.h2_streams,
                path.name()
            );
            let load = client::h2_load(
                self.vias.get(path),
                self.tls_h2.get(path),
                "localhost",
                self.port(),
                o.settings.h2_streams,
                o.settings.seconds,
            )
            .await?;
            *row.get_mut(path) = Cell::Measured(load);
            self.check_alive()?;
        }
        Ok(row)
    }

    /// The large download and upload, in MB/s.
    async fn transfers(&mut self, o: &Options) -> Result<(PerPath<f64>, PerPath<f64>)> {
        let bytes = o.settings.transfer_mb * 1_000_000;
        let file = self.dir.join("upload.bin");
        write_upload_file(&file, bytes)?;
        let down_url = format!("https://localhost:{}/bytes/{bytes}", self.port());
        let up_url = format!("https://localhost:{}/upload", self.port());
        let mut down = PerPath::from_fn(|_| 0.0);
        let mut up = PerPath::from_fn(|_| 0.0);
        for path in Path::ALL {
            eprintln!(
                "bench: {} MB download and upload via {}",
                o.settings.transfer_mb,
                path.name()
            );
            let via = self.vias.get(path);
            let tries = o.settings.rounds;
            *down.get_mut(path) =
                client::transfer(via, &down_url, Transfer::Download, &file, bytes, tries).await?;
            *up.get_mut(path) =
                client::transfer(via, &up_url, Transfer::Upload("POST"), &file, bytes, tries)
                    .await?;
            self.check_alive()?;
        }
        Ok((down, up))
    }

    /// The delay of each server-sent event on each path.
    async fn sse(&mut self, o: &Options) -> Result<PerPath<Sse>> {
        let mut out = PerPath::from_fn(|_| Sse {
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            events: 0,
        });
        for path in Path::ALL {
            eprintln!(
                "bench: {} server-sent events via {}",
                o.settings.sse_events,
                path.name()
            );
            let delays = client::sse_delays(
                self.vias.get(path),
                self.tls.get(path),
                "localhost",
                self.port(),
                o.settings.sse_events,
                o.settings.sse_every_ms,
            )
            .await?;
            *out.get_mut(path) = Sse {
                p50_ms: util::median(&delays),
                p99_ms: util::percentile(&delays, 99.0),
                events: delays.len(),
            };
            self.check_alive()?;
        }
        Ok(out)
    }

    /// First requests to never-seen hosts, the paths interleaved host by host.
    async fn first_contacts(&mut self, o: &Options) -> Result<PerPath<FirstContact>> {
        eprintln!(
            "bench: first requests to {} never-seen hosts per path",
            o.settings.hosts
        );
        let mut out = PerPath::from_fn(|_| FirstContact {
            first: Vec::new(),
            again: Vec::new(),
        });
        for k in 0..usize::from(o.settings.hosts) {
            for path in Path::ALL {
                let ip = self.hosts.get(path)[k];
                let host = match path {
                    Path::Squid => origin::host_name(ip),
                    _ => ip.to_string(),
                };
                let (via, tls) = (self.vias.get(path), self.tls.get(path));
                let first = client::one_request(via, tls, &host, self.port())
                    .await
                    .with_context(|| format!("a first request to {host} via {}", path.name()))?;
                let again = client::one_request(via, tls, &host, self.port()).await?;
                let f = out.get_mut(path);
                f.first.push(first);
                f.again.push(again);
            }
        }
        self.check_alive()?;
        Ok(out)
    }

    /// One bottle-egress per route-table size, measured in interleaved rounds.
    async fn routes(&mut self, o: &Options) -> Result<Vec<RoutesRow>> {
        let mut egresses = Vec::new();
        for &routes in &o.settings.route_counts {
            // `routes − 1` routes for hosts nobody asks for, then `localhost`'s, the one used.
            let (proc, via) = self
                .another_egress(&format!("egress-{routes}-routes"), routes - 1, false, "")
                .await?;
            egresses.push((routes, proc, via));
        }
        let mut runs: Vec<(Vec<client::Load>, Vec<client::Load>)> =
            vec![(Vec::new(), Vec::new()); egresses.len()];
        for round in 1..=o.settings.rounds {
            for (i, (routes, proc, via)) in egresses.iter_mut().enumerate() {
                eprintln!(
                    "bench: {routes} routes (round {round}/{})",
                    o.settings.rounds
                );
                let (warm, new) = &mut runs[i];
                for (keepalive, out) in [(true, warm), (false, new)] {
                    let spec = LoadSpec {
                        concurrency: 1,
                        keepalive,
                        seconds: o.settings.seconds,
                    };
                    out.push(client::oha(via, &self.url(), spec).await?);
                }
                proc.check_alive()?;
            }
        }
        Ok(egresses
            .into_iter()
            .zip(runs)
            .map(|((routes, _, _), (warm, new))| RoutesRow {
                routes,
                warm: report::median_run(warm).expect("at least one round"),
                new_connection: report::median_run(new).expect("at least one round"),
            })
            .collect())
    }

    /// One more bottle-egress with the same CA and trust, allowing only `localhost` after
    /// `filler` routes for hosts nobody asks for, with `extra` appended to its config; warmed
    /// with one request.
    async fn another_egress(
        &self,
        name: &str,
        filler: usize,
        dlp: bool,
        extra: &str,
    ) -> Result<(Proc, Via)> {
        let rule = proxies::Rule {
            extra: &[],
            port: self.port(),
            filler,
            dlp,
        };
        let port = util::free_port()?;
        let config = self.dir.join(format!("{name}.yaml"));
        let yaml = rule.egress_yaml(port, &self.egress_ca_dir, &self.origin_ca_pem);
        std::fs::write(&config, format!("{yaml}{extra}"))?;
        let proc = proxies::start_egress(&self.egress_bin, &config, &self.dir, port).await?;
        let via = Via {
            name: Path::Egress.name(),
            proxy: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            ca: self.egress_ca_dir.join("ca.crt"),
        };
        client::one_request(&via, self.tls.get(Path::Egress), "localhost", self.port()).await?;
        Ok((proc, via))
    }

    /// DLP off (the main egress) against on (a second egress with [`DLP_CONFIG`]), when this
    /// build has DLP; otherwise the "on" cells say it is not available.
    async fn dlp(&mut self, o: &Options, off_warm: client::Load, off_upload: f64) -> Result<Dlp> {
        let Some(extra) = DLP_CONFIG else {
            return Ok(Dlp {
                off_warm,
                off_upload_mb_s: off_upload,
                on_warm: Cell::Unavailable(DLP_UNAVAILABLE.to_owned()),
                on_upload_mb_s: Cell::Unavailable(DLP_UNAVAILABLE.to_owned()),
            });
        };
        let (mut on, on_via) = self.another_egress("egress-dlp", 0, true, extra).await?;
        let spec = LoadSpec {
            concurrency: 1,
            keepalive: true,
            seconds: o.settings.seconds,
        };
        let bytes = o.settings.transfer_mb * 1_000_000;
        let file = self.dir.join("upload.bin");
        let up_url = format!("https://localhost:{}/upload", self.port());
        let (mut off_runs, mut on_runs) = (Vec::new(), Vec::new());
        for round in 1..=o.settings.rounds {
            eprintln!(
                "bench: DLP off and on (round {round}/{})",
                o.settings.rounds
            );
            off_runs.push(client::oha(&self.vias.egress, &self.url(), spec).await?);
            on_runs.push(client::oha(&on_via, &self.url(), spec).await?);
            on.check_alive()?;
        }
        let off_upload_mb_s = client::transfer(
            &self.vias.egress,
            &up_url,
            Transfer::Upload("POST"),
            &file,
            bytes,
            o.settings.rounds,
        )
        .await?;
        let on_upload = client::transfer(
            &on_via,
            &up_url,
            Transfer::Upload("POST"),
            &file,
            bytes,
            o.settings.rounds,
        )
        .await?;
        on.check_alive()?;
        Ok(Dlp {
            off_warm: report::median_run(off_runs).expect("at least one round"),
            off_upload_mb_s,
            on_warm: Cell::Measured(report::median_run(on_runs).expect("at least one round")),
            on_upload_mb_s: Cell::Measured(on_upload),
        })
    }
}

fn tls_per_path(vias: &PerPath<Via>, h2: bool) -> Result<PerPath<Arc<rustls::ClientConfig>>> {
    Ok(PerPath {
        direct: client::tls_config(&vias.direct.ca, h2)?,
        egress: client::tls_config(&vias.egress.ca, h2)?,
        mitmdump: client::tls_config(&vias.mitmdump.ca, h2)?,
        squid: client::tls_config(&vias.squid.ca, h2)?,
    })
}

/// The reference hops (relay.rs): the origin CA signs the TLS relay's leaf, so clients reach
/// both relays with the same trust as the direct path.
async fn start_relays(
    origin_ca: &origin::TestCa,
    dir: &FsPath,
    origin_port: u16,
    origin_ca_pem: &FsPath,
) -> Result<Relays<(Proc, String)>> {
    let cert = dir.join("relay-cert.pem");
    let key = dir.join("relay-key.pem");
    origin_ca.write_leaf(vec![crate::relay::TLS_NAME.to_owned()], &cert, &key)?;
    let start = async |relay: Relay| -> Result<(Proc, String)> {
        let port = util::free_port()?;
        let tls = (relay == Relay::Tls).then_some(proxies::RelayTls {
            cert: &cert,
            key: &key,
            ca: origin_ca_pem,
        });
        let proc = proxies::start_relay(relay.name(), dir, port, origin_port, tls).await?;
        eprintln!("bench: {} on 127.0.0.1:{port}", relay.name());
        Ok((proc, format!("https://localhost:{port}/")))
    };
    Ok(Relays {
        blind: start(Relay::Blind).await?,
        tls: start(Relay::Tls).await?,
    })
}

/// `perf record` on the running bottle-egress, its data to `out/egress.perf.data`.
fn perf_record(egress: &Proc, out: &FsPath, work: &FsPath) -> Result<Proc> {
    std::fs::create_dir_all(out)?;
    let mut cmd = std::process::Command::new("perf");
    cmd.args([
        "record",
        "-e",
        "cpu-clock",
        "-g",
        "-p",
        &egress.pid().to_string(),
        "-o",
    ])
    .arg(out.join("egress.perf.data"));
    eprintln!(
        "bench: perf records bottle-egress to {} (see it with `perf report -i …`; a release \
         build has no symbols: pass --egress-bin with a build from `cargo xtask bench guard \
         --profile`)",
        out.join("egress.perf.data").display()
    );
    Proc::spawn("perf", cmd, work.join("perf.stderr"))
}

/// `bytes` of a repeating pattern (the content does not matter; no DLP rule matches it).
fn write_upload_file(path: &FsPath, bytes: u64) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let chunk = vec![b'u'; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        file.write_all(&chunk[..usize::try_from(n)?])?;
        left -= n;
    }
    file.flush()?;
    Ok(())
}

async fn bench(o: &Options, egress_bin: &FsPath) -> Result<Results> {
    let started = util::utc_now();
    let machine = util::Machine::describe(&[
        (
            "bottle-egress",
            util::first_line(&egress_bin.to_string_lossy(), &["--version"]),
        ),
        ("oha", TOOLS[0].version()),
        ("mitmproxy", TOOLS[1].version()),
        ("Squid", TOOLS[2].version()),
        ("curl", TOOLS[3].version()),
    ]);
    let work = tempfile::Builder::new().prefix("bench-egress-").tempdir()?;
    let mut lab = Lab::start(o, work.path(), egress_bin).await?;
    lab.warm_up().await?;
    let memory = lab.memory(o).await?;
    let load = lab.load_rows(o).await?;
    let h2 = lab.h2_row(o).await?;
    let (download_mb_s, upload_mb_s) = lab.transfers(o).await?;
    let sse = lab.sse(o).await?;
    let first = lab.first_contacts(o).await?;
    let routes = lab.routes(o).await?;
    let off_warm = load
        .iter()
        .find(|r| r.scenario == Scenario::warm(1))
        .map(|r| r.paths.egress)
        .context("no warm c=1 row")?;
    let dlp = lab.dlp(o, off_warm, upload_mb_s.egress).await?;
    lab.check_alive()?;
    if let Some(perf) = lab.perf.take() {
        // SIGINT makes perf write out what it recorded.
        perf.stop("-INT", Duration::from_secs(30))?;
    }
    drop(lab);
    // Squid's files belong to its user; the directory is ours to remove all the same.
    drop(work);
    Ok(Results {
        started,
        machine,
        settings: o.settings.clone(),
        load,
        h2,
        download_mb_s,
        upload_mb_s,
        sse,
        first,
        memory,
        routes,
        dlp,
    })
}

/// Opens `n` CONNECT + TLS tunnels through the proxy, holds them, and reads its RSS.
async fn idle_tunnels(
    proc: &mut Proc,
    via: &Via,
    tls: &Arc<rustls::ClientConfig>,
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
            "--routes",
            "5,50",
        ]))
        .unwrap();
        let s = &o.settings;
        assert_eq!((s.seconds, s.hosts, s.tunnels), (3, 20, 10));
        assert_eq!(s.route_counts, [5, 50]);
        assert!(parse(&args(&["--seconds", "0"])).is_err());
        assert!(parse(&args(&["--hosts", "61"])).is_err());
        assert!(parse(&args(&["--routes", "10,x"])).is_err());
        assert!(
            parse(&args(&["--seconds"]))
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
    }

    #[test]
    fn smoke_is_short_and_stays_out_of_docs() {
        let o = parse(&args(&["--smoke"])).unwrap();
        let s = &o.settings;
        assert!(o.smoke);
        assert_eq!(
            (s.seconds, s.rounds, s.tunnels, s.transfer_mb),
            (1, 1, 100, 5)
        );
        // An explicit value still wins.
        let o = parse(&args(&["--smoke", "--seconds", "2"])).unwrap();
        assert_eq!(o.settings.seconds, 2);
    }
}
