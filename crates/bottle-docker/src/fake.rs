//! A recording, in-memory [`DockerApi`] for tests: it keeps containers, networks, volumes and
//! images the way an engine would (names unique, a network with endpoints cannot be removed,
//! addresses appear at start), records every call as a line, and fails on request.
//!
//! ```
//! use bottle_docker::api::{DockerApi, NetworkSpec};
//! use bottle_docker::fake::RecordingDocker;
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let docker = RecordingDocker::new();
//! let net = NetworkSpec { name: "n".into(), internal: true, labels: Default::default() };
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
    Progress, ProgressSink, VolumeSummary,
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
    exits_on_start: BTreeSet<String>,
    health: Option<u16>,
    exec_exit: i64,
    next_ip: u8,
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
    /// An empty engine with the `runc` runtime and a healthy egress.
    pub fn new() -> Self {
        RecordingDocker {
            state: Arc::new(Mutex::new(State {
                runtimes: vec!["runc".to_owned()],
                health: Some(200),
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

    /// Makes every call whose line starts with `prefix` fail (after being recorded).
    pub fn fail_on(&self, prefix: &str) {
        self.lock().fail_on.push(prefix.to_owned());
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

    /// The egress health status to report (`None`: nothing answers).
    pub fn set_health(&self, status: Option<u16>) {
        self.lock().health = status;
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

    /// The files uploaded into a container: `dir/path` → contents, with owner and mode in the
    /// key's suffix ` (uid:gid mode)`.
    pub fn files(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        self.lock()
            .containers
            .get(name)
            .map(|c| c.files.clone())
            .unwrap_or_default()
    }

    fn call(&self, line: String) -> Result<()> {
        let mut state = self.lock();
        let fail = state.fail_on.iter().any(|p| line.starts_with(p.as_str()));
        state.calls.push(line.clone());
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
            server_version: "fake".to_owned(),
            api_version: "1.41".to_owned(),
            runtimes: self.lock().runtimes.clone(),
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
        self.call(format!("create network {} {kind}", spec.name))?;
        let mut state = self.lock();
        if state.networks.contains_key(&spec.name) {
            return Err(conflict(&spec.name, "network exists"));
        }
        state
            .networks
            .insert(spec.name.clone(), (spec.internal, spec.labels.clone()));
        Ok(())
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
        self.call(format!("create container {} on {network}", config.name))?;
        let mut state = self.lock();
        if state.containers.contains_key(&config.name) {
            return Err(conflict(&config.name, "container name in use"));
        }
        if network != "-" && !state.networks.contains_key(network) {
            return Err(conflict(network, "no such network"));
        }
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

    async fn egress_health(&self, addr: IpAddr, port: u16) -> Result<Option<u16>> {
        self.call(format!("health {addr}:{port}"))?;
        Ok(self.lock().health)
    }
}
