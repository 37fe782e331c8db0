//! Which Docker engine to talk to, decided as the docker CLI decides it, before anything is
//! contacted: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for TCP), else the
//! docker context `DOCKER_CONTEXT` names, else the `currentContext` of `$DOCKER_CONFIG/config.json`
//! (`~/.docker` by default), else the local socket.
//!
//! Resolution is pure over an environment lookup and the files of the docker config directory
//! ([`EngineEndpoint::resolve`]); what it refuses, it refuses with one sentence and the fix
//! ([`DockerError::EngineEndpoint`]):
//!
//! - `ssh://` — the engine is not spoken to over ssh. bollard's `ssh` transport accepts a host
//!   key it has never seen (OpenSSH's `accept-new`, whatever the user's own ssh configuration
//!   says) and the bottle's credentials travel through it, so it stays off; an ssh tunnel to a
//!   local socket does the same job under the user's own ssh rules.
//! - TCP without TLS to anything but loopback — the create requests carry the bottle's
//!   credentials in clear, and the engine is root on its machine.
//! - TLS without verification (`DOCKER_TLS` alone, a context's `SkipTLSVerify`) — never.
//! - `npipe://` outside Windows, `fd://`, anything else that is not `unix://` or `tcp://`.
//!
//! A TLS endpoint trusts only the `ca.pem` it names, as the docker CLI does (`--tlsverify`), and
//! presents `cert.pem`/`key.pem` when they are there; the files are read when the client is
//! made ([`crate::engine::Engine`]), so a missing or broken one fails before anything else.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{DockerError, Result};

/// The engine's socket when nothing else is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The port of a `tcp://` address that names none: Docker's 2376 with TLS, 2375 without.
const TLS_PORT: u16 = 2376;
const PLAIN_PORT: u16 = 2375;

/// The environment variables the resolution reads.
pub mod env {
    /// The engine's address.
    pub const DOCKER_HOST: &str = "DOCKER_HOST";
    /// Non-empty: TCP with TLS, verifying the engine against `ca.pem`.
    pub const DOCKER_TLS_VERIFY: &str = "DOCKER_TLS_VERIFY";
    /// Non-empty without `DOCKER_TLS_VERIFY`: TLS without verification, which is refused.
    pub const DOCKER_TLS: &str = "DOCKER_TLS";
    /// The directory of `ca.pem`, `cert.pem`, `key.pem` (default: the docker config directory).
    pub const DOCKER_CERT_PATH: &str = "DOCKER_CERT_PATH";
    /// The docker context to use.
    pub const DOCKER_CONTEXT: &str = "DOCKER_CONTEXT";
    /// The docker config directory (default `~/.docker`).
    pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
    /// Where `~` is.
    pub const HOME: &str = "HOME";
}

/// How the client reaches the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket on this machine.
    Unix {
        /// The socket.
        path: PathBuf,
    },
    /// HTTP over TCP, with TLS when `tls` is set.
    Tcp {
        /// The host name or IP address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
        /// The certificates, for TLS.
        tls: Option<TlsFiles>,
    },
}

/// The certificates of a TLS endpoint: the CA the engine's certificate must chain to (the only
/// root trusted), and the client certificate and key, when the engine asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `cert.pem` and `key.pem`, present together or not at all.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Where the endpoint came from, for the preflight and for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nothing was configured: the local socket.
    Default,
    /// `DOCKER_HOST`.
    DockerHost,
    /// A docker context (from `DOCKER_CONTEXT` or the config's `currentContext`).
    Context {
        /// The context's name.
        name: String,
    },
}

/// The engine to talk to and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEndpoint {
    /// How it is reached.
    pub transport: Transport,
    /// What chose it.
    pub origin: Origin,
}

impl Default for EngineEndpoint {
    fn default() -> Self {
        EngineEndpoint {
            transport: Transport::Unix {
                path: PathBuf::from(DEFAULT_SOCKET),
            },
            origin: Origin::Default,
        }
    }
}

impl EngineEndpoint {
    /// The endpoint this process's environment names.
    pub fn from_env() -> Result<Self> {
        Self::resolve(|name| std::env::var(name).ok())
    }

    /// The endpoint `lookup` (an environment) names, reading the docker config directory's
    /// `config.json` and context files when a context is involved.
    pub fn resolve(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let config_dir = match var(env::DOCKER_CONFIG) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => var(env::HOME).map(|home| Path::new(&home).join(".docker")),
        };
        // DOCKER_HOST wins over any context, as for the docker CLI.
        if let Some(host) = var(env::DOCKER_HOST) {
            let tls = if var(env::DOCKER_TLS_VERIFY).is_some() {
                let dir = var(env::DOCKER_CERT_PATH)
                    .map(PathBuf::from)
                    .or_else(|| config_dir.clone())
                    .ok_or_else(|| {
                        endpoint_error(
                            &Setting::DockerHost(&host),
                            "asks for TLS (DOCKER_TLS_VERIFY) but neither DOCKER_CERT_PATH nor \
                             HOME says where its certificates are",
                            "set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem",
                        )
                    })?;
                Some(dir)
            } else if var(env::DOCKER_TLS).is_some() {
                return Err(endpoint_error(
                    &Setting::DockerHost(&host),
                    "asks for TLS without checking the engine's certificate (DOCKER_TLS without \
                     DOCKER_TLS_VERIFY), which claude-bottle never does",
                    "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory of ca.pem, \
                     cert.pem and key.pem",
                ));
            } else {
                None
            };
            let transport = parse_host(&host, tls.as_deref(), &Setting::DockerHost(&host))?;
            return Ok(EngineEndpoint {
                transport,
                origin: Origin::DockerHost,
            });
        }
        let (context, from) = match var(env::DOCKER_CONTEXT) {
            Some(name) => (Some(name), ContextFrom::Env),
            None => match &config_dir {
                Some(dir) => (current_context(dir)?, ContextFrom::Config),
                None => (None, ContextFrom::Config),
            },
        };
        match context {
            None => Ok(EngineEndpoint::default()),
            Some(name) if name == "default" => Ok(EngineEndpoint::default()),
            Some(name) => {
                let dir = config_dir.ok_or_else(|| {
                    endpoint_error(
                        &Setting::Context(&name, from, None),
                        "cannot be read: neither DOCKER_CONFIG nor HOME is set",
                        "set DOCKER_CONFIG to the docker config directory, or DOCKER_HOST",
                    )
                })?;
                read_context(&dir, &name, from)
            }
        }
    }

    /// The address as docker writes it: `unix:///var/run/docker.sock`, `tcp://host:2376`.
    pub fn address(&self) -> String {
        match &self.transport {
            Transport::Unix { path } => format!("unix://{}", path.display()),
            Transport::Tcp { host, port, .. } => format!("tcp://{}:{port}", bracketed(host)),
        }
    }

    /// Whether this is the local engine's default socket, which the preflight does not mention.
    pub fn is_local_default(&self) -> bool {
        matches!(&self.transport, Transport::Unix { path } if path == Path::new(DEFAULT_SOCKET))
    }

    /// What to do when this engine does not answer.
    pub(crate) fn unreachable_fix(&self) -> String {
        let elsewhere = match &self.origin {
            Origin::Default => "or point DOCKER_HOST (or a docker context) at a running engine",
            Origin::DockerHost => "or unset DOCKER_HOST to use the local engine",
            Origin::Context { .. } => {
                "or pick another engine with DOCKER_CONTEXT or `docker context use`"
            }
        };
        match &self.transport {
            Transport::Unix { .. } if self.is_local_default() => {
                format!("start it (e.g. `sudo dockerd &` or `systemctl start docker`), {elsewhere}")
            }
            Transport::Unix { .. } => {
                format!("check that the engine (or the tunnel to it) runs, {elsewhere}")
            }
            Transport::Tcp { tls: Some(_), .. } => format!(
                "check that the engine runs there, that this machine reaches that port and that \
                 the certificates are the ones for it (`docker info` tells), {elsewhere}"
            ),
            Transport::Tcp { tls: None, .. } => format!(
                "check that the engine (or the tunnel to it) listens there (`docker info` tells), \
                 {elsewhere}"
            ),
        }
    }
}

/// `tcp://build-box:2376 (TLS, context "build-box")`: the preflight's line.
impl fmt::Display for EngineEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut notes = Vec::new();
        if let Transport::Tcp { tls, .. } = &self.transport {
            notes.push(if tls.is_some() { "TLS" } else { "no TLS" }.to_owned());
        }
        match &self.origin {
            Origin::Default => notes.push("the local default".to_owned()),
            Origin::DockerHost => notes.push(env::DOCKER_HOST.to_owned()),
            Origin::Context { name } => notes.push(format!("context \"{name}\"")),
        }
        write!(f, "{} ({})", self.address(), notes.join(", "))
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContextFrom {
    Env,
    Config,
}

/// What named the address, for messages.
enum Setting<'a> {
    DockerHost(&'a str),
    /// A context's name, what named it, and its endpoint's address when known.
    Context(&'a str, ContextFrom, Option<&'a str>),
}

impl fmt::Display for Setting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::DockerHost(host) => write!(f, "DOCKER_HOST `{host}`"),
            Setting::Context(name, from, host) => {
                let from = match from {
                    ContextFrom::Env => "DOCKER_CONTEXT",
                    ContextFrom::Config => "the docker config's currentContext",
                };
                write!(f, "docker context `{name}` (from {from})")?;
                if let Some(host) = host {
                    write!(f, " with endpoint `{host}`")?;
                }
                Ok(())
            }
        }
    }
}

fn endpoint_error(setting: &Setting<'_>, problem: &str, fix: &str) -> DockerError {
    DockerError::EngineEndpoint {
        setting: setting.to_string(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    }
}

/// The ssh tunnel that stands in for `ssh://`.
fn ssh_fix(destination: &str) -> String {
    // ssh takes the port as `-p`, not after the host.
    let destination = match destination.rsplit_once(':') {
        _ if destination.is_empty() => "USER@HOST".to_owned(),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            format!("-p {port} {host}")
        }
        _ => destination.to_owned(),
    };
    format!(
        "forward the engine's socket instead, e.g. `ssh -nNT -L \
         $HOME/.claude-bottle-engine.sock:/var/run/docker.sock {destination}` and \
         DOCKER_HOST=unix://$HOME/.claude-bottle-engine.sock, or use a docker context over \
         tcp with TLS"
    )
}

/// `unix:///path`, `tcp://host[:port]` (or a bare `host:port`, which docker reads as tcp).
/// `tls` is the certificate directory when TLS is asked for.
fn parse_host(host: &str, tls: Option<&Path>, setting: &Setting<'_>) -> Result<Transport> {
    let fix_form = "use unix:///path/to/docker.sock or tcp://HOST:PORT";
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("tcp".to_owned(), host),
    };
    match scheme.as_str() {
        "unix" => {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(endpoint_error(
                    setting,
                    "names no absolute socket path",
                    "use unix:///path/to/docker.sock",
                ));
            }
            Ok(Transport::Unix {
                path: PathBuf::from(rest),
            })
        }
        "tcp" => parse_tcp(rest, tls, setting),
        "ssh" => {
            let destination = rest.split('/').next().unwrap_or_default();
            Err(endpoint_error(
                setting,
                "reaches the engine over ssh, which claude-bottle does not do (bollard's ssh \
                 transport would accept a host key it has never seen)",
                &ssh_fix(destination),
            ))
        }
        "npipe" if !cfg!(windows) => Err(endpoint_error(
            setting,
            "is a Windows named pipe, which this system does not have",
            "use unix:///path/to/docker.sock or tcp://HOST:PORT, or unset it for the local engine",
        )),
        "fd" => Err(endpoint_error(
            setting,
            "is an inherited file descriptor, which only the engine itself listens on",
            fix_form,
        )),
        "http" | "https" => Err(endpoint_error(
            setting,
            "is a URL, not an engine address",
            "use tcp://HOST:PORT, with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS",
        )),
        other => Err(endpoint_error(
            setting,
            &format!("has the unknown scheme `{other}`"),
            fix_form,
        )),
    }
}

fn parse_tcp(rest: &str, tls: Option<&Path>, setting: &Setting<'_>) -> Result<Transport> {
    let malformed = |why: &str| {
        endpoint_error(
            setting,
            &format!("is not a TCP address ({why})"),
            "use tcp://HOST:PORT, e.g. tcp://build-box:2376",
        )
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(malformed("no host"));
    }
    if authority.contains('/') {
        return Err(malformed("a path after the host"));
    }
    if authority.contains('@') {
        return Err(malformed("a user name, which TCP engines do not take"));
    }
    let parsed: http::uri::Authority = authority
        .parse()
        .map_err(|_| malformed("not a host name or IP address with an optional port"))?;
    let host = parsed.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(malformed("no host"));
    }
    // `http` takes the characters of a URL's authority; a host is narrower.
    let bracketed_v6 = parsed.host().starts_with('[');
    if !bracketed_v6
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(malformed("not a host name or IP address"));
    }
    if bracketed_v6 && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(malformed("not an IPv6 address between the brackets"));
    }
    // `http` leaves a port that is not a number unparsed rather than refusing it.
    let port_text = match authority.rfind(']') {
        Some(end) => authority[end + 1..].strip_prefix(':'),
        None => authority.split_once(':').map(|(_, port)| port),
    };
    if port_text.is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_err()) {
        return Err(malformed("a port that is not a number from 1 to 65535"));
    }
    let port = match parsed.port() {
        Some(port) => match port.as_u16() {
            0 => return Err(malformed("port 0")),
            port => port,
        },
        None if authority.ends_with(':') => return Err(malformed("an empty port")),
        None if tls.is_some() => TLS_PORT,
        None => PLAIN_PORT,
    };
    let tls = match tls {
        Some(dir) => Some(tls_files(dir, setting)?),
        None if is_loopback(host) => None,
        None => {
            return Err(endpoint_error(
                setting,
                "would reach the engine without TLS, so anyone on the network between could \
                 read the bottle's credentials and command the engine",
                "turn on TLS with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (ca.pem, cert.pem, \
                 key.pem) or a docker context with TLS, or forward the engine's socket over ssh \
                 (`ssh -nNT -L $HOME/.claude-bottle-engine.sock:/var/run/docker.sock USER@HOST`) \
                 and set DOCKER_HOST=unix://$HOME/.claude-bottle-engine.sock",
            ));
        }
    };
    Ok(Transport::Tcp {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// `localhost` and loopback literals: a plain-TCP engine there is on this machine (typically
/// the local end of an ssh tunnel).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The certificates in `dir`: `ca.pem` is required (it is the only root trusted); `cert.pem` and
/// `key.pem` go together.
fn tls_files(dir: &Path, setting: &Setting<'_>) -> Result<TlsFiles> {
    let ca = dir.join("ca.pem");
    if !ca.is_file() {
        return Err(endpoint_error(
            setting,
            &format!(
                "asks for TLS, and `{}` has no ca.pem to check the engine's certificate with",
                dir.display()
            ),
            "put the CA that signed the engine's certificate there as ca.pem, or point \
             DOCKER_CERT_PATH at the directory that has it",
        ));
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let client = match (cert.is_file(), key.is_file()) {
        (true, true) => Some((cert, key)),
        (false, false) => None,
        (has_cert, _) => {
            let (present, missing) = if has_cert {
                ("cert.pem", "key.pem")
            } else {
                ("key.pem", "cert.pem")
            };
            return Err(endpoint_error(
                setting,
                &format!(
                    "has a client {present} in `{}` but no {missing}",
                    dir.display()
                ),
                "put the client certificate and its key there together, or neither",
            ));
        }
    };
    Ok(TlsFiles { ca, client })
}

/// `currentContext` of `dir/config.json`, when the file exists and names one.
fn current_context(dir: &Path) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "currentContext", default)]
        current_context: Option<String>,
    }
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DockerError::HostFile { path, source }),
    };
    let config: Config = serde_json::from_str(&text).map_err(|e| DockerError::EngineEndpoint {
        setting: format!("the docker config `{}`", path.display()),
        problem: format!("is not valid JSON ({e})"),
        fix: "fix the file, or set DOCKER_HOST to choose the engine directly".to_owned(),
    })?;
    Ok(config.current_context.filter(|c| !c.is_empty()))
}

/// The docker endpoint of context `name`: `contexts/meta/<sha256 of the name>/meta.json`, with
/// TLS material in `contexts/tls/<sha256>/docker/` when the context has any.
fn read_context(dir: &Path, name: &str, from: ContextFrom) -> Result<EngineEndpoint> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "Endpoints", default)]
        endpoints: std::collections::BTreeMap<String, DockerEndpoint>,
    }
    #[derive(Deserialize)]
    struct DockerEndpoint {
        #[serde(rename = "Host", default)]
        host: Option<String>,
        #[serde(rename = "SkipTLSVerify", default)]
        skip_tls_verify: bool,
    }
    let id = format!("{:x}", Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let setting = Setting::Context(name, from, None);
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fix = match from {
                ContextFrom::Env => {
                    "`docker context ls` lists the contexts; set DOCKER_CONTEXT \
                                     to one of them, or unset it"
                }
                ContextFrom::Config => {
                    "`docker context ls` lists the contexts; `docker context \
                                        use` one of them, or set DOCKER_HOST"
                }
            };
            return Err(endpoint_error(
                &setting,
                &format!("does not exist (no `{}`)", meta_path.display()),
                fix,
            ));
        }
        Err(source) => {
            return Err(DockerError::HostFile {
                path: meta_path,
                source,
            });
        }
    };
    let recreate = "recreate it with `docker context create`, or set DOCKER_HOST";
    let meta: Meta = serde_json::from_str(&text).map_err(|e| {
        endpoint_error(
            &setting,
            &format!("has an unreadable `{}` ({e})", meta_path.display()),
            recreate,
        )
    })?;
    let endpoint = meta.endpoints.get("docker");
    let Some(host) = endpoint
        .and_then(|e| e.host.as_deref())
        .filter(|h| !h.is_empty())
    else {
        return Err(endpoint_error(&setting, "has no docker endpoint", recreate));
    };
    let setting = Setting::Context(name, from, Some(host));
    if endpoint.is_some_and(|e| e.skip_tls_verify) {
        return Err(endpoint_error(
            &setting,
            "skips the check of the engine's certificate (SkipTLSVerify), which claude-bottle \
             never does",
            "recreate the context with the engine's CA (`docker context create … --docker \
             host=…,ca=…,cert=…,key=…`)",
        ));
    }
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = tls_dir.is_dir().then_some(tls_dir.as_path());
    let transport = parse_host(host, tls, &setting)?;
    Ok(EngineEndpoint {
        transport,
        origin: Origin::Context {
            name: name.to_owned(),
        },
    })
}
