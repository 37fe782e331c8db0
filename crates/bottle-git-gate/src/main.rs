//! `bottle-git-gate`: the standalone git gate.
//!
//! - `run --config FILE` serves; SIGTERM or Ctrl-C stop it after the requests in flight.
//! - `check --config FILE` validates the config, the keys and the known secrets.
//! - `health` asks a running gate (for `docker exec <gate> bottle-git-gate health`).
//! - `pre-receive` is what each repository's hook runs for a push.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bottle_git_gate::hook::{self, Verdict};
use bottle_git_gate::repo::{CONFIG_ENV, ENTRY_ENV};
use bottle_git_gate::{DEFAULT_LISTEN, Gate, GateConfig, GateError};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bottle-git-gate",
    version,
    about = "A git gateway: serves declared upstreams over smart HTTP, checks every push (ref policy, secrets) and forwards it over SSH with a pinned host key",
    long_about = "A git gateway: serves declared upstreams over smart HTTP, checks every push \
        (ref policy, secrets) and forwards it over SSH with a pinned host key.\n\n\
        Clients fetch and push http://<gate>:9419/<entry>.git; the gate holds each entry's SSH \
        key and never gives it out. Every ref advertisement is preceded by a fetch from the \
        upstream, and every push is refused unless its refs match the entry's policy, it \
        carries no secret, and the upstream accepted it.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve. SIGTERM or Ctrl-C stop accepting, then wait for requests in flight.
    #[command(after_help = "Examples:\n  \
        bottle-git-gate check --config gate.yaml\n  \
        GH_TOKEN=… bottle-git-gate run --config gate.yaml --listen 127.0.0.1:9419\n  \
        git clone http://127.0.0.1:9419/app.git\n\n\
        The config lists the entries (the manifest's `git:` shape), the state directory and the \
        names of the environment variables holding known secrets. Logs go to stderr \
        (BOTTLE_GIT_GATE_LOG, e.g. `debug`).")]
    Run {
        /// The YAML (or JSON) config file.
        #[arg(long, env = CONFIG_ENV)]
        config: PathBuf,
        /// Listen here instead of the config's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a config: its shape and rules, each entry's key file (readable by the gate
    /// alone) and each known secret (set in the environment, long enough), then exit.
    #[command(after_help = "Examples:\n  \
        bottle-git-gate check --config /etc/bottle-git-gate/config.yaml\n\n\
        Errors are `file:line:col: message` with the offending line and a hint.")]
    Check {
        /// The YAML (or JSON) config file.
        #[arg(long, env = CONFIG_ENV)]
        config: PathBuf,
    },
    /// Ask a running gate for `GET /health`; exits 0 when it serves. For readiness probes:
    /// `docker exec <gate> bottle-git-gate health`.
    #[command(
        after_help = "The address is --addr, else the port of the config's `listen` on \
        loopback (--config or BOTTLE_GIT_GATE_CONFIG), else 127.0.0.1:9419."
    )]
    Health {
        /// The gate's address.
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// The config whose `listen` to ask.
        #[arg(long, env = CONFIG_ENV)]
        config: Option<PathBuf>,
    },
    /// The pre-receive hook: git runs it for each push into a gate repository, with the
    /// updates on stdin. Checks the ref policy, scans the new objects for secrets, forwards the
    /// push upstream; exits non-zero (and git refuses the push) on any refusal.
    #[command(
        after_help = "Not for use by hand: `run` writes a hook calling it, and gives each \
        `git receive-pack` BOTTLE_GIT_GATE_ENTRY, BOTTLE_GIT_GATE_CONFIG and the known secrets. \
        What it prints reaches the pusher as `remote:` lines."
    )]
    PreReceive {
        /// The entry the push is for.
        #[arg(long, env = ENTRY_ENV)]
        entry: String,
        /// The gate's config file.
        #[arg(long, env = CONFIG_ENV)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The hook's stderr is the pusher's terminal: no log lines there unless asked for.
    let default_filter = match cli.command {
        Command::PreReceive { .. } => "off",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOTTLE_GIT_GATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let result = match cli.command {
        Command::Run { config, listen } => run(&config, listen),
        Command::Check { config } => check(&config),
        Command::Health { addr, config } => health(addr, config.as_deref()),
        Command::PreReceive { entry, config } => return pre_receive(&entry, &config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bottle-git-gate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn check(path: &Path) -> Result<(), GateError> {
    let config = GateConfig::check(path, &env_var)?;
    let names: Vec<&str> = config.entries.iter().map(|e| e.name.as_str()).collect();
    println!(
        "{}: ok ({} entr{}: {}; {} known secret{})",
        path.display(),
        names.len(),
        if names.len() == 1 { "y" } else { "ies" },
        names.join(", "),
        config.known_secrets.len(),
        if config.known_secrets.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    Ok(())
}

fn run(path: &Path, listen: Option<SocketAddr>) -> Result<(), GateError> {
    let mut config = GateConfig::check(path, &env_var)?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let exe = std::env::current_exe().map_err(|source| GateError::Io {
        path: PathBuf::from("bottle-git-gate"),
        source,
    })?;
    // One thread: the gate's work is in the git processes it starts.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| GateError::Io {
            path: PathBuf::from("<tokio runtime>"),
            source,
        })?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let signal_err = |source| GateError::Io {
            path: PathBuf::from("<signals>"),
            source,
        };
        let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
        let gate = Gate::prepare(&config, path, &exe, &env_var)?;
        let listener = bottle_git_gate::server::bind(config.listen).await?;
        let bound = listener.local_addr().unwrap_or(config.listen);
        let names: Vec<&str> = config.entries.iter().map(|e| e.name.as_str()).collect();
        // The bound address (`--listen 127.0.0.1:0` picks a free port).
        tracing::info!(
            "serving {} on http://{bound}/ ({} known secret{})",
            names.join(", "),
            config.known_secrets.len(),
            if config.known_secrets.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        gate.warm_up();
        gate.serve(listener, async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("stopping: waiting for requests in flight");
        })
        .await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn health(addr: Option<SocketAddr>, config: Option<&Path>) -> Result<(), GateError> {
    use std::io::Read;
    let addr = match (addr, config) {
        (Some(addr), _) => addr,
        (None, Some(path)) => {
            let listen = GateConfig::load(path)?.listen;
            if listen.ip().is_unspecified() {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
            } else {
                listen
            }
        }
        (None, None) => DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid literal")),
    };
    let unhealthy = |reason: String| GateError::Unhealthy { addr, reason };
    let timeout = Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| unhealthy(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| unhealthy(e.to_string()))?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: git-gate\r\nConnection: close\r\n\r\n")
        .map_err(|e| unhealthy(e.to_string()))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| unhealthy(e.to_string()))?;
    if reply.starts_with("HTTP/1.1 200") {
        println!("ok");
        Ok(())
    } else {
        Err(unhealthy(
            reply.lines().next().unwrap_or("no answer").to_owned(),
        ))
    }
}

fn pre_receive(entry: &str, path: &Path) -> ExitCode {
    let mut stderr = std::io::stderr();
    let refuse = |stderr: &mut std::io::Stderr, e: &dyn std::fmt::Display| {
        let _ = writeln!(
            stderr,
            "bottle-git-gate: push refused: the gate could not check it ({e}); nothing was sent upstream"
        );
        ExitCode::FAILURE
    };
    let config = match GateConfig::load(path) {
        Ok(c) => c,
        Err(e) => return refuse(&mut stderr, &e),
    };
    let Some(entry) = config.entry(entry) else {
        return refuse(
            &mut stderr,
            &format!("no entry `{entry}` in {}", path.display()),
        );
    };
    let updates = match hook::parse_updates(std::io::stdin().lock()) {
        Ok(u) => u,
        Err(e) => return refuse(&mut stderr, &e),
    };
    match hook::pre_receive(&config, entry, &updates, &env_var, &mut stderr) {
        Ok(Verdict::Accepted) => ExitCode::SUCCESS,
        Ok(Verdict::Refused) => ExitCode::FAILURE,
        Err(e) => refuse(&mut stderr, &e),
    }
}
