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
//!
//! The probe costs a container and a network (about two seconds on a busy machine), so its
//! verdict is kept across runs in a [`Verdicts`] file, keyed by the engine's identity, version
//! and registered runtimes, for at most [`VERDICT_TTL`]: a start on a known engine does not
//! probe again, and a change to the engine (a new runtime, an upgrade, another engine) or a day
//! passing does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::api::{Attachment, ContainerConfig, DockerApi, EngineInfo, LogRotation, NetworkSpec};
use crate::error::DockerError;
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

/// What `prepare` may know without creating anything: `runc` when forced, when the engine
/// could not be read or when `runsc` is not registered; otherwise `runsc`, marked
/// [`probe_at_launch`](RuntimeChoice::probe_at_launch). Pure: `info` is the engine's answer to
/// the one read `prepare` makes.
pub fn registered(
    info: std::result::Result<&EngineInfo, &DockerError>,
    forced: Option<&str>,
) -> RuntimeChoice {
    if forced == Some("runc") {
        return RuntimeChoice::runc(format!("{RUNTIME_ENV}=runc"), None);
    }
    match info {
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
    verdicts: Option<&Verdicts>,
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
    let engine = EngineKey::of(&info);
    let now = SystemTime::now();
    if let Some(verdict) = verdicts.and_then(|v| v.load(&engine, now)) {
        return verdict.choice(true);
    }
    let verdict = Verdict {
        engine: engine.0.clone(),
        probed_at: unix_seconds(now),
        failure: probe(api, image, labels).await.err(),
    };
    if let Some(verdicts) = verdicts
        && let Err(e) = verdicts.store(&verdict)
    {
        // Only the next start's speed depends on it.
        tracing::debug!("could not keep the runtime probe's verdict: {e}");
    }
    verdict.choice(false)
}

/// How long a probe's verdict stands before a launch probes again.
pub const VERDICT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How many engines' verdicts the file keeps.
const KEPT_ENGINES: usize = 16;

/// What identifies an engine's runtime set: its ID, version and registered runtimes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EngineKey(String);

impl EngineKey {
    fn of(info: &crate::api::EngineInfo) -> Self {
        EngineKey(format!(
            "{} {} {}",
            info.id,
            info.server_version,
            info.runtimes.join(",")
        ))
    }
}

/// One probe's outcome on one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Verdict {
    engine: String,
    /// Seconds since the Unix epoch.
    probed_at: u64,
    /// Why `runsc` failed the probe; `None` when it passed.
    failure: Option<String>,
}

impl Verdict {
    fn choice(&self, remembered: bool) -> RuntimeChoice {
        let when = if remembered {
            " (remembered from an earlier launch)"
        } else {
            ""
        };
        match &self.failure {
            None => RuntimeChoice {
                runtime: Runtime::Runsc,
                reason: format!("gVisor (runsc) is registered and ran a networked probe{when}"),
                warning: None,
                probe_at_launch: false,
            },
            // The warning is one line a person reads; the engine's error (often several lines
            // of OCI runtime detail) goes to the debug log (`claude-bottle -v`).
            Some(why) => {
                tracing::debug!(error = %why, "gVisor (runsc) failed its networked probe{when}");
                RuntimeChoice::runc(
                    format!("gVisor (runsc) failed its networked probe{when}"),
                    Some(
                        "gVisor (runsc) cannot run a networked container on this engine; the \
                         agent runs under runc (-v shows the engine's error)"
                            .to_owned(),
                    ),
                )
            }
        }
    }
}

/// The file that keeps probe verdicts across runs (a JSON list, one entry per engine).
/// Unreadable or malformed content counts as no verdict: the cost is one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts {
    path: PathBuf,
}

impl Verdicts {
    /// Verdicts kept in `path` (created on the first store, with its folder).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Verdicts { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Vec<Verdict> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The verdict for `engine`, unless it is older than [`VERDICT_TTL`] (or from the future:
    /// a clock set back must not keep a verdict forever).
    fn load(&self, engine: &EngineKey, now: SystemTime) -> Option<Verdict> {
        let now = unix_seconds(now);
        self.read().into_iter().find(|v| {
            v.engine == engine.0 && v.probed_at <= now && now - v.probed_at < VERDICT_TTL.as_secs()
        })
    }

    /// Keeps `verdict`, replacing the engine's previous one; written whole and renamed into
    /// place, so a concurrent reader sees the old file or the new one.
    fn store(&self, verdict: &Verdict) -> std::io::Result<()> {
        let mut all: Vec<Verdict> = self
            .read()
            .into_iter()
            .filter(|v| v.engine != verdict.engine)
            .collect();
        all.push(verdict.clone());
        // One launcher sees few engines; the oldest verdicts go first.
        let keep_from = all.len().saturating_sub(KEPT_ENGINES);
        all.drain(..keep_from);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".verdicts.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&all)?)?;
        std::fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
    let network = NetworkSpec::internal(name.clone(), probe_labels.clone());
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
            log: Some(LogRotation::DEFAULT),
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
