//! The seam between the backend's logic and the Docker engine.
//!
//! [`DockerApi`] is the narrow set of engine operations the backend uses, in the backend's own
//! terms (no bollard types cross it). [`Engine`](crate::engine::Engine) implements it on bollard;
//! [`RecordingDocker`](crate::fake::RecordingDocker) records the calls so the launch, teardown and
//! cleanup ordering is tested without a daemon.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use bytes::Bytes;
use serde::Serialize;

use crate::error::Result;

/// One environment variable of a container or exec. The value may be a secret: `Debug` never
/// shows it, and nothing in this crate logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    value: String,
}

impl EnvVar {
    /// A variable `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        EnvVar {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value, for handing to the engine and nothing else.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// `NAME=value`, the engine's wire form.
    pub(crate) fn to_engine(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

/// The bridge driver's option that keeps the host from holding an address on a network.
pub const INHIBIT_IPV4: &str = "com.docker.network.bridge.inhibit_ipv4";

/// A network to create (always a `bridge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// Its name.
    pub name: String,
    /// `true`: no route out of the network (Docker's `internal`).
    pub internal: bool,
    /// The bridge driver's options (`com.docker.network.bridge.*`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_options: BTreeMap<String, String>,
    /// IPv6 on the network; sent explicitly, so a daemon default cannot turn it on.
    pub ipv6: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl NetworkSpec {
    /// An internal network the host holds no address on: no route out, and — because the
    /// bridge carries no gateway address ([`INHIBIT_IPV4`]) — nothing on the host is reachable
    /// from it, not even a service listening on every address. Its containers reach each other
    /// over the link. IPv6 off.
    pub fn internal(name: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        NetworkSpec {
            name: name.into(),
            internal: true,
            driver_options: BTreeMap::from([(INHIBIT_IPV4.to_owned(), "true".to_owned())]),
            ipv6: false,
            labels,
        }
    }

    /// A routed bridge (a sidecar's way upstream), IPv6 off.
    pub fn bridge(name: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        NetworkSpec {
            name: name.into(),
            internal: false,
            driver_options: BTreeMap::new(),
            ipv6: false,
            labels,
        }
    }
}

/// Log rotation of a container's `json-file` log: the engine keeps at most `max_files` files
/// of `max_size_bytes` each, so no container's output can fill the host's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogRotation {
    /// The size at which a log file is rotated.
    pub max_size_bytes: u64,
    /// How many files are kept.
    pub max_files: u32,
}

impl LogRotation {
    /// 10 MiB, 3 files: 30 MiB of log at most per container.
    pub const DEFAULT: LogRotation = LogRotation {
        max_size_bytes: 10 << 20,
        max_files: 3,
    };
}

/// A container's membership in a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// DNS aliases of the container on that network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A container to create, fully resolved (values included).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerConfig {
    /// Its name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// The command (`None`: the image's).
    pub cmd: Option<Vec<String>>,
    /// The user (`None`: the image's).
    pub user: Option<String>,
    /// The working directory (`None`: the image's).
    pub working_dir: Option<String>,
    /// The hostname.
    pub hostname: Option<String>,
    /// The environment.
    pub env: Vec<EnvVar>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The network the container is created on; others are connected before start (engines
    /// before API 1.44 take only one network at create).
    pub network: Option<Attachment>,
    /// The OCI runtime (`None`: the engine's default).
    pub runtime: Option<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Capabilities added back.
    pub cap_add: Vec<String>,
    /// Security options, e.g. `no-new-privileges`.
    pub security_opt: Vec<String>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (the engine's `NanoCpus`).
    pub nano_cpus: Option<i64>,
    /// Log rotation of the `json-file` log driver (`None`: the daemon's log settings).
    pub log: Option<LogRotation>,
    /// The size of the container's writable layer, in bytes (the engine's `StorageOpt
    /// size`; only some storage drivers accept it).
    pub storage_bytes: Option<i64>,
    /// Run an init process as PID 1 (reaps orphaned processes).
    pub init: bool,
    /// Upstream DNS servers of the engine's embedded resolver for this container.
    pub dns: Vec<String>,
    /// DNS search domains (`["."]`: none, instead of the host's).
    pub dns_search: Vec<String>,
    /// Resolver options (set: instead of the host's).
    pub dns_options: Vec<String>,
    /// `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
}

/// One of a network's address pools, as the engine allocated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The pool, in CIDR notation (`172.27.0.0/16`).
    pub cidr: String,
    /// The address the engine reserved in it as the gateway, when it reports one.
    pub gateway: Option<String>,
}

/// A network as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSummary {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A container as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    /// Its name, without the leading `/`.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it is running.
    pub running: bool,
}

/// A volume as listed by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSummary {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// What `inspect` tells about a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInfo {
    /// Whether it is running.
    pub running: bool,
    /// Its exit code once it stopped.
    pub exit_code: Option<i64>,
    /// Its address on each network it is attached to.
    pub addresses: BTreeMap<String, IpAddr>,
}

/// A filter for the list calls: every entry must match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Filter {
    /// `key` or `key=value` label conditions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Name substring (the engine matches names by substring or regex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Filter {
    /// Objects with label `key=value`.
    pub fn label(key: &str, value: &str) -> Self {
        Filter {
            labels: vec![format!("{key}={value}")],
            name: None,
        }
    }

    /// Objects carrying label `key`, whatever its value.
    pub fn has_label(key: &str) -> Self {
        Filter {
            labels: vec![key.to_owned()],
            name: None,
        }
    }

    /// Objects whose name contains `part`.
    pub fn name(part: &str) -> Self {
        Filter {
            labels: Vec::new(),
            name: Some(part.to_owned()),
        }
    }
}

/// A command run in a container without a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// The argv.
    pub cmd: Vec<String>,
    /// The user (`None`: the container's).
    pub user: Option<String>,
    /// The working directory.
    pub working_dir: Option<String>,
    /// Extra environment.
    pub env: Vec<EnvVar>,
}

/// The outcome of an [`ExecSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Its exit code.
    pub exit_code: i64,
}

/// The host side of an attached exec: bytes both ways and, with a terminal, window sizes. The
/// caller owns the terminal (raw mode); this crate only pumps bytes.
pub struct Interactive {
    /// Allocate a terminal in the container: output arrives raw on `stdout`, and `size` and
    /// `resize` apply. Without one, stdout and stderr stay apart.
    pub tty: bool,
    /// What the user types; at its end the command's stdin is closed (without a terminal).
    pub stdin: Option<Pin<Box<dyn tokio::io::AsyncRead + Send>>>,
    /// Where the command's output goes.
    pub stdout: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    /// Where its standard error goes (without a terminal).
    pub stderr: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    /// The terminal size at start, `(rows, cols)`.
    pub size: Option<(u16, u16)>,
    /// Later window sizes, `(rows, cols)`; a closed channel means no more resizes.
    pub resize: Option<tokio::sync::mpsc::Receiver<(u16, u16)>>,
}

impl fmt::Debug for Interactive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interactive")
            .field("tty", &self.tty)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What `inspect` tells about an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The user it runs as (`""`: root).
    pub user: String,
}

/// What the engine is: its version, the runtimes it offers, its storage and its machine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EngineInfo {
    /// The engine's ID (stable across restarts of one engine).
    pub id: String,
    /// The engine's version string, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// Registered OCI runtimes, e.g. `runc`, `runsc`.
    pub runtimes: Vec<String>,
    /// The storage driver, e.g. `overlay2`.
    pub storage_driver: String,
    /// The file system under the storage driver, e.g. `extfs`, `xfs` (`None`: not reported).
    pub backing_filesystem: Option<String>,
    /// The number of CPUs of the engine's machine (`None`: not reported).
    pub cpus: Option<u32>,
}

/// A request to build an image from a tar context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The tag to give the image.
    pub tag: String,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// The context, a tar archive.
    pub context: Bytes,
    /// Build args. May carry proxy settings: never logged.
    pub build_args: Vec<EnvVar>,
    /// Labels for the image.
    pub labels: BTreeMap<String, String>,
}

/// Progress of a long operation (an image build), as data for the caller to render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "progress", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Progress {
    /// The builder started Dockerfile step `step` of `total`: `text` is the instruction.
    BuildStep {
        /// The image being built.
        image: String,
        /// 1-based step number.
        step: u32,
        /// Number of steps.
        total: u32,
        /// The instruction.
        text: String,
    },
    /// A line of build output.
    BuildOutput {
        /// The image being built.
        image: String,
        /// The line, without its newline.
        line: String,
    },
    /// What a launch is doing, e.g. `creating network claude-bottle-net-x`.
    Note {
        /// One line.
        message: String,
    },
    /// An object was removed (by teardown or cleanup).
    Removed {
        /// `container`, `volume` or `network`.
        kind: String,
        /// Its name.
        name: String,
    },
    /// Something the user should know that does not stop the bottle.
    Warning {
        /// The warning, one sentence.
        message: String,
    },
}

/// An archive as a stream of chunks, made while it is sent ([`crate::tarball::stream`]).
pub type TarStream =
    Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// A receiver of [`Progress`] events.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// The engine operations the backend uses. Every method is one engine round trip (or one
/// stream), so a recording fake captures the backend's exact call order.
pub trait DockerApi: Send + Sync {
    /// The engine's version and runtimes.
    fn engine_info(&self) -> impl Future<Output = Result<EngineInfo>> + Send;
    /// What the engine knows of image `reference`, or `None` when it does not have it.
    fn image_info(&self, reference: &str)
    -> impl Future<Output = Result<Option<ImageInfo>>> + Send;
    /// Builds an image, reporting progress; fails on the first error inside the build stream.
    fn build_image(
        &self,
        request: BuildRequest,
        progress: ProgressSink<'_>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Creates a network.
    fn create_network(&self, spec: &NetworkSpec) -> impl Future<Output = Result<()>> + Send;
    /// Removes a network; `Ok(false)` when it was already gone.
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Lists networks.
    fn list_networks(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<Vec<NetworkSummary>>> + Send;
    /// The subnets the engine allocated to network `name`, each with its reserved gateway.
    fn network_subnets(&self, name: &str) -> impl Future<Output = Result<Vec<Subnet>>> + Send;
    /// Creates a container (not started).
    fn create_container(&self, config: &ContainerConfig)
    -> impl Future<Output = Result<()>> + Send;
    /// Attaches a created container to one more network.
    fn connect_network(
        &self,
        container: &str,
        attachment: &Attachment,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Extracts tar archive `tar` into directory `dir` of the container (which must exist).
    /// Ownership and modes come from the archive's headers.
    fn upload(
        &self,
        container: &str,
        dir: &str,
        tar: Bytes,
    ) -> impl Future<Output = Result<()>> + Send;
    /// [`upload`](DockerApi::upload), with the archive streamed as it is made (a host tree of
    /// any size in bounded memory). An error item ends the upload, failed.
    fn upload_stream(
        &self,
        container: &str,
        dir: &str,
        tar: TarStream,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The tar archive of `path` in the container (`GET /containers/{id}/archive`), streamed
    /// as the engine sends it. A path the container does not have ends the stream with an
    /// error of kind [`std::io::ErrorKind::NotFound`] as its first item.
    fn download(
        &self,
        container: &str,
        path: &str,
    ) -> impl Future<Output = Result<TarStream>> + Send;
    /// Starts a container.
    fn start_container(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Inspects a container; `None` when it does not exist.
    fn inspect_container(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ContainerInfo>>> + Send;
    /// Waits for a container to stop and returns its exit code.
    fn wait_container(&self, name: &str) -> impl Future<Output = Result<i64>> + Send;
    /// Removes a container, killing it if it runs, with its anonymous volumes; `Ok(false)` when
    /// it was already gone.
    fn remove_container(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Lists containers, stopped ones included.
    fn list_containers(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>>> + Send;
    /// Lists volumes.
    fn list_volumes(
        &self,
        filter: &Filter,
    ) -> impl Future<Output = Result<Vec<VolumeSummary>>> + Send;
    /// Removes a volume; `Ok(false)` when it was already gone.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Runs a command to completion, capturing its output; `stdin` is fed to it and closed.
    fn exec(
        &self,
        container: &str,
        spec: &ExecSpec,
        stdin: Option<Bytes>,
    ) -> impl Future<Output = Result<ExecOutput>> + Send;
    /// Runs a command attached to the caller's streams and returns its exit code.
    fn exec_interactive(
        &self,
        container: &str,
        spec: &ExecSpec,
        io: Interactive,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// The last `lines` lines of a container's log (for error messages).
    fn logs_tail(&self, name: &str, lines: u32) -> impl Future<Output = Result<String>> + Send;
}
