// Owned by the benchmark work; the egress engineer does not edit this file.
//! The figures of one run, the targets judged on them (as ratios within the run), and the
//! markdown written to `docs/performance.md`.

use std::fmt::Write as _;

use super::client::Load;

/// The three paths, in table order.
pub(crate) const PATHS: [&str; 3] = ["direct", "bottle-egress", "mitmdump"];
const DIRECT: usize = 0;
const EGRESS: usize = 1;
const MITM: usize = 2;

/// The reference relays (`relay.rs`), in table order.
pub(crate) const RELAYS: [&str; 2] = ["blind relay", "TLS relay"];

/// Load scenarios, in table order; the first two are the warm ones the targets use.
pub(crate) const WARM_C1: &str = "warm keep-alive, c=1";
pub(crate) const WARM_C32: &str = "warm keep-alive, c=32";
pub(crate) const NEW_CONN: &str = "new connection per request, c=1";

/// When each phase of one request on a new connection was done, in ms from the first SYN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Phases {
    /// TCP connected (direct), or TCP and `CONNECT` answered `200` (proxied).
    pub(crate) tunnel_ms: f64,
    /// The TLS handshake with the origin or the proxy done.
    pub(crate) tls_ms: f64,
    /// The last body byte received.
    pub(crate) total_ms: f64,
}

/// First requests over fresh hosts.
#[derive(Debug, Clone, PartialEq)]
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

/// A proxy's resident memory.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// Everything one run measured; indexes follow [`PATHS`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Results {
    pub(crate) seconds: u64,
    /// Rounds of each load scenario; the figures are each path's median round.
    pub(crate) rounds: u32,
    /// Whether the origin offered HTTP/2 (besides HTTP/1.1) by ALPN.
    pub(crate) origin_h2: bool,
    pub(crate) load: Vec<(&'static str, [Load; 3])>,
    /// The warm scenarios through the reference relays (`relay.rs`): (scenario, relay, load).
    pub(crate) reference: Vec<(&'static str, &'static str, Load)>,
    pub(crate) download_mb_s: [f64; 3],
    pub(crate) download_mb: u64,
    pub(crate) first: [FirstContact; 3],
    /// bottle-egress and mitmdump (direct has no proxy process).
    pub(crate) memory: [Memory; 2],
}

/// One target and whether this run met it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) pass: bool,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The run with the median request rate (the lower middle one of an even count); `None` for
/// no runs.
pub(crate) fn median_run(mut runs: Vec<Load>) -> Option<Load> {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let middle = runs.len().checked_sub(1)? / 2;
    Some(runs.swap_remove(middle))
}

impl Results {
    fn row(&self, label: &str) -> Option<&[Load; 3]> {
        self.load.iter().find(|(l, _)| *l == label).map(|(_, r)| r)
    }

    /// First-contact overhead of bottle-egress: its first request to a never-seen host minus
    /// the direct first request to a never-seen host (medians).
    pub(crate) fn first_contact_overhead_ms(&self) -> f64 {
        self.first[EGRESS].first_ms() - self.first[DIRECT].first_ms()
    }

    fn relay(&self, label: &str, relay: &str) -> Option<&Load> {
        self.reference
            .iter()
            .find(|(l, r, _)| *l == label && *r == relay)
            .map(|(_, _, load)| load)
    }

    pub(crate) fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for label in [WARM_C1, WARM_C32] {
            let Some(r) = self.row(label) else { continue };
            let share = r[EGRESS].rps / r[DIRECT].rps;
            let relays: Vec<String> = RELAYS
                .iter()
                .filter_map(|name| {
                    let relay = self.relay(label, name)?;
                    Some(format!("{name} {:.0}%", relay.rps / r[DIRECT].rps * 100.0))
                })
                .collect();
            let relay = if relays.is_empty() {
                String::new()
            } else {
                format!("; {}", relays.join(", "))
            };
            out.push(Verdict {
                target: format!("{label}: bottle-egress ≥ 50% of direct req/s"),
                measured: format!(
                    "{:.0}% ({:.0} vs {:.0} req/s; p50 +{:.0} µs{relay})",
                    share * 100.0,
                    r[EGRESS].rps,
                    r[DIRECT].rps,
                    (r[EGRESS].p50_ms - r[DIRECT].p50_ms) * 1000.0
                ),
                pass: share >= 0.5,
            });
            let times = r[EGRESS].rps / r[MITM].rps;
            out.push(Verdict {
                target: format!("{label}: bottle-egress ≥ 10× mitmdump req/s, lower p99"),
                measured: format!(
                    "{times:.1}×; p99 {:.2} vs {:.2} ms",
                    r[EGRESS].p99_ms, r[MITM].p99_ms
                ),
                pass: times >= 10.0 && r[EGRESS].p99_ms < r[MITM].p99_ms,
            });
        }
        let overhead = self.first_contact_overhead_ms();
        out.push(Verdict {
            target: "first request to a never-seen host: overhead vs direct < 1 ms".to_owned(),
            measured: format!(
                "{overhead:.2} ms ({:.2} vs {:.2} ms, medians)",
                self.first[EGRESS].first_ms(),
                self.first[DIRECT].first_ms()
            ),
            pass: overhead < 1.0,
        });
        let m = self.memory[0];
        out.push(Verdict {
            target: "memory: < 64 KiB per idle tunnel".to_owned(),
            measured: format!("{:.1} KiB", m.per_tunnel_kib()),
            pass: m.per_tunnel_kib() < 64.0,
        });
        out
    }

    /// The targets table, for the terminal and the document.
    pub(crate) fn targets_table(&self) -> String {
        let mut s = String::from("| target | measured | result |\n|---|---|---|\n");
        for v in self.verdicts() {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                v.target,
                v.measured,
                if v.pass { "PASS" } else { "**FAIL**" }
            );
        }
        s
    }

    /// The detail tables.
    pub(crate) fn details(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "### Requests (oha, `GET /`, HTTP/1.1; the median of {} interleaved rounds of {} s)\n\n| scenario | path | req/s | p50 ms | p99 ms | ok | failed |\n|---|---|---:|---:|---:|---:|---:|",
            self.rounds, self.seconds
        );
        for (label, row) in &self.load {
            for (name, l) in PATHS.iter().zip(row) {
                let _ = writeln!(
                    s,
                    "| {label} | {name} | {:.0} | {:.3} | {:.3} | {} | {} |",
                    l.rps, l.p50_ms, l.p99_ms, l.ok, l.failed
                );
            }
        }
        if !self.reference.is_empty() {
            let _ = writeln!(
                s,
                "\n#### Reference: relays that do less than any intercepting proxy\n\n\
                 The same warm scenarios through two more processes of the bench\n\
                 (`xtask bench relay`, single-threaded like bottle-egress), each one more\n\
                 loopback hop: the **blind relay** copies bytes (no TLS, no HTTP); the **TLS\n\
                 relay** terminates the client's TLS and re-encrypts to the origin (verified),\n\
                 one upstream connection per client connection, and does nothing else. The load\n\
                 generator, the origin and the hop share the machine's cores, so the blind relay's\n\
                 share of direct is the most any hop reaches here, and the TLS relay's what the\n\
                 least interception work leaves.\n\n\
                 | scenario | relay | req/s | p50 ms | p99 ms | share of direct | bottle-egress, share of it |\n\
                 |---|---|---:|---:|---:|---:|---:|"
            );
            for (label, name, relay) in &self.reference {
                let Some(r) = self.row(label) else { continue };
                let _ = writeln!(
                    s,
                    "| {label} | {name} | {:.0} | {:.3} | {:.3} | {:.0}% | {:.0}% |",
                    relay.rps,
                    relay.p50_ms,
                    relay.p99_ms,
                    relay.rps / r[DIRECT].rps * 100.0,
                    r[EGRESS].rps / relay.rps * 100.0
                );
            }
        }
        let _ = writeln!(
            s,
            "\n### {} MB download (curl, HTTP/1.1, best of 3)\n\n| path | MB/s | share of direct |\n|---|---:|---:|",
            self.download_mb
        );
        for (name, mb) in PATHS.iter().zip(self.download_mb_s) {
            let _ = writeln!(
                s,
                "| {name} | {mb:.0} | {:.0}% |",
                mb / self.download_mb_s[DIRECT] * 100.0
            );
        }
        let _ = writeln!(
            s,
            "\n### First request to a never-seen host ({} hosts per path)\n\n\
             One `GET /` on a new connection to a host this path has never reached (\"first\"), then\n\
             the same host once more on another new connection (\"again\"). Milliseconds from the\n\
             first SYN until: the tunnel stood (TCP, plus the proxy's `200` to `CONNECT`;\n\
             bottle-egress mints the leaf and dials the origin after it, during the client's\n\
             handshake), the TLS handshake was done, the response was read. Medians; the mean\n\
             of the first response is given too.\n\n\
             | path | first: tunnel | first: TLS | first: response | first: response, mean | again: tunnel | again: TLS | again: response | first − direct first |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|",
            self.first[DIRECT].first.len()
        );
        let direct_first = self.first[DIRECT].first_ms();
        for (name, f) in PATHS.iter().zip(&self.first) {
            let m = FirstContact::median;
            let first_mean =
                f.first.iter().map(|p| p.total_ms).sum::<f64>() / f.first.len().max(1) as f64;
            let _ = writeln!(
                s,
                "| {name} | {:.2} | {:.2} | {:.2} | {first_mean:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                m(&f.first, |p| p.tunnel_ms),
                m(&f.first, |p| p.tls_ms),
                f.first_ms(),
                m(&f.again, |p| p.tunnel_ms),
                m(&f.again, |p| p.tls_ms),
                m(&f.again, |p| p.total_ms),
                f.first_ms() - direct_first,
            );
        }
        let _ = writeln!(
            s,
            "\n### Memory (VmRSS of the proxy process)\n\n\
             Idle: after start-up and one request. Then {} tunnels are opened and held: each a\n\
             CONNECT and a completed TLS handshake with the proxy, no request yet.\n\n\
             | proxy | idle MiB | with {} idle tunnels MiB | KiB per idle tunnel |\n|---|---:|---:|---:|",
            self.memory[0].tunnels, self.memory[0].tunnels
        );
        for (name, m) in PATHS[1..].iter().zip(&self.memory) {
            let _ = writeln!(
                s,
                "| {name} | {:.1} | {:.1} | {:.1} |",
                m.idle_kib as f64 / 1024.0,
                m.tunnels_kib as f64 / 1024.0,
                m.per_tunnel_kib()
            );
        }
        s
    }

    /// The whole `docs/performance.md`.
    pub(crate) fn document(&self, machine: &str, started: &str) -> String {
        format!(
            "# bottle-egress performance\n\n\
             <!-- Written by `cargo xtask bench egress`; edit xtask/src/bench/, not this file. -->\n\n\
             One run of `cargo xtask bench egress`, started {started}: the same local HTTPS origin\n\
             (hyper + rustls, a test CA), the same clients, reached **directly**, through\n\
             **bottle-egress** (release build) and through **mitmdump** with the same allow rule,\n\
             side by side, on loopback. The targets are ratios within this run; absolute numbers on\n\
             a small shared machine are noise, and the load generator, the proxy and the origin\n\
             share its cores.\n\n\
             ## Machine\n\n{machine}\n\
             ## Targets\n\n{}\n\
             ## Measurements\n\n{}\n\
             ## Method\n\n\
             - Origin: in the bench process, on `127.0.0.1` (`localhost`) and on extra loopback\n\
             \x20 addresses used as never-seen hosts; ALPN {}; `GET /` answers {} bytes,\n\
             \x20 `GET /bytes/N` streams N bytes.\n\
             - bottle-egress: `bottle-egress run` with `log: blocks` (the default: allowed requests\n\
             \x20 are not logged), one route per host with `allow_private: true`, the origin's CA under\n\
             \x20 `trust`; its CA from `bottle-egress mint-ca`.\n\
             - mitmdump: `--quiet`, `stream_large_bodies=1m`, an addon refusing other hosts at\n\
             \x20 CONNECT and per request, `ssl_verify_upstream_trusted_ca` = the origin's CA.\n\
             - Load: `oha -z {}s --http-version 1.1`, through a proxy with `-x` (CONNECT);\n\
             \x20 \"new connection per request\" adds `--disable-keepalive` (a CONNECT and a full\n\
             \x20 handshake each time). Each path gets one request before it is measured. Each\n\
             \x20 scenario runs {} rounds, every path once per round in turn; a path's figures are\n\
             \x20 those of its median round by req/s.\n\
             - Reference: the warm scenarios once more through a blind relay and a TLS relay to\n\
             \x20 the origin (processes of their own, like the proxies), to show what one extra hop,\n\
             \x20 and one that only re-encrypts, cost here.\n\
             - First contact and idle tunnels: the bench's own rustls client, session resumption\n\
             \x20 off, so every connection pays a full handshake on every path. Hosts are IP\n\
             \x20 literals (`127.0.0.k`): the standalone proxy resolves names itself, and\n\
             \x20 only `localhost` resolves here.\n\
             - Memory: `VmRSS` from `/proc/<pid>/status`; per tunnel = (with tunnels − idle) / count.\n",
            self.targets_table(),
            self.details(),
            if self.origin_h2 {
                "`h2` and `http/1.1` (so a proxy may speak HTTP/2 upstream)"
            } else {
                "`http/1.1` only (`--origin-h1`)"
            },
            super::origin::SMALL_BODY.len(),
            self.seconds,
            self.rounds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rps: f64, p50_ms: f64, p99_ms: f64) -> Load {
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

    fn results() -> Results {
        Results {
            seconds: 5,
            rounds: 3,
            origin_h2: true,
            load: vec![
                (
                    WARM_C1,
                    [
                        load(4000.0, 0.2, 0.5),
                        load(2500.0, 0.35, 0.9),
                        load(200.0, 4.0, 9.0),
                    ],
                ),
                (
                    WARM_C32,
                    [
                        load(20000.0, 1.5, 3.0),
                        load(9000.0, 3.0, 7.0),
                        load(900.0, 30.0, 80.0),
                    ],
                ),
                (
                    NEW_CONN,
                    [
                        load(900.0, 1.0, 2.0),
                        load(400.0, 2.4, 5.0),
                        load(50.0, 19.0, 40.0),
                    ],
                ),
            ],
            reference: vec![
                (WARM_C1, RELAYS[0], load(3200.0, 0.25, 0.6)),
                (WARM_C1, RELAYS[1], load(3000.0, 0.27, 0.65)),
                (WARM_C32, RELAYS[0], load(11000.0, 2.5, 5.0)),
                (WARM_C32, RELAYS[1], load(9600.0, 2.9, 5.5)),
            ],
            download_mb_s: [1000.0, 600.0, 80.0],
            download_mb: 50,
            first: [
                FirstContact {
                    first: ph_all(&[1.0, 1.2, 1.1]),
                    again: ph_all(&[1.0, 1.1, 1.0]),
                },
                FirstContact {
                    first: ph_all(&[2.0, 2.4, 2.2]),
                    again: ph_all(&[1.8, 1.9, 2.0]),
                },
                FirstContact {
                    first: ph_all(&[30.0, 31.0, 32.0]),
                    again: ph_all(&[20.0, 21.0, 22.0]),
                },
            ],
            memory: [
                Memory {
                    idle_kib: 8192,
                    tunnels_kib: 8192 + 40_000,
                    tunnels: 1000,
                },
                Memory {
                    idle_kib: 80_000,
                    tunnels_kib: 80_000 + 300_000,
                    tunnels: 1000,
                },
            ],
        }
    }

    #[test]
    fn targets_are_ratios_within_the_run() {
        let v = results().verdicts();
        let passed: Vec<(&str, bool)> = v.iter().map(|v| (v.target.as_str(), v.pass)).collect();
        assert_eq!(
            passed,
            [
                (
                    "warm keep-alive, c=1: bottle-egress ≥ 50% of direct req/s",
                    true
                ),
                (
                    "warm keep-alive, c=1: bottle-egress ≥ 10× mitmdump req/s, lower p99",
                    true
                ),
                (
                    "warm keep-alive, c=32: bottle-egress ≥ 50% of direct req/s",
                    false
                ),
                (
                    "warm keep-alive, c=32: bottle-egress ≥ 10× mitmdump req/s, lower p99",
                    true
                ),
                (
                    "first request to a never-seen host: overhead vs direct < 1 ms",
                    false
                ),
                ("memory: < 64 KiB per idle tunnel", true),
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
    fn a_lower_rate_than_ten_times_or_a_higher_p99_fails() {
        let mut r = results();
        r.load[0].1[MITM] = load(300.0, 0.4, 0.8);
        let v = r.verdicts();
        assert!(!v[1].pass, "{:?}", v[1]);
        assert_eq!(v[1].measured, "8.3×; p99 0.90 vs 0.80 ms");
    }

    #[test]
    fn the_document_has_the_machine_the_targets_and_every_figure() {
        insta::assert_snapshot!(results().document("- CPU: test\n", "2026-01-01 00:00 UTC"));
    }
}
