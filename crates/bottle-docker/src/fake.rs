//! A recording, in-memory [`DockerApi`] for tests: it keeps containers, networks, volumes and
//! images the way an engine would (names unique, a network with endpoints cannot be removed,
//! addresses appear at start), records every call as a line, and fails on request.
//!
//! ```
//! use bottle_docker::api::{DockerApi, NetworkSpec};
//! use bottle_docker::fake::RecordingDocker;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let docker = RecordingDocker::new();
//! let net = NetworkSpec::internal("n", Default::default());
//! docker.create_network(&net).await.unwrap();
//! assert_eq!(docker.calls(), ["create network n internal"]);
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::api::{
    Attachment, BuildRequest, ContainerConfig, ContainerInfo, ContainerSummary, DockerApi,
    EngineInfo, ExecOutput, ExecSpec, Filter, ImageInfo, Interactive, NetworkSpec, NetworkSummary,
    Progress, ProgressSink, Subnet, TarStream, VolumeSummary,
};
use crate::error::{DockerError, Result};

#[derive(Debug, Clone, Default)]
struct FakeContainer {
    labels: BTreeMap<String, String>,
    running: bool,
    exit_code: Option<i64>,
    networks: Vec<String>,
    addresses: BTreeMap<String, IpAddr>,
    config: ContainerConfig,
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<String>,
    containers: BTreeMap<String, FakeContainer>,
    networks: BTreeMap<String, (bool, BTreeMap<String, String>)>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
    images: BTreeMap<String, ImageInfo>,
    runtimes: Vec<String>,
    fail_on: Vec<String>,
    /// Every call fails as if the engine did not answer.
    unreachable: bool,
    exits_on_start: BTreeSet<String>,
    exec_exit: i64,
    next_ip: u8,
    /// Each network's subnet, `10.<creation index>.0.0/16`.
    subnets: BTreeMap<String, String>,
    /// Every container config ever created, removed ones included.
    created: Vec<ContainerConfig>,
    /// Create calls to hold, by line prefix (see [`RecordingDocker::hold`]).
    holds: Vec<(String, Gate)>,
    /// What `download` returns, by `container:path` (see [`RecordingDocker::serve`]).
    downloads: BTreeMap<String, Bytes>,
}

/// A create call held inside the fake engine: it is recorded when it arrives, takes effect only
/// when the gate opens, and takes effect then even if the caller stopped waiting (dropped its
/// future), the way an engine completes a request it already has.
#[derive(Debug, Clone)]
pub struct Gate {
    reached: Arc<tokio::sync::watch::Sender<bool>>,
    open: Arc<tokio::sync::watch::Sender<bool>>,
    done: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Gate {
    fn new() -> Self {
        let flag = || Arc::new(tokio::sync::watch::Sender::new(false));
        Gate {
            reached: flag(),
            open: flag(),
            done: flag(),
        }
    }

    /// Waits until the held call has arrived at the engine.
    pub async fn reached(&self) {
        let _ = self.reached.subscribe().wait_for(|v| *v).await;
    }

    /// Lets the held call take effect.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Waits until the held call has taken effect (or failed).
    pub async fn done(&self) {
        let _ = self.done.subscribe().wait_for(|v| *v).await;
    }
}

/// The fake engine. Clones share state.
#[derive(Debug, Clone)]
pub struct RecordingDocker {
    state: Arc<Mutex<State>>,
}

impl Default for RecordingDocker {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingDocker {
    /// An empty engine with the `runc` runtime; execs (readiness checks included) exit 0.
    pub fn new() -> Self {
        RecordingDocker {
            state: Arc::new(Mutex::new(State {
                runtimes: vec!["runc".to_owned()],
                next_ip: 2,
                ..Default::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the recorded calls (not the objects).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes `download` of `path` in `container` return the archive `tar`.
    pub fn serve(&self, container: &str, path: &str, tar: Bytes) {
        self.lock()
            .downloads
            .insert(format!("{container}:{path}"), tar);
    }

    /// Makes every call whose line starts with `prefix` fail (after being recorded).
    pub fn fail_on(&self, prefix: &str) {
        self.lock().fail_on.push(prefix.to_owned());
    }

    /// Makes every call fail as an engine that does not answer does (after being recorded).
    pub fn stop_answering(&self) {
        self.lock().unreachable = true;
    }

    /// Adds an image.
    pub fn add_image(&self, reference: &str, user: &str) {
        self.lock().images.insert(
            reference.to_owned(),
            ImageInfo {
                labels: BTreeMap::new(),
                user: user.to_owned(),
            },
        );
    }

    /// Registers an extra runtime (e.g. `runsc`).
    pub fn add_runtime(&self, name: &str) {
        self.lock().runtimes.push(name.to_owned());
    }

    /// Stops container `name` as if its process had exited with `code`.
    pub fn stop(&self, name: &str, code: i64) {
        if let Some(c) = self.lock().containers.get_mut(name) {
            c.running = false;
            c.exit_code = Some(code);
        }
    }

    /// The exit code of later execs and attached sessions.
    pub fn set_exec_exit(&self, code: i64) {
        self.lock().exec_exit = code;
    }

    /// Container `name` exits right after it starts.
    pub fn exit_on_start(&self, name: &str) {
        self.lock().exits_on_start.insert(name.to_owned());
    }

    /// Adds a container as if created earlier (e.g. by a killed launcher).
    pub fn add_container(&self, name: &str, labels: BTreeMap<String, String>, running: bool) {
        self.lock().containers.insert(
            name.to_owned(),
            FakeContainer {
                labels,
                running,
                ..Default::default()
            },
        );
    }

    /// Adds a network as if created earlier.
    pub fn add_network(&self, name: &str, labels: BTreeMap<String, String>) {
        self.lock()
            .networks
            .insert(name.to_owned(), (false, labels));
    }

    /// Names of existing containers.
    pub fn containers(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// Names of existing networks.
    pub fn networks(&self) -> Vec<String> {
        self.lock().networks.keys().cloned().collect()
    }

    /// The config a container was created with.
    pub fn container_config(&self, name: &str) -> Option<ContainerConfig> {
        self.lock().containers.get(name).map(|c| c.config.clone())
    }

    /// The config of the last container created whose name starts with `prefix`, even if it
    /// was removed since (e.g. a probe).
    pub fn created_container(&self, prefix: &str) -> Option<ContainerConfig> {
        self.lock()
            .created
            .iter()
            .rev()
            .find(|c| c.name.starts_with(prefix))
            .cloned()
    }

    /// The files uploaded into a container: `dir/path` → contents, with owner and mode in the
    /// key's suffix ` (uid:gid mode)`.
    pub fn files(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        self.lock()
            .containers
            .get(name)
            .map(|c| c.files.clone())
            .unwrap_or_default()
    }

    /// Holds the next create call (`create network …`, `create container …`) whose line starts
    /// with `prefix` until the returned gate opens.
    pub fn hold(&self, prefix: &str) -> Gate {
        let gate = Gate::new();
        self.lock().holds.push((prefix.to_owned(), gate.clone()));
        gate
    }

    /// Applies a create on the engine's side: at once, or, when `line` is held, in a task of
    /// its own once the gate opens (so a dropped caller does not stop it).
    async fn engine_side(
        &self,
        line: &str,
        apply: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let gate = {
            let mut state = self.lock();
            let held = state.holds.iter().position(|(p, _)| line.starts_with(p));
            held.map(|i| state.holds.remove(i).1)
        };
        let Some(gate) = gate else {
            return apply();
        };
        gate.reached.send_replace(true);
        let engine = tokio::spawn(async move {
            let _ = gate.open.subscribe().wait_for(|v| *v).await;
            let result = apply();
            gate.done.send_replace(true);
            result
        });
        engine
            .await
            .unwrap_or_else(|e| Err(conflict(line, &e.to_string())))
    }

    fn call(&self, line: String) -> Result<()> {
        let mut state = self.lock();
        let fail = state.fail_on.iter().any(|p| line.starts_with(p.as_str()));
        state.calls.push(line.clone());
        if state.unreachable {
            return Err(DockerError::EngineUnreachable {
                engine: Some("tcp://fake:2376 (TLS, DOCKER_HOST)".to_owned()),
                detail: "Connection refused (os error 111)".to_owned(),
                fix: "check that the engine runs there".to_owned(),
            });
        }
        if fail {
            return Err(DockerError::Engine {
                operation: "fake",
                object: line,
                detail: "injected failure".to_owned(),
            });
        }
        Ok(())
    }
}

fn matches(labels: &BTreeMap<String, String>, name: &str, filter: &Filter) -> bool {
    let labels_ok = filter.labels.iter().all(|cond| match cond.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(cond),
    });
    let name_ok = filter
        .name
        .as_ref()
        .is_none_or(|n| name.contains(n.as_str()));
    labels_ok && name_ok
}

fn conflict(object: &str, detail: &str) -> DockerError {
    DockerError::Engine {
        operation: "fake",
        object: object.to_owned(),
        detail: detail.to_owned(),
    }
}

impl DockerApi for RecordingDocker {
    async fn engine_info(&self) -> Result<EngineInfo> {
        self.call("engine info".to_owned())?;
        Ok(EngineInfo {
            id: "fake-engine".to_owned(),
            server_version: "fake".to_owned(),
            api_version: "1.41".to_owned(),
            runtimes: self.lock().runtimes.clone(),
            storage_driver: "overlay2".to_owned(),
            backing_filesystem: Some("extfs".to_owned()),
            cpus: Some(8),
        })
    }

    async fn image_info(&self, reference: &str) -> Result<Option<ImageInfo>> {
        self.call(format!("inspect image {reference}"))?;
        Ok(self.lock().images.get(reference).cloned())
    }

    async fn build_image(&self, request: BuildRequest, progress: ProgressSink<'_>) -> Result<()> {
        self.call(format!("build image {}", request.tag))?;
        progress(Progress::BuildStep {
            image: request.tag.clone(),
            step: 1,
            total: 1,
            text: "FROM fake".to_owned(),
        });
        self.lock().images.insert(
            request.tag,
            ImageInfo {
                labels: request.labels,
                user: String::new(),
            },
        );
        Ok(())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        let kind = if spec.internal { "internal" } else { "bridge" };
        let line = format!("create network {} {kind}", spec.name);
        self.call(line.clone())?;
        let (me, spec) = (self.clone(), spec.clone());
        self.engine_side(&line, move || {
            let mut state = me.lock();
            if state.networks.contains_key(&spec.name) {
                return Err(conflict(&spec.name, "network exists"));
            }
            state
                .networks
                .insert(spec.name.clone(), (spec.internal, spec.labels.clone()));
            let subnet = format!("10.{}.0.0/16", state.subnets.len() % 256);
            state.subnets.insert(spec.name.clone(), subnet);
            Ok(())
        })
        .await
    }

    async fn remove_network(&self, name: &str) -> Result<bool> {
        self.call(format!("remove network {name}"))?;
        let mut state = self.lock();
        if state
            .containers
            .values()
            .any(|c| c.networks.iter().any(|n| n == name))
        {
            return Err(conflict(name, "network has active endpoints"));
        }
        Ok(state.networks.remove(name).is_some())
    }

    async fn network_subnets(&self, name: &str) -> Result<Vec<Subnet>> {
        self.call(format!("inspect network {name}"))?;
        let state = self.lock();
        if !state.networks.contains_key(name) {
            return Err(conflict(name, "no such network"));
        }
        // The engine's way: the pool's first address is the gateway.
        Ok(state
            .subnets
            .get(name)
            .map(|cidr| Subnet {
                cidr: cidr.clone(),
                gateway: Some(format!("{}1", cidr.trim_end_matches("0/16"))),
            })
            .into_iter()
            .collect())
    }

    async fn list_networks(&self, filter: &Filter) -> Result<Vec<NetworkSummary>> {
        self.call(format!(
            "list networks {}",
            serde_json::to_string(filter).unwrap_or_default()
        ))?;
        Ok(self
            .lock()
            .networks
            .iter()
            .filter(|(name, (_, labels))| matches(labels, name, filter))
            .map(|(name, (_, labels))| NetworkSummary {
                name: name.clone(),
                labels: labels.clone(),
            })
            .collect())
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<()> {
        let network = config
            .network
            .as_ref()
            .map(|a| a.network.as_str())
            .unwrap_or("-");
        let line = format!("create container {} on {network}", config.name);
        self.call(line.clone())?;
        let (me, config, network) = (self.clone(), config.clone(), network.to_owned());
        self.engine_side(&line, move || {
            let mut state = me.lock();
            if state.containers.contains_key(&config.name) {
                return Err(conflict(&config.name, "container name in use"));
            }
            if network != "-" && !state.networks.contains_key(&network) {
                return Err(conflict(&network, "no such network"));
            }
            state.created.push(config.clone());
            state.containers.insert(
                config.name.clone(),
                FakeContainer {
                    labels: config.labels.clone(),
                    networks: config.network.iter().map(|a| a.network.clone()).collect(),
                    config: config.clone(),
                    ..Default::default()
                },
            );
            Ok(())
        })
        .await
    }

    async fn connect_network(&self, container: &str, attachment: &Attachment) -> Result<()> {
        self.call(format!("connect {container} to {}", attachment.network))?;
        let mut state = self.lock();
        if !state.networks.contains_key(&attachment.network) {
            return Err(conflict(&attachment.network, "no such network"));
        }
        let c = state
            .containers
            .get_mut(container)
            .ok_or_else(|| conflict(container, "no such container"))?;
        c.networks.push(attachment.network.clone());
        Ok(())
    }

    async fn upload(&self, container: &str, dir: &str, tar: Bytes) -> Result<()> {
        let mut archive = tar::Archive::new(&tar[..]);
        let mut files = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|e| conflict(container, &e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| conflict(container, &e.to_string()))?;
            let header = entry.header().clone();
            let path = entry
                .path()
                .map_err(|e| conflict(container, &e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data)
                .map_err(|e| conflict(container, &e.to_string()))?;
            let key = format!(
                "{}/{} ({}:{} {:o})",
                dir.trim_end_matches('/'),
                path,
                header.uid().unwrap_or(0),
                header.gid().unwrap_or(0),
                header.mode().unwrap_or(0)
            );
            files.insert(key, data);
        }
        let names: Vec<&str> = files
            .keys()
            .map(|k| k.split(" (").next().unwrap_or(k))
            .collect();
        self.call(format!(
            "upload to {container}:{dir} [{}]",
            names.join(", ")
        ))?;
        let mut state = self.lock();
        let c = state
            .containers
            .get_mut(container)
            .ok_or_else(|| conflict(container, "no such container"))?;
        c.files.extend(files);
        Ok(())
    }

    async fn upload_stream(&self, container: &str, dir: &str, mut tar: TarStream) -> Result<()> {
        use futures_util::StreamExt;
        let mut whole = Vec::new();
        while let Some(chunk) = tar.next().await {
            let chunk = chunk.map_err(|e| conflict(container, &format!("upload ended: {e}")))?;
            whole.extend_from_slice(&chunk);
        }
        self.upload(container, dir, Bytes::from(whole)).await
    }

    async fn download(&self, container: &str, path: &str) -> Result<TarStream> {
        self.call(format!("download {container}:{path}"))?;
        let item = match self.lock().downloads.get(&format!("{container}:{path}")) {
            Some(tar) => Ok(tar.clone()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no {path} in {container}"),
            )),
        };
        Ok(Box::pin(futures_util::stream::iter([item])))
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.call(format!("start {name}"))?;
        let mut state = self.lock();
        let exits = state.exits_on_start.contains(name);
        let mut ip = state.next_ip;
        let c = state
            .containers
            .get_mut(name)
            .ok_or_else(|| conflict(name, "no such container"))?;
        for (i, net) in c.networks.iter().enumerate() {
            c.addresses
                .insert(net.clone(), IpAddr::V4(Ipv4Addr::new(10, i as u8, 0, ip)));
            ip = ip.wrapping_add(1);
        }
        c.running = !exits;
        c.exit_code = exits.then_some(1);
        state.next_ip = ip;
        Ok(())
    }

    async fn inspect_container(&self, name: &str) -> Result<Option<ContainerInfo>> {
        self.call(format!("inspect {name}"))?;
        Ok(self.lock().containers.get(name).map(|c| ContainerInfo {
            running: c.running,
            exit_code: c.exit_code,
            addresses: c.addresses.clone(),
        }))
    }

    async fn wait_container(&self, name: &str) -> Result<i64> {
        self.call(format!("wait {name}"))?;
        Ok(self
            .lock()
            .containers
            .get(name)
            .and_then(|c| c.exit_code)
            .unwrap_or(0))
    }

    async fn remove_container(&self, name: &str) -> Result<bool> {
        self.call(format!("remove container {name}"))?;
        Ok(self.lock().containers.remove(name).is_some())
    }

    async fn list_containers(&self, filter: &Filter) -> Result<Vec<ContainerSummary>> {
        self.call(format!(
            "list containers {}",
            serde_json::to_string(filter).unwrap_or_default()
        ))?;
        Ok(self
            .lock()
            .containers
            .iter()
            .filter(|(name, c)| matches(&c.labels, name, filter))
            .map(|(name, c)| ContainerSummary {
                name: name.clone(),
                labels: c.labels.clone(),
                running: c.running,
            })
            .collect())
    }

    async fn list_volumes(&self, filter: &Filter) -> Result<Vec<VolumeSummary>> {
        self.call(format!(
            "list volumes {}",
            serde_json::to_string(filter).unwrap_or_default()
        ))?;
        Ok(self
            .lock()
            .volumes
            .iter()
            .filter(|(name, labels)| matches(labels, name, filter))
            .map(|(name, labels)| VolumeSummary {
                name: name.clone(),
                labels: labels.clone(),
            })
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<bool> {
        self.call(format!("remove volume {name}"))?;
        Ok(self.lock().volumes.remove(name).is_some())
    }

    async fn exec(
        &self,
        container: &str,
        spec: &ExecSpec,
        _stdin: Option<Bytes>,
    ) -> Result<ExecOutput> {
        self.call(format!(
            "exec in {container} as {}: {}",
            spec.user.as_deref().unwrap_or("-"),
            spec.cmd.first().map(String::as_str).unwrap_or("")
        ))?;
        Ok(ExecOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit_code: self.lock().exec_exit,
        })
    }

    async fn exec_interactive(
        &self,
        container: &str,
        spec: &ExecSpec,
        io: Interactive,
    ) -> Result<i64> {
        self.call(format!(
            "attach in {container} tty={}: {}",
            io.tty,
            spec.cmd.join(" ")
        ))?;
        Ok(self.lock().exec_exit)
    }

    async fn logs_tail(&self, name: &str, _lines: u32) -> Result<String> {
        self.call(format!("logs {name}"))?;
        Ok("fake log line\n".to_owned())
    }
}
