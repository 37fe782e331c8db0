// Owned by the benchmark work; the egress engineer does not edit this file.
//! The two proxies under test, as child processes: `bottle-egress` (release build) and
//! `mitmdump`, configured with the same allow rule; and the reference TCP relay. Each is held by a [`Proc`] that kills it
//! when dropped, so every exit path — success, error, panic, Ctrl-C — stops what was started.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process that is killed and reaped when this is dropped.
pub(crate) struct Proc {
    name: &'static str,
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, stderr: PathBuf) -> Result<Proc> {
        let log = std::fs::File::create(&stderr)
            .with_context(|| format!("creating {}", stderr.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name,
            child,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the process's own last words if it has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} exited ({status}); its last output:\n{}",
                self.name,
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// The resident set size now, in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&mut self) -> Result<u64> {
        self.check_alive()?;
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        vm_rss_kib(&status).with_context(|| format!("no VmRSS line in {path}"))
    }

    /// Waits until the process accepts TCP connections on `addr` (and is still running).
    pub(crate) async fn wait_listening(&mut self, addr: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} does not listen on {addr} after 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A free loopback port (there is a small race until the proxy binds it; fine for a bench).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The hosts both proxies allow: `localhost` and each first-contact IP literal, all of them
/// loopback addresses, hence `allow_private` (mitmdump has no such check to mirror), on the
/// origin's port. bottle-egress reaches loopback only for an address a route names, so
/// `localhost` is given its address with `resolve` (a name resolved by DNS never reaches it).
pub(crate) struct Rule<'a> {
    pub(crate) extra: &'a [IpAddr],
    /// The origin's port.
    pub(crate) port: u16,
}

impl Rule<'_> {
    fn hosts(&self) -> Vec<String> {
        let mut hosts = vec!["localhost".to_owned()];
        hosts.extend(self.extra.iter().map(ToString::to_string));
        hosts
    }

    /// The bottle-egress config. `log: blocks` is the default mode: allowed requests are not
    /// logged, as with `mitmdump -q`.
    pub(crate) fn egress_yaml(&self, port: u16, ca_dir: &Path, origin_ca: &Path) -> String {
        let mut yaml = format!(
            "listen: 127.0.0.1:{port}\nca: {{cert: {}, key: {}}}\nlog: blocks\ntrust: [{}]\n\
             resolve: {{localhost: [127.0.0.1]}}\nroutes:\n",
            ca_dir.join("ca.crt").display(),
            ca_dir.join("ca.key").display(),
            origin_ca.display(),
        );
        for host in self.hosts() {
            let _ = writeln!(
                yaml,
                "  - host: \"{host}\"\n    ports: [{}]\n    allow_private: true",
                self.port
            );
        }
        yaml
    }

    /// The mitmdump addon with the same rule: a CONNECT to any other host gets a 403 before
    /// TLS, and so does a request for another host inside a tunnel.
    pub(crate) fn mitm_addon(&self) -> String {
        let hosts: Vec<String> = self.hosts().iter().map(|h| format!("{h:?}")).collect();
        format!(
            "from mitmproxy import http\n\
             \n\
             ALLOWED = {{{}}}\n\
             \n\
             \n\
             def http_connect(flow: http.HTTPFlow) -> None:\n\
             \x20   if flow.request.host not in ALLOWED:\n\
             \x20       flow.response = http.Response.make(403, b\"denied\\n\")\n\
             \n\
             \n\
             def request(flow: http.HTTPFlow) -> None:\n\
             \x20   if flow.request.pretty_host not in ALLOWED:\n\
             \x20       flow.response = http.Response.make(403, b\"denied\\n\")\n",
            hosts.join(", ")
        )
    }
}

/// Writes a fresh interception CA with the egress's own `mint-ca`.
pub(crate) fn mint_egress_ca(egress_bin: &Path, dir: &Path) -> Result<()> {
    let out = Command::new(egress_bin)
        .args(["mint-ca", "--out"])
        .arg(dir)
        .output()
        .with_context(|| format!("running {} mint-ca", egress_bin.display()))?;
    if !out.status.success() {
        bail!(
            "bottle-egress mint-ca failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) async fn start_egress(
    egress_bin: &Path,
    config: &Path,
    work: &Path,
    port: u16,
) -> Result<Proc> {
    let mut cmd = Command::new(egress_bin);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("BOTTLE_EGRESS_LOG", "warn");
    let mut proc = Proc::spawn("bottle-egress", cmd, work.join("egress.stderr"))?;
    proc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    Ok(proc)
}

/// TLS material for the TLS relay: its chain and key (PEM) and the CA to verify the origin.
pub(crate) struct RelayTls<'a> {
    pub(crate) cert: &'a Path,
    pub(crate) key: &'a Path,
    pub(crate) ca: &'a Path,
}

/// Starts a reference relay (`xtask bench relay`, see `relay.rs`) from our own executable:
/// blind, or terminating and re-encrypting TLS with `tls`.
pub(crate) async fn start_relay(
    name: &'static str,
    work: &Path,
    port: u16,
    origin_port: u16,
    tls: Option<RelayTls<'_>>,
) -> Result<Proc> {
    let mut cmd = Command::new(std::env::current_exe().context("finding our own executable")?);
    cmd.args([
        "bench",
        "relay",
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{origin_port}"),
    ]);
    if let Some(tls) = tls {
        cmd.arg("--tls").arg(tls.cert).arg(tls.key).arg(tls.ca);
    }
    let stderr = work.join(format!("{}.stderr", name.replace(' ', "-")));
    let mut proc = Proc::spawn(name, cmd, stderr)?;
    proc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    Ok(proc)
}

/// Starts mitmdump; returns it and the path of the CA certificate it created in `confdir`.
pub(crate) async fn start_mitmdump(
    addon: &Path,
    confdir: &Path,
    origin_ca: &Path,
    work: &Path,
    port: u16,
) -> Result<(Proc, PathBuf)> {
    let mut cmd = Command::new("mitmdump");
    cmd.args([
        "--quiet",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        &port.to_string(),
    ])
    .arg("--set")
    .arg(format!("confdir={}", confdir.display()))
    .arg("--set")
    .arg(format!(
        "ssl_verify_upstream_trusted_ca={}",
        origin_ca.display()
    ))
    // Stream large bodies instead of buffering them whole, as bottle-egress does.
    .args(["--set", "stream_large_bodies=1m", "--set", "flow_detail=0"])
    .args(["--set", "termlog_verbosity=error"])
    .arg("-s")
    .arg(addon);
    let mut proc = Proc::spawn("mitmdump", cmd, work.join("mitmdump.stderr"))?;
    proc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    let ca = confdir.join("mitmproxy-ca-cert.pem");
    if !ca.exists() {
        bail!("mitmdump did not write its CA to {}", ca.display());
    }
    Ok((proc, ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status =
            "Name:\tbottle-egress\nVmPeak:\t  20000 kB\nVmRSS:\t    8123 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(8123));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn both_proxies_get_the_same_hosts() {
        let extra = ["127.0.0.2".parse().unwrap()];
        let rule = Rule {
            extra: &extra,
            port: 8443,
        };
        let yaml = rule.egress_yaml(9099, Path::new("/w/ca"), Path::new("/w/origin-ca.pem"));
        insta::assert_snapshot!(yaml, @r#"
        listen: 127.0.0.1:9099
        ca: {cert: /w/ca/ca.crt, key: /w/ca/ca.key}
        log: blocks
        trust: [/w/origin-ca.pem]
        resolve: {localhost: [127.0.0.1]}
        routes:
          - host: "localhost"
            ports: [8443]
            allow_private: true
          - host: "127.0.0.2"
            ports: [8443]
            allow_private: true
        "#);
        assert!(
            rule.mitm_addon()
                .contains(r#"ALLOWED = {"localhost", "127.0.0.2"}"#)
        );
    }
}
