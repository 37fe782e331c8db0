//! [`DockerApi`] on a real engine, through bollard.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, ExecConfig, HostConfig, HostConfigLogConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    ResizeExecOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{
    Attachment, BuildRequest, ContainerConfig, ContainerInfo, ContainerSummary, DockerApi,
    EngineInfo, ExecOutput, ExecSpec, Filter, ImageInfo, Interactive, LogRotation, NetworkSpec,
    NetworkSummary, Progress, ProgressSink, Subnet, TarStream, VolumeSummary,
};
use crate::endpoint::{EngineEndpoint, Transport};
use crate::error::{DockerError, Result};

/// Seconds a request may take (bollard's default): long builds stream, so this bounds silence.
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// A connection to a Docker engine, with the API version negotiated down to what the engine
/// speaks (bollard defaults to a newer version than, e.g., Debian's 20.10 engine at API 1.41, and
/// field semantics follow the URL version).
///
/// Which engine, and how, is an [`EngineEndpoint`]: a Unix socket, plain TCP (loopback only) or
/// TCP with TLS. Making an `Engine` reads the TLS material (so a broken certificate fails before
/// anything else) but never contacts the engine; negotiation happens on first use, and the first
/// call reports an engine that does not answer, naming the endpoint.
#[derive(Debug, Clone)]
pub struct Engine {
    raw: Docker,
    endpoint: std::sync::Arc<EngineEndpoint>,
    negotiated: std::sync::Arc<tokio::sync::OnceCell<Docker>>,
}

impl Engine {
    /// A client for the engine the environment names (`DOCKER_HOST`, `DOCKER_CONTEXT`, the
    /// docker config's current context, else the local socket; see [`crate::endpoint`]).
    pub fn new() -> Result<Self> {
        Engine::for_endpoint(EngineEndpoint::from_env()?)
    }

    /// A client for `endpoint`.
    pub fn for_endpoint(endpoint: EngineEndpoint) -> Result<Self> {
        let unreachable = |e: bollard::errors::Error| DockerError::unreachable(Some(&endpoint), &e);
        let raw = match &endpoint.transport {
            Transport::Unix { path } => {
                if !path.exists() {
                    return Err(DockerError::EngineUnreachable {
                        engine: Some(endpoint.to_string()),
                        detail: format!("no socket at `{}`", path.display()),
                        fix: endpoint.unreachable_fix(),
                    });
                }
                Docker::connect_with_unix(
                    &endpoint.address(),
                    CLIENT_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(unreachable)?
            }
            Transport::Tcp { tls: None, .. } => Docker::connect_with_http(
                &endpoint.address(),
                CLIENT_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(unreachable)?,
            Transport::Tcp {
                host,
                port,
                tls: Some(files),
            } => tls::connect(host, *port, files)?,
        };
        tracing::debug!(engine = %endpoint, "Docker engine");
        Ok(Engine {
            raw,
            endpoint: std::sync::Arc::new(endpoint),
            negotiated: Default::default(),
        })
    }

    /// The engine this client talks to.
    pub fn endpoint(&self) -> &EngineEndpoint {
        &self.endpoint
    }

    /// A failed call, an engine that stopped answering named with this endpoint and its fix.
    fn fail(
        &self,
        operation: &'static str,
        object: impl Into<String>,
        err: bollard::errors::Error,
    ) -> DockerError {
        DockerError::engine(operation, object, err).at(&self.endpoint)
    }

    /// A client that has already negotiated the API version with a reachable engine.
    pub async fn connect() -> Result<Self> {
        let engine = Engine::new()?;
        engine.client().await?;
        Ok(engine)
    }

    /// The negotiated bollard client, for what the seam does not cover.
    pub async fn client(&self) -> Result<&Docker> {
        self.negotiated
            .get_or_try_init(|| async {
                self.raw
                    .clone()
                    .negotiate_version()
                    .await
                    .map_err(|e| DockerError::unreachable(Some(&self.endpoint), &e))
            })
            .await
    }

    /// The negotiated API version as `(major, minor)`.
    pub async fn api_version(&self) -> Result<(usize, usize)> {
        let v = self.client().await?.client_version();
        Ok((v.major_version, v.minor_version))
    }

    /// Imports a root filesystem tarball as image `repo:tag` (`docker import`), with `changes`
    /// (Dockerfile instructions such as `CMD ["bash"]`) applied. Used to make a base image without
    /// a registry.
    pub async fn import_rootfs<S>(
        &self,
        rootfs: S,
        repo: &str,
        tag: &str,
        changes: Vec<String>,
    ) -> Result<()>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let reference = format!("{repo}:{tag}");
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let mut stream = self.client().await?.create_image(
            Some(options),
            Some(bollard::body_try_stream(rootfs)),
            None,
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.fail("import image", &reference, e))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError::Build {
                    tag: reference,
                    detail: message,
                });
            }
        }
        Ok(())
    }

    /// Whether `name` would be a 404 from the engine.
    fn not_found(err: &bollard::errors::Error) -> bool {
        matches!(
            err,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        )
    }

    async fn collect_logs(
        &self,
        output: impl Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>,
        operation: &'static str,
        object: &str,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        use bollard::container::LogOutput;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut output = std::pin::pin!(output);
        while let Some(item) = output.next().await {
            match item.map_err(|e| self.fail(operation, object, e))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok((stdout, stderr))
    }
}

fn filters(filter: &Filter) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    if !filter.labels.is_empty() {
        map.insert("label".to_owned(), filter.labels.clone());
    }
    if let Some(name) = &filter.name {
        map.insert("name".to_owned(), vec![name.clone()]);
    }
    map
}

fn labels(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn hashmap(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn none_if_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn endpoint(attachment: &Attachment) -> EndpointSettings {
    EndpointSettings {
        aliases: none_if_empty(&attachment.aliases),
        ..Default::default()
    }
}

/// The `json-file` driver with `rotation`: the engine keeps `max-file` files of `max-size`.
fn log_config(rotation: LogRotation) -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".to_owned()),
        config: Some(HashMap::from([
            ("max-size".to_owned(), rotation.max_size_bytes.to_string()),
            ("max-file".to_owned(), rotation.max_files.to_string()),
        ])),
    }
}

/// Classic-builder step lines look like `Step 3/7 : RUN ...`.
fn parse_step(line: &str) -> Option<(u32, u32, String)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, text) = rest.split_once(" : ")?;
    let (step, total) = counts.split_once('/')?;
    Some((
        step.parse().ok()?,
        total.parse().ok()?,
        text.trim().to_owned(),
    ))
}

impl DockerApi for Engine {
    async fn engine_info(&self) -> Result<EngineInfo> {
        let info = self
            .client()
            .await?
            .info()
            .await
            .map_err(|e| self.fail("info", "engine", e))?;
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        let (major, minor) = self.api_version().await?;
        let backing_filesystem = info
            .driver_status
            .unwrap_or_default()
            .into_iter()
            .find(|pair| pair.first().map(String::as_str) == Some("Backing Filesystem"))
            .and_then(|pair| pair.into_iter().nth(1));
        Ok(EngineInfo {
            id: info.id.unwrap_or_default(),
            server_version: info.server_version.unwrap_or_default(),
            api_version: format!("{major}.{minor}"),
            runtimes,
            storage_driver: info.driver.unwrap_or_default(),
            backing_filesystem,
            cpus: info.ncpu.and_then(|n| u32::try_from(n).ok()),
        })
    }

    async fn image_info(&self, reference: &str) -> Result<Option<ImageInfo>> {
        match self.client().await?.inspect_image(reference).await {
            Ok(image) => {
                let config = image.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    labels: labels(config.labels),
                    user: config.user.unwrap_or_default(),
                }))
            }
            Err(e) if Self::not_found(&e) => Ok(None),
            Err(e) => Err(self.fail("inspect image", reference, e)),
        }
    }

    async fn build_image(&self, request: BuildRequest, progress: ProgressSink<'_>) -> Result<()> {
        let args: HashMap<String, String> = request
            .build_args
            .iter()
            .map(|a| (a.name.clone(), a.value().to_owned()))
            .collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&args)
            .labels(&hashmap(&request.labels))
            .build();
        let docker = self.client().await?;
        let mut stream =
            docker.build_image(options, None, Some(bollard::body_full(request.context)));
        let mut last_lines: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                bollard::errors::Error::DockerStreamError { error } => DockerError::Build {
                    tag: request.tag.clone(),
                    detail: error,
                },
                other => self.fail("build image", &request.tag, other),
            })?;
            // Failures arrive inside the stream, not as an HTTP error: check every item.
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                let context = last_lines.join("\n");
                return Err(DockerError::Build {
                    tag: request.tag,
                    detail: if context.is_empty() {
                        detail
                    } else {
                        format!("{detail}\n{context}")
                    },
                });
            }
            if let Some(text) = info.stream {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    if let Some((step, total, text)) = parse_step(line) {
                        progress(Progress::BuildStep {
                            image: request.tag.clone(),
                            step,
                            total,
                            text,
                        });
                    } else {
                        progress(Progress::BuildOutput {
                            image: request.tag.clone(),
                            line: line.to_owned(),
                        });
                    }
                    last_lines.push(line.to_owned());
                    if last_lines.len() > 20 {
                        last_lines.remove(0);
                    }
                }
            }
        }
        Ok(())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".to_owned()),
            internal: Some(spec.internal),
            // Explicit either way: a daemon's `default-network-opts` must not turn IPv6 on.
            enable_ipv6: Some(spec.ipv6),
            options: (!spec.driver_options.is_empty()).then(|| hashmap(&spec.driver_options)),
            labels: Some(hashmap(&spec.labels)),
            ..Default::default()
        };
        self.client()
            .await?
            .create_network(request)
            .await
            .map(drop)
            .map_err(|e| self.fail("create network", &spec.name, e))
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        match self.client().await?.remove_network(name).await {
            Ok(()) => Ok(true),
            Err(e) if Self::not_found(&e) => Ok(false),
            Err(e) => Err(self.fail("remove network", name, e)),
        }
    }

    async fn list_networks(&self, filter: &Filter) -> Result<Vec<NetworkSummary>> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters(filter))
            .build();
        let networks = self
            .client()
            .await?
            .list_networks(Some(options))
            .await
            .map_err(|e| self.fail("list networks", "", e))?;
        let mut out: Vec<NetworkSummary> = networks
            .into_iter()
            .filter_map(|n| {
                Some(NetworkSummary {
                    name: n.name?,
                    labels: labels(n.labels),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn network_subnets(&self, name: &str) -> Result<Vec<Subnet>> {
        let network = self
            .client()
            .await?
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map_err(|e| self.fail("inspect network", name, e))?;
        Ok(network
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                c.subnet.map(|cidr| Subnet {
                    cidr,
                    gateway: c.gateway.filter(|g| !g.is_empty()),
                })
            })
            .collect())
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<()> {
        let host_config = HostConfig {
            runtime: config.runtime.clone(),
            cap_drop: none_if_empty(&config.cap_drop),
            cap_add: none_if_empty(&config.cap_add),
            security_opt: none_if_empty(&config.security_opt),
            pids_limit: config.pids_limit,
            memory: config.memory_bytes,
            // Same as memory: no swap on top of the limit.
            memory_swap: config.memory_bytes,
            nano_cpus: config.nano_cpus,
            log_config: config.log.map(log_config),
            storage_opt: config
                .storage_bytes
                .map(|bytes| HashMap::from([("size".to_owned(), bytes.to_string())])),
            init: Some(config.init),
            dns: none_if_empty(&config.dns),
            dns_search: none_if_empty(&config.dns_search),
            dns_options: none_if_empty(&config.dns_options),
            extra_hosts: none_if_empty(&config.extra_hosts),
            network_mode: config.network.as_ref().map(|a| a.network.clone()),
            ..Default::default()
        };
        let networking_config = config.network.as_ref().map(|a| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(a.network.clone(), endpoint(a))])),
        });
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            cmd: config.cmd.clone(),
            user: config.user.clone(),
            working_dir: config.working_dir.clone(),
            hostname: config.hostname.clone(),
            env: Some(config.env.iter().map(|e| e.to_engine()).collect()),
            labels: Some(hashmap(&config.labels)),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&config.name)
            .build();
        self.client()
            .await?
            .create_container(Some(options), body)
            .await
            .map(drop)
            .map_err(|e| self.fail("create container", &config.name, e))
    }

    async fn connect_network(&self, container: &str, attachment: &Attachment) -> Result<()> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(endpoint(attachment)),
        };
        self.client()
            .await?
            .connect_network(&attachment.network, request)
            .await
            .map_err(|e| {
                self.fail(
                    "connect network",
                    format!("{container} to {}", attachment.network),
                    e,
                )
            })
    }

    async fn upload(&self, container: &str, dir: &str, tar: Bytes) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.client()
            .await?
            .upload_to_container(container, Some(options), bollard::body_full(tar))
            .await
            .map_err(|e| self.fail("copy into", format!("{container}:{dir}"), e))
    }

    async fn upload_stream(&self, container: &str, dir: &str, tar: TarStream) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.client()
            .await?
            .upload_to_container(container, Some(options), bollard::body_try_stream(tar))
            .await
            .map_err(|e| DockerError::engine("copy into", format!("{container}:{dir}"), e))
    }

    async fn download(&self, container: &str, path: &str) -> Result<TarStream> {
        let client = self.client().await?.clone();
        let (container, path) = (container.to_owned(), path.to_owned());
        // The engine's stream borrows its client: a task owns both and hands the chunks over,
        // a few at a time (bounded memory, as for uploads).
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(crate::tarball::CHUNKS_IN_FLIGHT);
        tokio::spawn(async move {
            let options = DownloadFromContainerOptionsBuilder::default()
                .path(&path)
                .build();
            let mut chunks =
                std::pin::pin!(client.download_from_container(&container, Some(options)));
            while let Some(chunk) = chunks.next().await {
                let item = chunk.map_err(|e| {
                    let kind = if Self::not_found(&e) {
                        std::io::ErrorKind::NotFound
                    } else {
                        std::io::ErrorKind::Other
                    };
                    let error =
                        DockerError::engine("copy out of", format!("{container}:{path}"), e);
                    std::io::Error::new(kind, error.to_string())
                });
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Box::pin(chunks))
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.client()
            .await?
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| self.fail("start container", name, e))
    }

    async fn inspect_container(&self, name: &str) -> Result<Option<ContainerInfo>> {
        let info = match self
            .client()
            .await?
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(info) => info,
            Err(e) if Self::not_found(&e) => return Ok(None),
            Err(e) => return Err(self.fail("inspect container", name, e)),
        };
        let state = info.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let addresses = info
            .network_settings
            .and_then(|s| s.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(net, ep)| {
                let ip = ep.ip_address.filter(|ip| !ip.is_empty())?.parse().ok()?;
                Some((net, ip))
            })
            .collect();
        Ok(Some(ContainerInfo {
            running,
            exit_code: (!running).then_some(state.exit_code).flatten(),
            addresses,
        }))
    }

    async fn wait_container(&self, name: &str) -> Result<i64> {
        let mut stream = self.client().await?.wait_container(
            name,
            None::<bollard::query_parameters::WaitContainerOptions>,
        );
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard turns a non-zero exit into this error; it is an outcome, not a failure.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.fail("wait for container", name, e)),
            None => Err(DockerError::Engine {
                operation: "wait for container",
                object: name.to_owned(),
                detail: "the engine closed the stream without an exit code".to_owned(),
            }),
        }
    }

    async fn remove_container(&self, name: &str) -> Result<bool> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .client()
            .await?
            .remove_container(name, Some(options))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if Self::not_found(&e) => Ok(false),
            // A removal already under way (two cleanups at once) ends the same way.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(false),
            Err(e) => Err(self.fail("remove container", name, e)),
        }
    }

    async fn list_containers(&self, filter: &Filter) -> Result<Vec<ContainerSummary>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters(filter))
            .build();
        let containers = self
            .client()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fail("list containers", "", e))?;
        let mut out: Vec<ContainerSummary> = containers
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.into_iter().next()?;
                Some(ContainerSummary {
                    name: name.trim_start_matches('/').to_owned(),
                    labels: labels(c.labels),
                    running: c.state.map(|s| s.to_string() == "running") == Some(true),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn list_volumes(&self, filter: &Filter) -> Result<Vec<VolumeSummary>> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters(filter))
            .build();
        let response = self
            .client()
            .await?
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.fail("list volumes", "", e))?;
        let mut out: Vec<VolumeSummary> = response
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeSummary {
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
        match self
            .client()
            .await?
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if Self::not_found(&e) => Ok(false),
            Err(e) => Err(self.fail("remove volume", name, e)),
        }
    }

    async fn exec(
        &self,
        container: &str,
        spec: &ExecSpec,
        stdin: Option<Bytes>,
    ) -> Result<ExecOutput> {
        let config = ExecConfig {
            attach_stdin: Some(stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            cmd: Some(spec.cmd.clone()),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            env: none_if_empty(&spec.env.iter().map(|e| e.to_engine()).collect::<Vec<_>>()),
            ..Default::default()
        };
        let exec = self
            .client()
            .await?
            .create_exec(container, config)
            .await
            .map_err(|e| self.fail("exec in", container, e))?;
        let started = self
            .client()
            .await?
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(|e| self.fail("exec in", container, e))?;
        let (stdout, stderr) = match started {
            StartExecResults::Attached { output, mut input } => {
                if let Some(data) = stdin {
                    input
                        .write_all(&data)
                        .await
                        .map_err(|e| DockerError::Engine {
                            operation: "exec in",
                            object: container.to_owned(),
                            detail: format!("writing stdin: {e}"),
                        })?;
                    // Closing our write half is what ends the command's stdin.
                    let _ = input.shutdown().await;
                }
                drop(input);
                self.collect_logs(output, "exec in", container).await?
            }
            StartExecResults::Detached => (Vec::new(), Vec::new()),
        };
        let exit_code = self.exec_exit_code(&exec.id, container).await?;
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code,
        })
    }

    async fn exec_interactive(
        &self,
        container: &str,
        spec: &ExecSpec,
        io: Interactive,
    ) -> Result<i64> {
        use bollard::container::LogOutput;
        let tty = io.tty;
        let size = io.size.filter(|_| tty);
        // Engines before API 1.42 ignore ConsoleSize, and a resize sent after start races the
        // command's first look at its terminal: set the size inside, before the command runs.
        let cmd = match size {
            Some((rows, cols)) => {
                let mut cmd = vec![
                    "sh".to_owned(),
                    "-c".to_owned(),
                    format!("stty rows {rows} cols {cols} 2>/dev/null; exec \"$@\""),
                    "sh".to_owned(),
                ];
                cmd.extend(spec.cmd.iter().cloned());
                cmd
            }
            None => spec.cmd.clone(),
        };
        let config = ExecConfig {
            attach_stdin: Some(io.stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            console_size: size.map(|(rows, cols)| vec![rows as usize, cols as usize]),
            cmd: Some(cmd),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            env: none_if_empty(&spec.env.iter().map(|e| e.to_engine()).collect::<Vec<_>>()),
            ..Default::default()
        };
        let docker = self.client().await?.clone();
        let exec = docker
            .create_exec(container, config)
            .await
            .map_err(|e| self.fail("exec in", container, e))?;
        let started = docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    tty,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.fail("exec in", container, e))?;
        let StartExecResults::Attached { mut output, input } = started else {
            return self.exec_exit_code(&exec.id, container).await;
        };
        if let Some((rows, cols)) = size {
            self.resize(&exec.id, rows, cols).await;
        }
        let Interactive {
            stdin,
            mut stdout,
            mut stderr,
            resize,
            ..
        } = io;
        // stdin → exec input. Without a terminal, the end of our stdin is the end of theirs.
        let mut input = input;
        let pump_in = stdin.map(|mut stdin| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match stdin.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if input.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            let _ = input.flush().await;
                        }
                    }
                }
                if !tty {
                    let _ = input.shutdown().await;
                }
            })
        });
        // Window-size changes → resize_exec.
        let resizer = resize.filter(|_| tty).map(|mut rx| {
            let docker = docker.clone();
            let id = exec.id.clone();
            tokio::spawn(async move {
                while let Some((rows, cols)) = rx.recv().await {
                    let options = ResizeExecOptionsBuilder::default()
                        .h(i32::from(rows))
                        .w(i32::from(cols))
                        .build();
                    let _ = docker.resize_exec(&id, options).await;
                }
            })
        });
        // exec output → our stdout/stderr, until the process ends.
        let mut failure = None;
        while let Some(item) = output.next().await {
            let (out, message) = match item {
                Ok(LogOutput::Console { message } | LogOutput::StdOut { message }) => {
                    (&mut stdout, message)
                }
                Ok(LogOutput::StdErr { message }) => (&mut stderr, message),
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if out.write_all(&message).await.is_err() {
                break;
            }
            let _ = out.flush().await;
        }
        if let Some(task) = pump_in {
            task.abort();
        }
        if let Some(task) = resizer {
            task.abort();
        }
        if let Some(e) = failure {
            return Err(self.fail("exec in", container, e));
        }
        self.exec_exit_code(&exec.id, container).await
    }

    async fn logs_tail(&self, name: &str, lines: u32) -> Result<String> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let stream = self.client().await?.logs(name, Some(options));
        let (out, err) = self.collect_logs(stream, "read logs of", name).await?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        Ok(text)
    }
}

impl Engine {
    async fn exec_exit_code(&self, id: &str, container: &str) -> Result<i64> {
        // The output stream can end a moment before the engine records the exit code.
        for _ in 0..50 {
            let inspect = self
                .client()
                .await?
                .inspect_exec(id)
                .await
                .map_err(|e| self.fail("inspect exec in", container, e))?;
            if inspect.running != Some(true)
                && let Some(code) = inspect.exit_code
            {
                return Ok(code);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(DockerError::Engine {
            operation: "exec in",
            object: container.to_owned(),
            detail: "the command's exit code never arrived".to_owned(),
        })
    }

    async fn resize(&self, id: &str, rows: u16, cols: u16) {
        let options = ResizeExecOptionsBuilder::default()
            .h(i32::from(rows))
            .w(i32::from(cols))
            .build();
        // A failed resize only leaves the session at the engine's default size.
        if let Ok(docker) = self.client().await {
            let _ = docker.resize_exec(id, options).await;
        }
    }
}

/// TCP with TLS as the docker CLI does it with `--tlsverify`: the engine's certificate must
/// chain to `ca.pem` and nothing else (no system roots) and name the host dialled; the client
/// presents `cert.pem`/`key.pem` when there. Through bollard's custom transport, on the one
/// crypto provider of the workspace (ring): bollard's own `ssl` feature would add the system
/// roots to `ca.pem` and read the key only at the first handshake.
mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use bollard::{BollardRequest, Docker};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::CLIENT_TIMEOUT_SECS;
    use crate::endpoint::TlsFiles;
    use crate::error::{DockerError, Result};

    fn unusable(path: &Path, problem: String, fix: &str) -> DockerError {
        DockerError::EngineEndpoint {
            setting: format!("the engine's TLS file `{}`", path.display()),
            problem,
            fix: fix.to_owned(),
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|source| DockerError::HostFile {
            path: path.to_owned(),
            source,
        })
    }

    fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
        let pem = read(path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                unusable(
                    path,
                    format!("is not PEM ({e})"),
                    "replace it with the PEM file docker uses",
                )
            })?;
        if certs.is_empty() {
            return Err(unusable(
                path,
                "holds no certificate".to_owned(),
                "replace it with the PEM file docker uses",
            ));
        }
        Ok(certs)
    }

    pub(super) fn config(files: &TlsFiles) -> Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&files.ca)? {
            roots.add(cert).map_err(|e| {
                unusable(
                    &files.ca,
                    format!("holds a certificate that cannot be a root ({e})"),
                    "use the CA certificate that signed the engine's certificate",
                )
            })?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(&files.ca, e.to_string(), "report this as a bug"))?
        .with_root_certificates(roots);
        let mut config = match &files.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert)?;
                let key_pem = read(key)?;
                let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    unusable(
                        key,
                        format!("is not a PEM private key ({e})"),
                        "replace it with the key of cert.pem",
                    )
                })?;
                builder.with_client_auth_cert(chain, private).map_err(|e| {
                    unusable(
                        key,
                        format!("does not go with cert.pem ({e})"),
                        "put the key of cert.pem there",
                    )
                })?
            }
        };
        // Every request is a new connection, and a TLS front such as socat (OpenSSL with
        // client verification and no session id context) refuses resumed sessions outright:
        // a full handshake each time works with every server.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }

    pub(super) fn connect(host: &str, port: u16, files: &TlsFiles) -> Result<Docker> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config(files)?)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            // As bollard's own transports: an idle connection is not reused.
            .pool_max_idle_per_host(0)
            .build(connector);
        let transport = move |request: BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Docker::connect_with_custom_transport(
            transport,
            Some(format!("https://{authority}")),
            CLIENT_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| DockerError::Engine {
            operation: "connect to",
            object: authority,
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_builder_step_lines_parse() {
        assert_eq!(
            parse_step("Step 3/7 : RUN apt-get update"),
            Some((3, 7, "RUN apt-get update".to_owned()))
        );
        assert_eq!(parse_step(" ---> Running in abc"), None);
        assert_eq!(parse_step("Step x/7 : RUN"), None);
    }
}
