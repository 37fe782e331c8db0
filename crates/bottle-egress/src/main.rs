//! `bottle-egress`: the standalone egress proxy.
//!
//! - `bottle-egress run --config FILE` serves; SIGHUP reloads the file, SIGTERM drains and
//!   exits. Audit events go to stdout as JSON lines, diagnostics to stderr.
//! - `bottle-egress check --config FILE` validates; errors are `file:line:col: message`.
//! - `bottle-egress mint-ca --out DIR` writes `ca.crt` and `ca.key` (mode 0600).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bottle_egress::{CertificateAuthority, Egress, EgressConfig, EgressError, JsonLines};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bottle-egress",
    version,
    about = "A TLS-bumping egress proxy with per-host routes",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve. SIGHUP reloads the config; SIGTERM drains open connections and exits.
    #[command(after_help = "Examples:\n  \
        bottle-egress mint-ca --out ./ca\n  \
        bottle-egress run --config egress.yaml\n  \
        BOTTLE_EGRESS_LOG=debug bottle-egress run --config egress.yaml --listen 127.0.0.1:3128\n\n\
        Audit events go to stdout as JSON lines; diagnostics to stderr (BOTTLE_EGRESS_LOG).")]
    Run {
        /// The YAML config file.
        #[arg(long, env = "BOTTLE_EGRESS_CONFIG")]
        config: PathBuf,
        /// Listen here instead of the config's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Worker threads. One serves a bottle best (no hand-offs between threads); raise it
        /// for a proxy shared by many busy clients.
        #[arg(long, env = "BOTTLE_EGRESS_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
    },
    /// Validate a config (routes, files, tokens in the environment) and exit.
    Check {
        /// The YAML config file.
        #[arg(long, env = "BOTTLE_EGRESS_CONFIG")]
        config: PathBuf,
    },
    /// Ask a running proxy for `GET /health` (for container health checks: the image has no
    /// shell or curl). Exits 0 when healthy.
    #[command(
        after_help = "With --config, the proxy's address defaults to the config's `listen` \
        (0.0.0.0 asked on 127.0.0.1), and when the config sets `proxy_auth` the credential is \
        read from the variable its `token_ref` names and sent as Proxy-Authorization."
    )]
    Health {
        /// The proxy's address [default: the config's `listen`, else 127.0.0.1:9099].
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// The proxy's config, for its address and its `proxy_auth`.
        #[arg(long, env = "BOTTLE_EGRESS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Mint a new interception CA: DIR/ca.crt (give it to clients) and DIR/ca.key (mode 0600).
    MintCa {
        /// The directory to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "bottle-egress CA")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every TLS object of the library is built with ring passed explicitly; installing it as
    // the process default too means nothing can ever pick another provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only on a terminal: `docker logs` and files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOTTLE_EGRESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Run {
            config,
            listen,
            threads,
        } => run(&config, listen, threads),
        Command::Check { config } => check(&config),
        Command::MintCa { out, name } => mint_ca(&out, &name),
        Command::Health { addr, config } => health(addr, config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn env_token(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn check(path: &Path) -> Result<(), EgressError> {
    let config = EgressConfig::check(path, &env_token)?;
    println!(
        "{}: ok ({} route{})",
        path.display(),
        config.routes.len(),
        if config.routes.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

fn health(addr: Option<SocketAddr>, config: Option<&Path>) -> Result<(), EgressError> {
    use std::io::Read;
    let config = config.map(EgressConfig::load).transpose()?;
    let addr = addr.unwrap_or_else(|| match &config {
        Some(c) if c.listen.ip().is_unspecified() => {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), c.listen.port())
        }
        Some(c) => c.listen,
        None => SocketAddr::from(([127, 0, 0, 1], 9099)),
    });
    let io = |source| EgressError::Io {
        path: PathBuf::from(format!("http://{addr}/health")),
        source,
    };
    let mut request =
        b"GET /health HTTP/1.1\r\nHost: _egress.local\r\nConnection: close\r\n".to_vec();
    if let Some(auth) = config.as_ref().and_then(|c| c.proxy_auth.as_ref()) {
        let token = env_token(auth.token_ref.as_str()).ok_or_else(|| {
            io(std::io::Error::other(format!(
                "the config sets `proxy_auth`, and `{}` is not set in this environment",
                auth.token_ref
            )))
        })?;
        request
            .extend_from_slice(bottle_egress::proxy_authorization(&auth.user, &token).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(&request).map_err(io)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(io)?;
    if reply.starts_with("HTTP/1.1 200") {
        println!("ok");
        Ok(())
    } else {
        Err(io(std::io::Error::other(format!(
            "unhealthy: {}",
            reply.lines().next().unwrap_or("no answer")
        ))))
    }
}

fn mint_ca(out: &Path, name: &str) -> Result<(), EgressError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EgressError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let ca = CertificateAuthority::generate_named(name, bottle_egress::DEFAULT_CA_VALIDITY)?;
    let key_path = out.join("ca.key");
    // Created 0600 from the start: the key never exists with wider permissions.
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(io(&key_path))?;
    key.write_all(ca.key_pem().as_bytes())
        .map_err(io(&key_path))?;
    let cert_path = out.join("ca.crt");
    std::fs::write(&cert_path, ca.cert_pem()).map_err(io(&cert_path))?;
    println!("{}\n{}", cert_path.display(), key_path.display());
    Ok(())
}

fn run(path: &Path, listen: Option<SocketAddr>, threads: u16) -> Result<(), EgressError> {
    // One thread by default: a bottle's egress serves one agent, and on one thread a request
    // never waits for another thread to be woken (measured in docs/performance.md).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(threads));
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|source| EgressError::Io {
            path: PathBuf::from("<tokio runtime>"),
            source,
        })?;
    runtime.block_on(serve(path, listen))
}

async fn serve(path: &Path, listen: Option<SocketAddr>) -> Result<(), EgressError> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut config = EgressConfig::check(path, &env_token)?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let signal_err = |source| EgressError::Io {
        path: PathBuf::from("<signals>"),
        source,
    };
    // Install the handlers before serving, so an early signal is not lost.
    let mut hup = signal(SignalKind::hangup()).map_err(signal_err)?;
    let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let egress = Egress::builder(config)
        .audit(JsonLines::new(std::io::stdout()))
        .start()
        .await?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                match EgressConfig::check(path, &env_token) {
                    Ok(mut new) => {
                        if let Some(addr) = listen {
                            new.listen = addr;
                        }
                        if let Err(e) = egress.reload(new) {
                            tracing::error!("reload refused, keeping the current config: {e}");
                        }
                    }
                    Err(e) => tracing::error!("reload refused, keeping the current config: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("draining connections");
    egress.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
