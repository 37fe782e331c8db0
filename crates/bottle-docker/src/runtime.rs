//! Choosing the agent's OCI runtime: gVisor (`runsc`) when the engine has it *and* it can run a
//! networked container, else `runc`.
//!
//! Registration is not enough: Debian's `runsc` runs containers with networking off but fails
//! a networked one ("cannot run with network enabled in root network namespace"). So the choice
//! is proven by a probe — a throw-away container under `runsc` on a throw-away internal network,
//! both labelled so cleanup finds them if the probe is interrupted — and any failure falls back
//! to `runc` with a warning. A broken runtime never breaks a start.
//!
//! `prepare` must create nothing (it also runs for `--dry-run` and before the y/N question), so
//! it only reads the engine's registered runtimes ([`registered`]); the probe ([`detect`]) runs
//! at launch, once the images it needs exist, and its objects carry the bottle's labels so that
//! a teardown interrupting it removes them too.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::api::{Attachment, ContainerConfig, DockerApi, NetworkSpec};
use crate::names::{NAME_PREFIX, ObjectRole, label};
use crate::plan::Runtime;

/// Set to `runc` to skip gVisor (and its probe).
pub const RUNTIME_ENV: &str = "CLAUDE_BOTTLE_RUNTIME";

/// The runtime chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeChoice {
    /// The runtime.
    pub runtime: Runtime,
    /// Why, one sentence.
    pub reason: String,
    /// Set when gVisor was wanted but could not be used.
    pub warning: Option<String>,
    /// `runsc` is registered but not yet proven: launch runs the networked probe and falls back
    /// to `runc` (with a warning) if it fails.
    pub probe_at_launch: bool,
}

impl RuntimeChoice {
    fn runc(reason: impl Into<String>, warning: Option<String>) -> Self {
        RuntimeChoice {
            runtime: Runtime::Runc,
            reason: reason.into(),
            warning,
            probe_at_launch: false,
        }
    }
}

/// A local image and a command that exits quickly in it, for the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeImage {
    /// The image.
    pub image: String,
    /// The command.
    pub cmd: Vec<String>,
}

/// What `prepare` may know without creating anything: `runc` when forced, when the engine cannot
/// be read or when `runsc` is not registered; otherwise `runsc`, marked
/// [`probe_at_launch`](RuntimeChoice::probe_at_launch). Reads the engine's info only.
pub async fn registered<D: DockerApi>(api: &D, forced: Option<&str>) -> RuntimeChoice {
    if forced == Some("runc") {
        return RuntimeChoice::runc(format!("{RUNTIME_ENV}=runc"), None);
    }
    match api.engine_info().await {
        Ok(info) if info.runtimes.iter().any(|r| r == "runsc") => RuntimeChoice {
            runtime: Runtime::Runsc,
            reason: "gVisor (runsc) is registered; a networked probe at launch confirms it, else \
                     the agent runs under runc with a warning"
                .to_owned(),
            warning: None,
            probe_at_launch: true,
        },
        Ok(_) => RuntimeChoice::runc("gVisor (runsc) is not registered with the engine", None),
        Err(e) => RuntimeChoice::runc(
            "the engine's runtimes could not be read",
            Some(format!(
                "could not read the engine's runtimes ({e}); the agent runs under runc"
            )),
        ),
    }
}

/// Chooses the agent's runtime, creating a probe container when `runsc` is registered: call it
/// at launch, never from `prepare`. `probe_image` runs under `runsc` on an internal network;
/// `labels` go on the probe's objects (managed, launcher, test labels); `forced` is the value of
/// [`RUNTIME_ENV`].
pub async fn detect<D: DockerApi>(
    api: &D,
    probe_image: Option<&ProbeImage>,
    labels: &BTreeMap<String, String>,
    forced: Option<&str>,
) -> RuntimeChoice {
    if forced == Some("runc") {
        return RuntimeChoice::runc(format!("{RUNTIME_ENV}=runc"), None);
    }
    let info = match api.engine_info().await {
        Ok(info) => info,
        Err(e) => {
            return RuntimeChoice::runc(
                "the engine's runtimes could not be read",
                Some(format!(
                    "could not read the engine's runtimes ({e}); the agent runs under runc"
                )),
            );
        }
    };
    if !info.runtimes.iter().any(|r| r == "runsc") {
        return RuntimeChoice::runc("gVisor (runsc) is not registered with the engine", None);
    }
    let Some(image) = probe_image else {
        return RuntimeChoice::runc(
            "no local image to test gVisor with",
            Some("gVisor (runsc) is registered but could not be tested (no local image yet); the agent runs under runc".to_owned()),
        );
    };
    match probe(api, image, labels).await {
        Ok(()) => RuntimeChoice {
            runtime: Runtime::Runsc,
            reason: "gVisor (runsc) is registered and ran a networked probe".to_owned(),
            warning: None,
            probe_at_launch: false,
        },
        // The warning is one line a person reads; the engine's error (often several lines of
        // OCI runtime detail) goes to the debug log (`claude-bottle -v`).
        Err(why) => {
            tracing::debug!(error = %why, "gVisor (runsc) failed its networked probe");
            RuntimeChoice::runc(
                "gVisor (runsc) failed its networked probe",
                Some(
                    "gVisor (runsc) cannot run a networked container on this engine; the agent \
                     runs under runc (-v shows the engine's error)"
                        .to_owned(),
                ),
            )
        }
    }
}

async fn probe<D: DockerApi>(
    api: &D,
    image: &ProbeImage,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    let suffix: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..8)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect()
    };
    let name = format!("{NAME_PREFIX}probe-{suffix}");
    let mut probe_labels = labels.clone();
    for (k, v) in ObjectRole::Container(bottle_core::Role::Probe).labels() {
        probe_labels.insert(k.to_owned(), v.to_owned());
    }
    probe_labels.insert(label::MANAGED.to_owned(), label::MANAGED_VALUE.to_owned());
    let network = NetworkSpec {
        name: name.clone(),
        internal: true,
        labels: probe_labels.clone(),
    };
    let result = async {
        api.create_network(&network)
            .await
            .map_err(|e| e.to_string())?;
        api.create_container(&ContainerConfig {
            name: name.clone(),
            image: image.image.clone(),
            cmd: Some(image.cmd.clone()),
            labels: probe_labels.clone(),
            network: Some(Attachment {
                network: name.clone(),
                aliases: Vec::new(),
            }),
            runtime: Some("runsc".to_owned()),
            cap_drop: vec!["ALL".to_owned()],
            security_opt: vec!["no-new-privileges".to_owned()],
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        api.start_container(&name)
            .await
            .map_err(|e| e.to_string())?;
        let code = tokio::time::timeout(Duration::from_secs(60), api.wait_container(&name))
            .await
            .map_err(|_| "the probe did not finish within 60s".to_owned())?
            .map_err(|e| e.to_string())?;
        if code == 0 {
            Ok(())
        } else {
            let log = api.logs_tail(&name, 5).await.unwrap_or_default();
            Err(format!("the probe exited with {code}: {}", log.trim()))
        }
    }
    .await;
    let _ = api.remove_container(&name).await;
    let _ = api.remove_network(&name).await;
    result
}
