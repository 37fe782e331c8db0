//! The proxies under test, as child processes configured with the same allow rule:
//! `bottle-egress` (release build), `mitmdump` and Squid with ssl-bump; and the reference
//! relays. Each is held by a [`Proc`], which kills it when dropped.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::Proc;

/// The hosts every proxy allows: `localhost` and each first-contact IP literal, all of them
/// loopback addresses, hence `allow_private` (mitmdump and Squid have no such check to mirror),
/// on the origin's port. bottle-egress reaches loopback only for an address a route names, so
/// `localhost` is given its address with `resolve` (a name resolved by DNS never reaches it).
pub(crate) struct Rule<'a> {
    pub(crate) extra: &'a [IpAddr],
    /// The origin's port.
    pub(crate) port: u16,
    /// Routes for hosts nobody asks for, listed before the real ones, so that a request's
    /// lookup runs against a table of this size (bottle-egress only: the route-count rows).
    /// They keep DLP's default (on, one scanner shared by all): a `dlp: off` line on each
    /// would count YAML parsing (about 10 000 instructions a route), not the proxy.
    pub(crate) filler: usize,
    /// DLP on the real routes (bottle-egress's default); `false` writes `dlp: off`, so that
    /// every other row measures the proxy without it.
    pub(crate) dlp: bool,
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
        for i in 0..self.filler {
            let _ = writeln!(yaml, "  - host: \"h{i}.filler.test\"");
        }
        for host in self.hosts() {
            let _ = writeln!(
                yaml,
                "  - host: \"{host}\"\n    ports: [{}]\n    allow_private: true",
                self.port
            );
            if !self.dlp {
                yaml.push_str("    dlp: off\n");
            }
        }
        yaml
    }

    /// The Squid configuration: ssl-bump on every allowed `CONNECT`, leaves minted by its
    /// certificate helper with its own database under `dir`, the origin verified against
    /// `origin_ca`, no cache, no access log, a refusal for every other host.
    /// Never-seen hosts are reached by name through Squid (see [`origin::host_name`]), resolved
    /// from its own `hosts_file`.
    ///
    /// [`origin::host_name`]: super::origin::host_name
    pub(crate) fn squid_conf(&self, port: u16, dir: &Path, ca: &Path, origin_ca: &Path) -> String {
        format!(
            "# Written by `cargo xtask bench egress`.\n\
             http_port 127.0.0.1:{port} ssl-bump cert={ca} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB\n\
             sslcrtd_program /usr/lib/squid/security_file_certgen -s {db} -M 16MB\n\
             sslcrtd_children 4 startup=1 idle=1\n\
             tls_outgoing_options cafile={origin_ca}\n\
             hosts_file {dir}/hosts\n\
             acl allowed_hosts dstdomain localhost .bench.test\n\
             acl allowed_ips dst {ips}\n\
             acl CONNECT method CONNECT\n\
             http_access allow allowed_hosts\n\
             http_access allow allowed_ips\n\
             http_access deny all\n\
             ssl_bump bump all\n\
             cache deny all\n\
             cache_mem 0 MB\n\
             access_log none\n\
             cache_store_log none\n\
             cache_log {dir}/cache.log\n\
             pid_filename {dir}/squid.pid\n\
             coredump_dir {dir}\n\
             forwarded_for delete\n\
             via off\n\
             shutdown_lifetime 0 seconds\n\
             max_filedescriptors 65536\n",
            ca = ca.display(),
            db = dir.join("ssl_db").display(),
            origin_ca = origin_ca.display(),
            ips = {
                let mut ips = vec!["127.0.0.1".to_owned()];
                ips.extend(self.extra.iter().map(ToString::to_string));
                ips.join(" ")
            },
            dir = dir.display(),
        )
    }

    /// Squid's hosts file: `localhost` and the name of each never-seen host.
    pub(crate) fn squid_hosts(&self) -> String {
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for ip in self.extra {
            let _ = writeln!(hosts, "{ip} {}", super::origin::host_name(*ip));
        }
        hosts
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
        .env("BOTTLE_EGRESS_LOG", "warn")
        // The known secret of the DLP row's config (`known_secrets`).
        .env(super::DLP_SECRET_VAR, "bench-dlp-secret-3f9a1c7e5b2d");
    let name = config
        .file_stem()
        .map_or("egress".into(), |s| s.to_string_lossy());
    let mut proc = Proc::spawn("bottle-egress", cmd, work.join(format!("{name}.stderr")))?;
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

/// Starts a reference relay (`xtask-bench bench relay`, see `relay.rs`) from our own executable:
/// blind, or terminating and re-encrypting TLS with `tls`.
pub(crate) async fn start_relay(
    name: &str,
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

/// The user Squid runs as: Debian's `proxy`, never root.
const SQUID_USER: &str = "proxy";

/// Starts Squid (`squid -N`, in the foreground) as the unprivileged [`SQUID_USER`], with the
/// interception CA in `ca_cert`/`ca_key` (copied into its own directory, readable by it alone).
pub(crate) async fn start_squid(
    rule: &Rule<'_>,
    dir: &Path,
    ca_cert: &Path,
    ca_key: &Path,
    origin_ca: &Path,
    port: u16,
) -> Result<Proc> {
    use std::os::unix::process::CommandExt as _;
    let (uid, gid) = user_ids(SQUID_USER)?;
    std::fs::create_dir_all(dir)?;
    // Squid wants the certificate and its key in one PEM file.
    let ca = dir.join("squid-ca.pem");
    std::fs::write(
        &ca,
        format!(
            "{}{}",
            std::fs::read_to_string(ca_cert)?,
            std::fs::read_to_string(ca_key)?
        ),
    )?;
    let origin = dir.join("origin-ca.pem");
    std::fs::copy(origin_ca, &origin)?;
    let conf = dir.join("squid.conf");
    std::fs::write(&conf, rule.squid_conf(port, dir, &ca, &origin))?;
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, rule.squid_hosts())?;
    let chown = |path: &Path| {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("giving {} to {SQUID_USER}", path.display()))
    };
    for path in [dir, &ca, &origin, &conf, &hosts] {
        chown(path)?;
    }
    // The helper's certificate database must be created (by the same user) before Squid runs.
    let out = Command::new(SQUID_CERTGEN)
        .args(["-c", "-s"])
        .arg(dir.join("ssl_db"))
        .args(["-M", "16MB"])
        .uid(uid)
        .gid(gid)
        .output()
        .with_context(|| format!("running {SQUID_CERTGEN}"))?;
    if !out.status.success() {
        bail!(
            "{SQUID_CERTGEN} -c failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut cmd = Command::new("squid");
    cmd.args(["-N", "-f"]).arg(&conf).uid(uid).gid(gid);
    let mut proc = Proc::spawn("squid", cmd, dir.join("squid.stderr"))?;
    proc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| {
            let log = std::fs::read_to_string(dir.join("cache.log")).unwrap_or_default();
            e.context(format!("Squid's cache.log:\n{log}"))
        })?;
    Ok(proc)
}

const SQUID_CERTGEN: &str = "/usr/lib/squid/security_file_certgen";

/// The uid and gid of `user`, from `id`.
fn user_ids(user: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        crate::util::first_line("id", &[flag, user])
            .and_then(|n| n.parse().ok())
            .with_context(|| {
                format!("no user `{user}` to run Squid as; install Squid with `apt-get install squid-openssl`")
            })
    };
    Ok((id("-u")?, id("-g")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_proxies_get_the_same_hosts() {
        let extra = ["127.0.0.2".parse().unwrap()];
        let rule = Rule {
            extra: &extra,
            port: 8443,
            filler: 2,
            dlp: false,
        };
        let yaml = rule.egress_yaml(9099, Path::new("/w/ca"), Path::new("/w/origin-ca.pem"));
        insta::assert_snapshot!(yaml, @r#"
        listen: 127.0.0.1:9099
        ca: {cert: /w/ca/ca.crt, key: /w/ca/ca.key}
        log: blocks
        trust: [/w/origin-ca.pem]
        resolve: {localhost: [127.0.0.1]}
        routes:
          - host: "h0.filler.test"
          - host: "h1.filler.test"
          - host: "localhost"
            ports: [8443]
            allow_private: true
            dlp: off
          - host: "127.0.0.2"
            ports: [8443]
            allow_private: true
            dlp: off
        "#);
        assert!(
            rule.mitm_addon()
                .contains(r#"ALLOWED = {"localhost", "127.0.0.2"}"#)
        );
        let squid = rule.squid_conf(
            3128,
            Path::new("/w/squid"),
            Path::new("/w/squid/ca.pem"),
            Path::new("/w/squid/origin.pem"),
        );
        assert!(
            squid.contains("acl allowed_hosts dstdomain localhost .bench.test\n"),
            "{squid}"
        );
        assert!(
            squid.contains("acl allowed_ips dst 127.0.0.1 127.0.0.2\n"),
            "{squid}"
        );
        assert!(
            squid.contains("http_port 127.0.0.1:3128 ssl-bump cert=/w/squid/ca.pem"),
            "{squid}"
        );
        assert!(squid.contains("\nhttp_access deny all\n"), "{squid}");
        assert!(squid.contains("\nssl_bump bump all\n"), "{squid}");
        assert_eq!(
            rule.squid_hosts(),
            "127.0.0.1 localhost\n127.0.0.2 h2.bench.test\n"
        );
    }
}
