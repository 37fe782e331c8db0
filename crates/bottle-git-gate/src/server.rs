//! The smart-HTTP server: hyper in front, the real `git upload-pack` / `git receive-pack`
//! behind, and a refresh from the upstream before every ref advertisement.
//!
//! Per entry one lock serialises the refreshes and the pushes: a fetch never races a push's
//! forwarding, and two clones arriving together share a fetch only when it started after both
//! arrived — so an answer is never older than the request it answers.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bottle_manifest::{Cidr, GitEntry};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::config::GateConfig;
use crate::error::GateError;
use crate::protocol::{self, Service, Target};
use crate::repo::{self, CONFIG_ENV, ENTRY_ENV, Layout};
use crate::upstream::{self, Operation};

type Body = BoxBody<Bytes, std::io::Error>;

/// How much a gzip-encoded request may inflate to. Fetch requests are want/have lines; this
/// is far above any real one and keeps a compression bomb from filling memory or disk.
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request body may pause. A push holds its entry's lock until git is done, so a
/// client that stops sending mid-push (a half-open connection) must not hold it for ever.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a stopping gate waits for requests in flight (a push being forwarded).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A prepared gate: repositories ready, known secrets read, not yet listening.
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    config_path: PathBuf,
    /// Who is served ([`GateConfig::clients`]); everyone else is closed unanswered.
    clients: Option<Vec<Cidr>>,
    entries: HashMap<String, Arc<EntryState>>,
    /// `(name, value)` of each known secret, handed to `git receive-pack` (whose hook scans
    /// for them) and to nothing else.
    secrets: Vec<(String, OsString)>,
}

struct EntryState {
    entry: GitEntry,
    repo: PathBuf,
    fresh: Arc<Mutex<Freshness>>,
}

#[derive(Debug, Default)]
struct Freshness {
    /// When the last successful refresh started.
    last_ok_started: Option<Instant>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.inner.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Gate")
            .field("state", &self.inner.layout.state())
            .field("entries", &names)
            .field("known_secrets", &self.inner.secrets.len())
            .finish()
    }
}

impl Gate {
    /// Prepare the state directory for `config` (read from `config_path`, which each push's
    /// hook reads again), with `exe` as the hook's program and the known secrets read from
    /// `env`.
    ///
    /// # Errors
    ///
    /// [`GateError`] when the config is invalid, a known secret is unset, or a repository
    /// cannot be made.
    pub fn prepare(
        config: &GateConfig,
        config_path: &Path,
        exe: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Gate, GateError> {
        config.validate(env)?;
        // Built once here so that a bad secret fails the start, not the first push.
        config.scanner(env)?;
        let layout = Layout::new(&config.state);
        repo::prepare(&layout, &config.entries, exe)?;
        let entries = config
            .entries
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    Arc::new(EntryState {
                        entry: e.clone(),
                        repo: layout.repo(&e.name),
                        fresh: Arc::default(),
                    }),
                )
            })
            .collect();
        let secrets = config
            .known_secrets
            .iter()
            .filter_map(|name| env(name).map(|v| (name.clone(), OsString::from(v))))
            .collect();
        Ok(Gate {
            inner: Arc::new(Inner {
                layout,
                config_path: std::path::absolute(config_path).map_err(|source| GateError::Io {
                    path: config_path.to_path_buf(),
                    source,
                })?,
                clients: config.clients.clone(),
                entries,
                secrets,
            }),
        })
    }

    /// Fetch every entry from its upstream in the background, so the first clone is quick.
    /// Failures are logged; each request refreshes again and reports its own.
    pub fn warm_up(&self) {
        for state in self.inner.entries.values() {
            let inner = Arc::clone(&self.inner);
            let state = Arc::clone(state);
            tokio::spawn(async move {
                if let Err(e) = inner.refresh(&state, Instant::now()).await {
                    tracing::warn!(entry = %state.entry.name, "{e}");
                }
            });
        }
    }

    /// Serve on `listener` until `shutdown` completes, then wait for the requests in flight
    /// (at most two minutes: a push being forwarded is never cut).
    ///
    /// # Errors
    ///
    /// [`GateError::Io`] if accepting fails for good.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GateError> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors and the like: pause instead of spinning.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if !self.inner.serves(peer) {
                        // Closed unanswered: a container on a network the gate joins to reach
                        // an upstream learns nothing, and cannot use an entry's key.
                        tracing::warn!(%peer, "refused a connection from outside `clients`");
                        drop(stream);
                        continue;
                    }
                    let inner = Arc::clone(&self.inner);
                    let service = service_fn(move |req| {
                        let inner = Arc::clone(&inner);
                        async move { Ok::<_, std::convert::Infallible>(inner.handle(req, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
        Ok(())
    }
}

/// Bind `addr`.
///
/// # Errors
///
/// [`GateError::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GateError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GateError::Bind { addr, source })
}

impl Inner {
    fn serves(&self, peer: SocketAddr) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|clients| clients.iter().any(|c| c.contains(peer.ip())))
    }

    fn entry(&self, repo: &str) -> Option<&Arc<EntryState>> {
        protocol::entry_candidates(repo).find_map(|name| self.entries.get(name))
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = match protocol::route(&method, &path, req.uri().query()) {
            Target::Health => text(StatusCode::OK, "ok\n"),
            Target::NotFound(why) => text(StatusCode::NOT_FOUND, &format!("{why}\n")),
            Target::Advertise { repo, service } => match self.entry(repo) {
                Some(state) => self.advertise(state, service, &req).await,
                None => self.unknown(repo),
            },
            Target::Rpc { repo, service } => match self.entry(repo).cloned() {
                Some(state) => self.rpc(state, service, req).await,
                None => self.unknown(repo),
            },
        };
        tracing::info!(
            %peer,
            %method,
            path = %bottle_manifest::escape(&path),
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    fn unknown(&self, repo: &str) -> Response<Body> {
        let mut names: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        text(
            StatusCode::NOT_FOUND,
            &format!(
                "no repository `{}` here; this gate serves: {}\n",
                bottle_manifest::escape(repo),
                names.join(", ")
            ),
        )
    }

    /// Refresh from upstream, then advertise the refs; a failed refresh is an `ERR` line the
    /// client prints, never the refs of an older fetch.
    async fn advertise(
        &self,
        state: &EntryState,
        service: Service,
        req: &Request<Incoming>,
    ) -> Response<Body> {
        let arrival = Instant::now();
        let protocol = protocol::git_protocol(
            req.headers()
                .get("git-protocol")
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        if let Err(message) = self.refresh(state, arrival).await {
            tracing::warn!(entry = %state.entry.name, "{message}");
            body.extend(protocol::err_line(&format!("bottle-git-gate {message}")));
            return advertisement(service, body);
        }
        let mut command = self.git(protocol.as_deref());
        command
            .args([service.subcommand(), "--stateless-rpc", "--advertise-refs"])
            .arg(&state.repo)
            .stdin(Stdio::null());
        match command.output().await {
            Ok(out) if out.status.success() => {
                if service == Service::ReceivePack || !protocol::is_v2(protocol.as_deref()) {
                    body.extend(protocol::service_header(service));
                }
                body.extend(out.stdout);
            }
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                tracing::error!(entry = %state.entry.name, "advertise failed: {}", why.trim());
                body.extend(protocol::err_line(&format!(
                    "bottle-git-gate could not read its repository of `{}`: {}",
                    state.entry.name,
                    why.trim()
                )));
            }
            Err(e) => {
                body.extend(protocol::err_line(&format!(
                    "bottle-git-gate could not run git: {e}"
                )));
            }
        }
        advertisement(service, body)
    }

    /// One stateless request: the body into git's stdin (inflated when gzip), git's stdout
    /// out as it comes. A push holds the entry's lock until `git receive-pack` (and so the
    /// hook's forwarding) has finished, even if the client goes away.
    async fn rpc(
        &self,
        state: Arc<EntryState>,
        service: Service,
        req: Request<Incoming>,
    ) -> Response<Body> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if content_type != Some(service.request_type().as_str()) {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("expected `Content-Type: {}`\n", service.request_type()),
            );
        }
        let gzip = match req
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?"))
        {
            None | Some("identity") => false,
            Some("gzip" | "x-gzip") => true,
            Some(other) => {
                return text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!(
                        "`Content-Encoding: {}` is not supported; send identity or gzip\n",
                        bottle_manifest::escape(other)
                    ),
                );
            }
        };
        let protocol = protocol::git_protocol(
            req.headers()
                .get("git-protocol")
                .and_then(|v| v.to_str().ok()),
        );
        let guard = match service {
            Service::ReceivePack => Some(Arc::clone(&state.fresh).lock_owned().await),
            Service::UploadPack => None,
        };
        let mut command = self.git(protocol.as_deref());
        command
            .args([service.subcommand(), "--stateless-rpc"])
            .arg(&state.repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if service == Service::ReceivePack {
            command
                .env(ENTRY_ENV, &state.entry.name)
                .env(CONFIG_ENV, &self.config_path)
                .envs(self.secrets.iter().map(|(k, v)| (k.as_str(), v)));
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("bottle-git-gate could not run git: {e}\n"),
                );
            }
        };
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "git's pipes are missing\n",
            );
        };
        let name = state.entry.name.clone();
        let mut incoming = req.into_body();
        tokio::spawn(async move {
            let copied = async {
                let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
                let mut inflated: u64 = 0;
                loop {
                    let next = tokio::time::timeout(BODY_IDLE_TIMEOUT, incoming.frame())
                        .await
                        .map_err(|_| {
                            std::io::Error::other("the client sent nothing for 5 minutes")
                        })?;
                    let Some(frame) = next else { break };
                    let frame = frame.map_err(std::io::Error::other)?;
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match &mut decoder {
                        None => stdin.write_all(&data).await?,
                        Some(decoder) => {
                            std::io::Write::write_all(decoder, &data)?;
                            let out = std::mem::take(decoder.get_mut());
                            inflated += out.len() as u64;
                            if inflated > MAX_INFLATED {
                                return Err(std::io::Error::other(
                                    "the gzip request inflates past 64 MiB",
                                ));
                            }
                            stdin.write_all(&out).await?;
                        }
                    }
                }
                if let Some(decoder) = decoder {
                    stdin.write_all(&decoder.finish()?).await?;
                }
                stdin.shutdown().await
            };
            if let Err(e) = copied.await {
                tracing::warn!(entry = %name, "request body: {e}");
            }
        });
        let name = state.entry.name.clone();
        tokio::spawn(async move {
            // Held until git is done: the next refresh of this entry waits for the push.
            let _guard = guard;
            let mut stderr = stderr;
            let mut errors = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut errors).await;
            match child.wait().await {
                Ok(status) if status.success() => {}
                Ok(status) => tracing::warn!(
                    entry = %name,
                    service = service.name(),
                    "git exited with {status}: {}",
                    String::from_utf8_lossy(&errors).trim()
                ),
                Err(e) => tracing::warn!(entry = %name, "waiting for git: {e}"),
            }
        });
        let stream = tokio_util::io::ReaderStream::new(stdout).map_ok(Frame::data);
        let mut response = Response::new(StreamBody::new(stream).boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&service.result_type())
                .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// Fetch `state`'s upstream into its repository unless a fetch that started after
    /// `arrival` already succeeded. The error is one sentence naming the upstream and the
    /// cause.
    async fn refresh(&self, state: &EntryState, arrival: Instant) -> Result<(), String> {
        let mut fresh = state.fresh.lock().await;
        if fresh.last_ok_started.is_some_and(|t| t >= arrival) {
            return Ok(());
        }
        let started = Instant::now();
        let upstream = state.entry.upstream.to_string();
        let output = self
            .upstream_git(&state.entry)
            .args(upstream::fetch_args(&state.entry, &state.repo))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot fetch from {upstream}: git could not run ({e})"))?;
        if !output.status.success() {
            return Err(upstream::explain(
                Operation::Fetch,
                &upstream,
                &String::from_utf8_lossy(&output.stderr),
            ));
        }
        self.follow_head(state).await;
        tracing::info!(
            entry = %state.entry.name,
            ms = started.elapsed().as_millis() as u64,
            "fetched from {upstream}"
        );
        fresh.last_ok_started = Some(started);
        Ok(())
    }

    /// Point the repository's `HEAD` at the upstream's default branch when it does not name
    /// an existing branch (a new repository, or the upstream's first branch appeared), so a
    /// clone checks out what a clone of the upstream would.
    async fn follow_head(&self, state: &EntryState) {
        let current = self
            .git(None)
            .arg("--git-dir")
            .arg(&state.repo)
            .args(["symbolic-ref", "-q", "HEAD"])
            .output()
            .await;
        let target = current
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(target) = &target {
            let exists = self
                .git(None)
                .arg("--git-dir")
                .arg(&state.repo)
                .args(["show-ref", "--verify", "-q", target])
                .status()
                .await
                .is_ok_and(|s| s.success());
            if exists {
                return;
            }
        }
        let listed = self
            .upstream_git(&state.entry)
            .args(upstream::head_args(&state.entry, &state.repo))
            .stdin(Stdio::null())
            .output()
            .await;
        let Ok(listed) = listed else { return };
        let text = String::from_utf8_lossy(&listed.stdout);
        if let Some(head) = upstream::parse_symref(&text) {
            let set = self
                .git(None)
                .arg("--git-dir")
                .arg(&state.repo)
                .args(["symbolic-ref", "HEAD", head])
                .status()
                .await;
            if !set.is_ok_and(|s| s.success()) {
                tracing::warn!(entry = %state.entry.name, "could not point HEAD at {head}");
            }
        }
    }

    /// A git process for the gate's own repositories: cleared environment, the gate's
    /// settings, `GIT_PROTOCOL` when the client asked for a version.
    fn git(&self, protocol: Option<&str>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        command
            .env_clear()
            .envs(upstream::base_env(&self.layout))
            .kill_on_drop(false);
        if let Some(p) = protocol {
            command.env("GIT_PROTOCOL", p);
        }
        command
    }

    /// A git process that talks to `entry`'s upstream.
    fn upstream_git(&self, entry: &GitEntry) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        command
            .env_clear()
            .envs(upstream::upstream_env(entry, &self.layout))
            .kill_on_drop(true);
        command
    }
}

fn advertisement(service: Service, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&service.advertisement_type())
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(full(body.as_bytes().to_vec()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}
