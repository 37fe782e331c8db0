//! Creation requests that outlive a cancelled launch, and the wait for them before teardown.
//!
//! Dropping a launch future (Ctrl-C) does not recall an HTTP request the engine already has: a
//! `create network` in flight completes *after* the drop. If teardown listed objects by label
//! right away, it would miss that network and leave it behind. So every create the launch
//! issues runs in a task of its own, registered under the bottle's identity; dropping the launch
//! detaches the task without cancelling it, and teardown first waits for the identity's tasks
//! ([`InFlight::settle`]) and only then lists and removes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::api::{
    Attachment, BuildRequest, ContainerConfig, ContainerInfo, ContainerSummary, DockerApi,
    EngineInfo, ExecOutput, ExecSpec, Filter, ImageInfo, Interactive, NetworkSpec, NetworkSummary,
    ProgressSink, Subnet, TarStream, VolumeSummary,
};
use crate::error::{DockerError, Result};

/// How long teardown waits for creates in flight before it goes ahead anyway.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Create requests in flight, by bottle identity.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    tasks: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

impl InFlight {
    fn register(&self, identity: &str, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let list = tasks.entry(identity.to_owned()).or_default();
        list.retain(|t| !t.is_finished());
        list.push(task);
    }

    /// Waits until every create issued for `identity` so far has completed, at most `limit`.
    /// `false`: some were still running when the time was up.
    pub(crate) async fn settle(&self, identity: &str, limit: Duration) -> bool {
        let pending = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(identity)
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + limit;
        let mut settled = true;
        for task in pending {
            // A task that panicked or was aborted is done too; only the deadline matters.
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                settled = false;
            }
        }
        settled
    }
}

/// The engine seam for one launch: creates run as tracked tasks (see the module docs), every
/// other call goes straight through.
pub(crate) struct Tracked<'a, D> {
    pub(crate) api: &'a D,
    pub(crate) identity: &'a str,
    pub(crate) inflight: &'a InFlight,
}

impl<D: DockerApi + Clone + 'static> Tracked<'_, D> {
    /// Runs `create` on a task registered under the identity and waits for its result. If this
    /// future is dropped, the task runs on; only the result is lost.
    async fn detached<F>(&self, what: &str, create: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            // The receiver is gone when the launch was cancelled; teardown still waits for us.
            let _ = tx.send(create.await);
        });
        self.inflight.register(self.identity, task);
        rx.await.unwrap_or_else(|_| {
            Err(DockerError::Engine {
                operation: "create",
                object: what.to_owned(),
                detail: "the request's task ended without an answer".to_owned(),
            })
        })
    }
}

impl<D: DockerApi + Clone + 'static> DockerApi for Tracked<'_, D> {
    async fn engine_info(&self) -> Result<EngineInfo> {
        self.api.engine_info().await
    }
    async fn image_info(&self, reference: &str) -> Result<Option<ImageInfo>> {
        self.api.image_info(reference).await
    }
    async fn build_image(&self, request: BuildRequest, progress: ProgressSink<'_>) -> Result<()> {
        self.api.build_image(request, progress).await
    }
    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        let (api, owned) = (self.api.clone(), spec.clone());
        self.detached(&spec.name, async move { api.create_network(&owned).await })
            .await
    }
    async fn remove_network(&self, name: &str) -> Result<bool> {
        self.api.remove_network(name).await
    }
    async fn list_networks(&self, filter: &Filter) -> Result<Vec<NetworkSummary>> {
        self.api.list_networks(filter).await
    }
    async fn network_subnets(&self, name: &str) -> Result<Vec<Subnet>> {
        self.api.network_subnets(name).await
    }
    async fn create_container(&self, config: &ContainerConfig) -> Result<()> {
        let (api, owned) = (self.api.clone(), config.clone());
        self.detached(
            &config.name,
            async move { api.create_container(&owned).await },
        )
        .await
    }
    async fn connect_network(&self, container: &str, attachment: &Attachment) -> Result<()> {
        self.api.connect_network(container, attachment).await
    }
    async fn upload(&self, container: &str, dir: &str, tar: Bytes) -> Result<()> {
        self.api.upload(container, dir, tar).await
    }
    async fn upload_stream(&self, container: &str, dir: &str, tar: TarStream) -> Result<()> {
        self.api.upload_stream(container, dir, tar).await
    }
    async fn download(&self, container: &str, path: &str) -> Result<TarStream> {
        self.api.download(container, path).await
    }
    async fn start_container(&self, name: &str) -> Result<()> {
        self.api.start_container(name).await
    }
    async fn inspect_container(&self, name: &str) -> Result<Option<ContainerInfo>> {
        self.api.inspect_container(name).await
    }
    async fn wait_container(&self, name: &str) -> Result<i64> {
        self.api.wait_container(name).await
    }
    async fn remove_container(&self, name: &str) -> Result<bool> {
        self.api.remove_container(name).await
    }
    async fn list_containers(&self, filter: &Filter) -> Result<Vec<ContainerSummary>> {
        self.api.list_containers(filter).await
    }
    async fn list_volumes(&self, filter: &Filter) -> Result<Vec<VolumeSummary>> {
        self.api.list_volumes(filter).await
    }
    async fn remove_volume(&self, name: &str) -> Result<bool> {
        self.api.remove_volume(name).await
    }
    async fn exec(
        &self,
        container: &str,
        spec: &ExecSpec,
        stdin: Option<Bytes>,
    ) -> Result<ExecOutput> {
        self.api.exec(container, spec, stdin).await
    }
    async fn exec_interactive(
        &self,
        container: &str,
        spec: &ExecSpec,
        io: Interactive,
    ) -> Result<i64> {
        self.api.exec_interactive(container, spec, io).await
    }
    async fn logs_tail(&self, name: &str, lines: u32) -> Result<String> {
        self.api.logs_tail(name, lines).await
    }
}
