//! The figures of one run of `bench egress`, the targets judged on them (ratios within the
//! run, each with its margin), and their Markdown. The figures are saved as JSON first
//! (`docs/bench/egress.json`); the Markdown is rendered from that, so a report can be
//! re-rendered without measuring again.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::client::Load;
use super::paths::{Cell, Path, PerPath, Proxies, Relays};
use crate::util::{Machine, median};
use crate::verdict::Verdict;

/// How one HTTP/1.1 load scenario loads the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scenario {
    pub(crate) concurrency: u32,
    /// Requests reuse their connection; without it each request pays a `CONNECT` and a full
    /// handshake.
    pub(crate) keepalive: bool,
}

impl Scenario {
    /// The scenarios, in table order.
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::warm(1),
        Scenario::warm(32),
        Scenario::warm(128),
        Scenario::new_connections(1),
        Scenario::new_connections(8),
    ];

    pub(crate) const fn warm(concurrency: u32) -> Scenario {
        Scenario {
            concurrency,
            keepalive: true,
        }
    }

    pub(crate) const fn new_connections(concurrency: u32) -> Scenario {
        Scenario {
            concurrency,
            keepalive: false,
        }
    }

    pub(crate) fn label(self) -> String {
        if self.keepalive {
            format!("warm keep-alive, c={}", self.concurrency)
        } else {
            format!("new connection per request, c={}", self.concurrency)
        }
    }
}

/// One HTTP/1.1 load scenario on every path and relay: each one's median round by req/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LoadRow {
    pub(crate) scenario: Scenario,
    pub(crate) paths: PerPath<Load>,
    pub(crate) relays: Relays<Load>,
}

/// When each phase of one request on a new connection was done, in ms from the first SYN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Phases {
    /// TCP connected (direct), or TCP and `CONNECT` answered `200` (proxied).
    pub(crate) tunnel_ms: f64,
    /// The TLS handshake with the origin or the proxy done.
    pub(crate) tls_ms: f64,
    /// The last body byte received.
    pub(crate) total_ms: f64,
}

/// First requests over fresh hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FirstContact {
    /// The first request to each never-seen host, on a new connection.
    pub(crate) first: Vec<Phases>,
    /// The same host right after, again on a new connection (leaf cached, upstream warm).
    pub(crate) again: Vec<Phases>,
}

impl FirstContact {
    fn median(v: &[Phases], f: fn(&Phases) -> f64) -> f64 {
        median(&v.iter().map(f).collect::<Vec<_>>())
    }

    pub(crate) fn first_ms(&self) -> f64 {
        Self::median(&self.first, |p| p.total_ms)
    }
}

/// A proxy's resident memory (the process and its helpers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Memory {
    /// After start-up and one request (TLS stacks initialised, the leaf minted).
    pub(crate) idle_kib: u64,
    /// With the idle tunnels open.
    pub(crate) tunnels_kib: u64,
    pub(crate) tunnels: usize,
}

impl Memory {
    pub(crate) fn per_tunnel_kib(&self) -> f64 {
        self.tunnels_kib.saturating_sub(self.idle_kib) as f64 / self.tunnels.max(1) as f64
    }
}

/// How long each server-sent event took from the origin's write to the client's read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sse {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) events: usize,
}

/// bottle-egress with a route table of `routes` entries (the request's own route among them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoutesRow {
    pub(crate) routes: usize,
    pub(crate) warm: Load,
    pub(crate) new_connection: Load,
}

/// bottle-egress with its data-loss prevention off and on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Dlp {
    pub(crate) off_warm: Load,
    pub(crate) off_upload_mb_s: f64,
    pub(crate) on_warm: Cell<Load>,
    pub(crate) on_upload_mb_s: Cell<f64>,
}

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// Seconds of each load run.
    pub(crate) seconds: u64,
    /// Rounds of each load scenario; the figures are each path's median round.
    pub(crate) rounds: u32,
    /// Never-seen hosts per path.
    pub(crate) hosts: u8,
    /// Idle tunnels held open per proxy.
    pub(crate) tunnels: usize,
    /// Concurrent streams on the one HTTP/2 connection.
    pub(crate) h2_streams: u32,
    /// Server-sent events per path, and the ms between them.
    pub(crate) sse_events: u32,
    pub(crate) sse_every_ms: u64,
    /// The size of the download and of the upload, in MB.
    pub(crate) transfer_mb: u64,
    /// Route-table sizes of the route-count rows.
    pub(crate) route_counts: Vec<usize>,
    /// Whether the origin offered HTTP/2 (besides HTTP/1.1) by ALPN.
    pub(crate) origin_h2: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) started: String,
    pub(crate) machine: Machine,
    pub(crate) settings: Settings,
    pub(crate) load: Vec<LoadRow>,
    pub(crate) h2: PerPath<Cell<Load>>,
    pub(crate) download_mb_s: PerPath<f64>,
    pub(crate) upload_mb_s: PerPath<f64>,
    pub(crate) sse: PerPath<Sse>,
    pub(crate) first: PerPath<FirstContact>,
    pub(crate) memory: Proxies<Memory>,
    pub(crate) routes: Vec<RoutesRow>,
    pub(crate) dlp: Dlp,
}

/// How to find out why an egress target was missed.
pub(crate) const PROFILE_MEANS: &str = "`cargo xtask bench guard --profile DIR` for instructions \
    by function, `cargo xtask bench egress --perf DIR` for where the time goes";

/// Targets on the request rate, each per load scenario.
const SQUID_TIMES: f64 = 2.0;
const MITM_TIMES: f64 = 10.0;
const TLS_RELAY_SHARE: f64 = 0.85;
/// First contact and SSE: the most bottle-egress may add, in ms.
const FIRST_CONTACT_MS: f64 = 1.0;
const SSE_ADDED_MS: f64 = 1.0;
const TUNNEL_KIB: f64 = 64.0;
/// The request rate with the largest route table, as a share of the smallest one's.
const ROUTES_FLAT_SHARE: f64 = 0.90;

impl Results {
    /// bottle-egress's first request to a never-seen host minus direct's (medians).
    pub(crate) fn first_contact_overhead_ms(&self) -> f64 {
        self.first.egress.first_ms() - self.first.direct.first_ms()
    }

    /// Every target, judged on this run's figures.
    pub(crate) fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for row in &self.load {
            let label = row.scenario.label();
            let (egress, squid, mitm) = (&row.paths.egress, &row.paths.squid, &row.paths.mitmdump);
            out.push(Verdict::at_least(
                format!("{label}: bottle-egress ≥ {SQUID_TIMES}× Squid's req/s"),
                egress.rps / squid.rps,
                SQUID_TIMES,
                "×",
                format!("{:.0} vs {:.0} req/s", egress.rps, squid.rps),
            ));
            let worst_peer = squid.p99_ms.min(mitm.p99_ms);
            out.push(Verdict::below(
                format!("{label}: bottle-egress p99 lower than Squid's and mitmdump's"),
                egress.p99_ms,
                worst_peer,
                " ms",
                format!(
                    "p99 {:.2} vs {:.2} (Squid), {:.2} (mitmdump) ms",
                    egress.p99_ms, squid.p99_ms, mitm.p99_ms
                ),
            ));
            out.push(Verdict::at_least(
                format!("{label}: bottle-egress ≥ {MITM_TIMES}× mitmdump's req/s"),
                egress.rps / mitm.rps,
                MITM_TIMES,
                "×",
                format!("{:.0} vs {:.0} req/s", egress.rps, mitm.rps),
            ));
            let relay = &row.relays.tls;
            out.push(Verdict::at_least(
                format!(
                    "{label}: bottle-egress ≥ {:.0}% of the TLS relay's req/s",
                    TLS_RELAY_SHARE * 100.0
                ),
                egress.rps / relay.rps * 100.0,
                TLS_RELAY_SHARE * 100.0,
                "%",
                format!("{:.0} vs {:.0} req/s", egress.rps, relay.rps),
            ));
        }
        out.push(Verdict::at_most(
            "first request to a never-seen host: ≤ 1 ms over direct".to_owned(),
            self.first_contact_overhead_ms(),
            FIRST_CONTACT_MS,
            " ms",
            format!(
                "{:.2} vs {:.2} ms, medians",
                self.first.egress.first_ms(),
                self.first.direct.first_ms()
            ),
        ));
        let added = self.sse.egress.p50_ms - self.sse.direct.p50_ms;
        out.push(Verdict::at_most(
            "server-sent events: ≤ 1 ms added per event".to_owned(),
            added,
            SSE_ADDED_MS,
            " ms",
            format!(
                "p50 {:.2} vs {:.2} ms direct; p99 {:.2} vs {:.2} ms",
                self.sse.egress.p50_ms,
                self.sse.direct.p50_ms,
                self.sse.egress.p99_ms,
                self.sse.direct.p99_ms
            ),
        ));
        let m = self.memory.egress;
        out.push(Verdict::at_most(
            format!("memory: ≤ {TUNNEL_KIB} KiB per idle tunnel"),
            m.per_tunnel_kib(),
            TUNNEL_KIB,
            " KiB",
            format!(
                "{:.1} → {:.1} MiB with {} tunnels",
                m.idle_kib as f64 / 1024.0,
                m.tunnels_kib as f64 / 1024.0,
                m.tunnels
            ),
        ));
        if let (Some(small), Some(large)) = (self.routes.first(), self.routes.last())
            && small.routes != large.routes
        {
            for (what, s, l) in [
                ("warm", &small.warm, &large.warm),
                (
                    "new connection",
                    &small.new_connection,
                    &large.new_connection,
                ),
            ] {
                out.push(Verdict::at_least(
                    format!(
                        "{} routes, {what}: ≥ {:.0}% of the req/s with {} (flat lookup)",
                        large.routes,
                        ROUTES_FLAT_SHARE * 100.0,
                        small.routes
                    ),
                    l.rps / s.rps * 100.0,
                    ROUTES_FLAT_SHARE * 100.0,
                    "%",
                    format!("{:.0} vs {:.0} req/s", l.rps, s.rps),
                ));
            }
        }
        out
    }

    /// The detail tables.
    pub(crate) fn details(&self) -> String {
        let mut s = String::new();
        self.load_tables(&mut s);
        self.h2_table(&mut s);
        self.transfer_table(&mut s);
        self.sse_table(&mut s);
        self.first_contact_table(&mut s);
        self.memory_table(&mut s);
        self.routes_table(&mut s);
        self.dlp_table(&mut s);
        s
    }

    fn load_tables(&self, s: &mut String) {
        let st = &self.settings;
        let _ = writeln!(
            s,
            "### HTTP/1.1 requests (oha, `GET /`; the median of {} interleaved rounds of {} s)\n\n\
             | scenario | path | req/s | p50 ms | p99 ms | ok | failed |\n|---|---|---:|---:|---:|---:|---:|",
            st.rounds, st.seconds
        );
        for row in &self.load {
            let label = row.scenario.label();
            for (path, l) in row.paths.iter() {
                let _ = writeln!(
                    s,
                    "| {label} | {} | {:.0} | {:.3} | {:.3} | {} | {} |",
                    path.name(),
                    l.rps,
                    l.p50_ms,
                    l.p99_ms,
                    l.ok,
                    l.failed
                );
            }
        }
        let _ = writeln!(
            s,
            "\n#### Reference: relays that do less than any intercepting proxy\n\n\
             The same scenarios through two more processes of the bench (single-threaded like\n\
             bottle-egress), each one more loopback hop: the **blind relay** copies bytes (no TLS,\n\
             no HTTP); the **TLS relay** terminates the client's TLS and re-encrypts to the origin\n\
             (verified), one upstream connection per client connection, and does nothing else. The\n\
             load generator, the origin and the hop share the machine's cores, so the blind relay's\n\
             share of direct is the most any hop reaches here, and the TLS relay's what the least\n\
             interception work leaves.\n\n\
             | scenario | relay | req/s | p50 ms | p99 ms | share of direct | bottle-egress, share of it |\n\
             |---|---|---:|---:|---:|---:|---:|"
        );
        for row in &self.load {
            for (relay, l) in row.relays.iter() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {:.0}% | {:.0}% |",
                    row.scenario.label(),
                    relay.name(),
                    l.rps,
                    l.p50_ms,
                    l.p99_ms,
                    l.rps / row.paths.direct.rps * 100.0,
                    row.paths.egress.rps / l.rps * 100.0
                );
            }
        }
    }

    fn h2_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n### HTTP/2: {} streams on one connection ({} s, `GET /`)\n\n\
             | path | req/s | p50 ms | p99 ms | ok | failed |\n|---|---:|---:|---:|---:|---:|",
            self.settings.h2_streams, self.settings.seconds
        );
        for (path, cell) in self.h2.iter() {
            match cell {
                Cell::Measured(l) => {
                    let _ = writeln!(
                        s,
                        "| {} | {:.0} | {:.3} | {:.3} | {} | {} |",
                        path.name(),
                        l.rps,
                        l.p50_ms,
                        l.p99_ms,
                        l.ok,
                        l.failed
                    );
                }
                Cell::Unavailable(why) => {
                    let _ = writeln!(s, "| {} | {why} | | | | |", path.name());
                }
            }
        }
    }

    fn transfer_table(&self, s: &mut String) {
        let mb = self.settings.transfer_mb;
        let _ = writeln!(
            s,
            "\n### {mb} MB download and upload (curl, HTTP/1.1, best of {})\n\n\
             | path | download MB/s | share of direct | upload MB/s | share of direct |\n|---|---:|---:|---:|---:|",
            self.settings.rounds
        );
        for path in Path::ALL {
            let (down, up) = (*self.download_mb_s.get(path), *self.upload_mb_s.get(path));
            let _ = writeln!(
                s,
                "| {} | {down:.0} | {:.0}% | {up:.0} | {:.0}% |",
                path.name(),
                down / self.download_mb_s.direct * 100.0,
                up / self.upload_mb_s.direct * 100.0
            );
        }
    }

    fn sse_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n### Server-sent events ({} events, one every {} ms)\n\n\
             The origin stamps each event with the bench's clock as it writes it; the client reads\n\
             the clock as the event arrives. Both ends are in the bench process, so the delay is\n\
             one clock's difference; what a path adds is its delay minus direct's.\n\n\
             | path | p50 ms | p99 ms | added p50 ms | added p99 ms |\n|---|---:|---:|---:|---:|",
            self.settings.sse_events, self.settings.sse_every_ms
        );
        for (path, e) in self.sse.iter() {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                path.name(),
                e.p50_ms,
                e.p99_ms,
                e.p50_ms - self.sse.direct.p50_ms,
                e.p99_ms - self.sse.direct.p99_ms
            );
        }
    }

    fn first_contact_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n### First request to a never-seen host ({} hosts per path)\n\n\
             One `GET /` on a new connection to a host this path has never reached (\"first\"), then\n\
             the same host once more on another new connection (\"again\"). Milliseconds from the\n\
             first SYN until: the tunnel stood (TCP, plus the proxy's `200` to `CONNECT`), the TLS\n\
             handshake was done, the response was read. Medians; the mean of the first response\n\
             is given too.\n\n\
             | path | first: tunnel | first: TLS | first: response | first: response, mean | again: tunnel | again: TLS | again: response | first − direct first |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|",
            self.first.direct.first.len()
        );
        let direct_first = self.first.direct.first_ms();
        for (path, f) in self.first.iter() {
            let m = FirstContact::median;
            let first_mean =
                f.first.iter().map(|p| p.total_ms).sum::<f64>() / f.first.len().max(1) as f64;
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {:.2} | {first_mean:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                path.name(),
                m(&f.first, |p| p.tunnel_ms),
                m(&f.first, |p| p.tls_ms),
                f.first_ms(),
                m(&f.again, |p| p.tunnel_ms),
                m(&f.again, |p| p.tls_ms),
                m(&f.again, |p| p.total_ms),
                f.first_ms() - direct_first,
            );
        }
    }

    fn memory_table(&self, s: &mut String) {
        let n = self.memory.egress.tunnels;
        let _ = writeln!(
            s,
            "\n### Memory (VmRSS of the proxy and its helper processes)\n\n\
             Idle: after start-up and one request. Then {n} tunnels are opened and held: each a\n\
             CONNECT and a completed TLS handshake with the proxy, no request yet. The per-1 000\n\
             figure scales the measured difference.\n\n\
             | proxy | idle MiB | with {n} idle tunnels MiB | KiB per idle tunnel | MiB per 1 000 idle tunnels |\n|---|---:|---:|---:|---:|"
        );
        for (path, m) in self.memory.iter() {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                path.name(),
                m.idle_kib as f64 / 1024.0,
                m.tunnels_kib as f64 / 1024.0,
                m.per_tunnel_kib(),
                m.per_tunnel_kib() * 1000.0 / 1024.0
            );
        }
    }

    fn routes_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n### The cost of one request against a large route table (bottle-egress)\n\n\
             One bottle-egress per table size, the request's own route listed last, the others for\n\
             hosts nobody asks for; oha `GET /`, c=1, interleaved rounds, the median. A flat row is\n\
             an O(1) or O(log n) lookup.\n\n\
             | routes | warm req/s | warm p50 ms | new connection req/s | new connection p50 ms |\n|---:|---:|---:|---:|---:|"
        );
        for r in &self.routes {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.3} | {:.0} | {:.3} |",
                r.routes, r.warm.rps, r.warm.p50_ms, r.new_connection.rps, r.new_connection.p50_ms
            );
        }
    }

    fn dlp_table(&self, s: &mut String) {
        let d = &self.dlp;
        let cell = |c: &Cell<String>| match c {
            Cell::Measured(v) => v.clone(),
            Cell::Unavailable(why) => why.clone(),
        };
        let on_warm = match &d.on_warm {
            Cell::Measured(l) => {
                Cell::Measured(format!("{:.0} req/s, p50 {:.3} ms", l.rps, l.p50_ms))
            }
            Cell::Unavailable(why) => Cell::Unavailable(why.clone()),
        };
        let on_upload = match &d.on_upload_mb_s {
            Cell::Measured(mb) => Cell::Measured(format!("{mb:.0} MB/s")),
            Cell::Unavailable(why) => Cell::Unavailable(why.clone()),
        };
        let _ = writeln!(
            s,
            "\n### Data-loss prevention off and on (bottle-egress)\n\n\
             | DLP | warm keep-alive, c=1 | {} MB upload |\n|---|---|---|\n\
             | off | {:.0} req/s, p50 {:.3} ms | {:.0} MB/s |\n\
             | on | {} | {} |",
            self.settings.transfer_mb,
            d.off_warm.rps,
            d.off_warm.p50_ms,
            d.off_upload_mb_s,
            cell(&on_warm),
            cell(&on_upload),
        );
    }

    /// This run's section of `docs/performance.md`.
    pub(crate) fn markdown(&self) -> String {
        let st = &self.settings;
        format!(
            "## The egress, side by side\n\n\
             One run of `cargo xtask bench egress`, started {started}: the same local HTTPS origin\n\
             (hyper + rustls, a test CA), the same clients, reached **directly**, through\n\
             **bottle-egress** (release build), **mitmdump** and **Squid with ssl-bump**, each\n\
             with the same allow rule, side by side, on loopback. The targets are ratios within\n\
             this run; absolute numbers on a small shared machine are noise, and the load\n\
             generator, the proxy and the origin share its cores.\n\n\
             ### Machine\n\n{machine}\n\
             ### Targets\n\n{targets}\n{details}\n\
             ### Method\n\n\
             - Origin: in the bench process, on `127.0.0.1` (`localhost`) and on extra loopback\n\
             \x20 addresses used as never-seen hosts; ALPN {alpn}; `GET /` answers {small} bytes,\n\
             \x20 `GET /bytes/N` streams N bytes, `POST /upload` counts the body, `/events/N/MS`\n\
             \x20 streams N server-sent events.\n\
             - bottle-egress: `bottle-egress run` (one thread, its default) with `log: blocks` (the\n\
             \x20 default: allowed requests are not logged), one route per host with\n\
             \x20 `allow_private: true`, the origin's CA under `trust`; its CA from `bottle-egress mint-ca`.\n\
             - mitmdump: `--quiet`, `stream_large_bodies=1m`, an addon refusing other hosts at\n\
             \x20 CONNECT and per request, `ssl_verify_upstream_trusted_ca` = the origin's CA.\n\
             - Squid: `squid -N` as user `proxy`; `http_port … ssl-bump` with bottle-egress's CA,\n\
             \x20 `ssl_bump bump all`, `sslcrtd_program security_file_certgen` with its own database,\n\
             \x20 `tls_outgoing_options cafile=` the origin's CA, ACLs allowing the same hosts, no cache,\n\
             \x20 no access log.\n\
             - HTTP/1.1 load: `oha -z {seconds}s -w --http-version 1.1` (`-w`: requests in flight at\n\
             \x20 the end are waited for), through a proxy with `-x`\n\
             \x20 (CONNECT); \"new connection per request\" adds `--disable-keepalive` (a CONNECT and a\n\
             \x20 full handshake each time). Each path gets one request before it is measured. Each\n\
             \x20 scenario runs {rounds} rounds, every path and relay once per round in turn; a path's\n\
             \x20 figures are those of its median round by req/s.\n\
             - HTTP/2: the bench's own hyper client, one connection offering only `h2`, {streams}\n\
             \x20 streams each sending its next request when its last response is read.\n\
             - First contact, idle tunnels, events: the bench's own rustls client, session\n\
             \x20 resumption off, so every connection pays a full handshake on every path. Never-seen\n\
             \x20 hosts are IP literals (`127.0.0.k`), since only `localhost` resolves here; through\n\
             \x20 Squid, names (`hk.bench.test`) from a hosts file of its own, because Squid's leaf\n\
             \x20 for an IP literal names it as a DNS name, which rustls refuses.\n\
             - Memory: `VmRSS` from `/proc/<pid>/status`, summed over the proxy and its descendants;\n\
             \x20 per tunnel = (with tunnels − idle) / count.\n\
             - Routes: {routes} routes, each table size its own bottle-egress process.\n",
            started = self.started,
            machine = self.machine.markdown(),
            targets = crate::verdict::table(&self.verdicts(), PROFILE_MEANS),
            details = self.details(),
            alpn = if st.origin_h2 {
                "`h2` and `http/1.1` (so a proxy may speak HTTP/2 upstream)"
            } else {
                "`http/1.1` only (`--origin-h1`)"
            },
            small = super::origin::SMALL_BODY.len(),
            seconds = st.seconds,
            rounds = st.rounds,
            streams = st.h2_streams,
            routes = st
                .route_counts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// The run with the median request rate (the lower middle one of an even count); `None` for
/// no runs.
pub(crate) fn median_run(mut runs: Vec<Load>) -> Option<Load> {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let middle = runs.len().checked_sub(1)? / 2;
    Some(runs.swap_remove(middle))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn load(rps: f64, p50_ms: f64, p99_ms: f64) -> Load {
        Load {
            rps,
            p50_ms,
            p99_ms,
            ok: 100,
            failed: 0,
        }
    }

    /// Phases of a request taking `total` ms: the tunnel a quarter, TLS half of it.
    fn ph_all(totals: &[f64]) -> Vec<Phases> {
        totals
            .iter()
            .map(|&t| Phases {
                tunnel_ms: t / 4.0,
                tls_ms: t / 2.0,
                total_ms: t,
            })
            .collect()
    }

    fn row(scenario: Scenario, scale: f64) -> LoadRow {
        LoadRow {
            scenario,
            paths: PerPath {
                direct: load(4000.0 * scale, 0.2, 0.5),
                egress: load(2500.0 * scale, 0.35, 0.9),
                mitmdump: load(200.0 * scale, 4.0, 9.0),
                squid: load(1000.0 * scale, 0.9, 2.0),
            },
            relays: Relays {
                blind: load(3200.0 * scale, 0.25, 0.6),
                tls: load(3000.0 * scale, 0.27, 0.65),
            },
        }
    }

    fn memory(idle_kib: u64, per_tunnel_kib: u64) -> Memory {
        Memory {
            idle_kib,
            tunnels_kib: idle_kib + per_tunnel_kib * 1000,
            tunnels: 1000,
        }
    }

    pub(crate) fn results() -> Results {
        Results {
            started: "2026-01-01 00:00 UTC".to_owned(),
            machine: Machine::fixture(("oha", "oha 1.16.0")),
            settings: Settings {
                seconds: 5,
                rounds: 3,
                hosts: 3,
                tunnels: 1000,
                h2_streams: 100,
                sse_events: 50,
                sse_every_ms: 20,
                transfer_mb: 50,
                route_counts: vec![10, 1000, 10_000],
                origin_h2: true,
            },
            load: Scenario::ALL
                .iter()
                .enumerate()
                .map(|(i, s)| row(*s, 1.0 + i as f64))
                .collect(),
            h2: PerPath {
                direct: Cell::Measured(load(30000.0, 3.0, 6.0)),
                egress: Cell::Measured(load(12000.0, 8.0, 15.0)),
                mitmdump: Cell::Measured(load(900.0, 100.0, 200.0)),
                squid: Cell::Unavailable("Squid speaks HTTP/1.1 only to clients".to_owned()),
            },
            download_mb_s: PerPath {
                direct: 1000.0,
                egress: 600.0,
                mitmdump: 80.0,
                squid: 300.0,
            },
            upload_mb_s: PerPath {
                direct: 900.0,
                egress: 500.0,
                mitmdump: 70.0,
                squid: 250.0,
            },
            sse: PerPath {
                direct: Sse {
                    p50_ms: 0.10,
                    p99_ms: 0.20,
                    events: 50,
                },
                egress: Sse {
                    p50_ms: 0.25,
                    p99_ms: 0.50,
                    events: 50,
                },
                mitmdump: Sse {
                    p50_ms: 2.0,
                    p99_ms: 5.0,
                    events: 50,
                },
                squid: Sse {
                    p50_ms: 0.6,
                    p99_ms: 1.5,
                    events: 50,
                },
            },
            first: PerPath {
                direct: FirstContact {
                    first: ph_all(&[1.0, 1.2, 1.1]),
                    again: ph_all(&[1.0, 1.1, 1.0]),
                },
                egress: FirstContact {
                    first: ph_all(&[2.0, 2.4, 2.2]),
                    again: ph_all(&[1.8, 1.9, 2.0]),
                },
                mitmdump: FirstContact {
                    first: ph_all(&[30.0, 31.0, 32.0]),
                    again: ph_all(&[20.0, 21.0, 22.0]),
                },
                squid: FirstContact {
                    first: ph_all(&[5.0, 6.0, 7.0]),
                    again: ph_all(&[3.0, 3.5, 4.0]),
                },
            },
            memory: Proxies {
                egress: memory(8192, 40),
                mitmdump: memory(80_000, 300),
                squid: memory(30_000, 90),
            },
            routes: vec![
                RoutesRow {
                    routes: 10,
                    warm: load(2500.0, 0.35, 0.9),
                    new_connection: load(400.0, 2.4, 5.0),
                },
                RoutesRow {
                    routes: 10_000,
                    warm: load(2000.0, 0.45, 1.0),
                    new_connection: load(390.0, 2.5, 5.1),
                },
            ],
            dlp: Dlp {
                off_warm: load(2500.0, 0.35, 0.9),
                off_upload_mb_s: 500.0,
                on_warm: Cell::Unavailable("not available in this build".to_owned()),
                on_upload_mb_s: Cell::Unavailable("not available in this build".to_owned()),
            },
        }
    }

    #[test]
    fn every_target_is_judged_with_its_margin() {
        let v = results().verdicts();
        let judged: Vec<(&str, bool)> = v.iter().map(|v| (v.target.as_str(), v.pass)).collect();
        // 4 per load scenario, then first contact, SSE, memory and the two route rows.
        assert_eq!(judged.len(), 4 * Scenario::ALL.len() + 5, "{judged:#?}");
        let c1: Vec<bool> = v[..4].iter().map(|v| v.pass).collect();
        // 2.5× Squid, p99 0.9 < 2.0, 12.5× mitmdump, 83% of the TLS relay.
        assert_eq!(c1, [true, true, true, false], "{:#?}", &v[..4]);
        assert_eq!(v[3].margin, "short by 1.67%");
        let tail: Vec<(&str, bool)> = judged[judged.len() - 5..].to_vec();
        assert_eq!(
            tail,
            [
                (
                    "first request to a never-seen host: ≤ 1 ms over direct",
                    false
                ),
                ("server-sent events: ≤ 1 ms added per event", true),
                ("memory: ≤ 64 KiB per idle tunnel", true),
                (
                    "10000 routes, warm: ≥ 90% of the req/s with 10 (flat lookup)",
                    false
                ),
                (
                    "10000 routes, new connection: ≥ 90% of the req/s with 10 (flat lookup)",
                    true
                ),
            ]
        );
        assert!((results().first_contact_overhead_ms() - 1.1).abs() < 1e-9);
    }

    #[test]
    fn the_median_run_is_reported() {
        let runs = vec![
            load(300.0, 1.0, 2.0),
            load(100.0, 3.0, 4.0),
            load(200.0, 2.0, 3.0),
        ];
        assert_eq!(median_run(runs), Some(load(200.0, 2.0, 3.0)));
        let even = vec![load(300.0, 1.0, 2.0), load(100.0, 3.0, 4.0)];
        assert_eq!(median_run(even), Some(load(100.0, 3.0, 4.0)));
        assert_eq!(median_run(Vec::new()), None);
    }

    #[test]
    fn a_p99_above_either_peer_fails() {
        let mut r = results();
        r.load[0].paths.mitmdump = load(100.0, 0.4, 0.8);
        let v = r.verdicts();
        assert!(!v[1].pass, "{:?}", v[1]);
        assert_eq!(v[1].margin, "over by 0.10 ms");
    }

    #[test]
    fn the_results_survive_json() {
        let r = results();
        let json = serde_json::to_string(&r).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_section_has_the_machine_the_targets_and_every_figure() {
        insta::assert_snapshot!(results().markdown());
    }
}
