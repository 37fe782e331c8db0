//! Removing engine objects, for teardown and cleanup alike: kind after kind in the order given
//! (containers before the networks they are attached to), the objects of one kind at once,
//! skipping what is already gone, going on past a failure, and reporting each removal.

use futures_util::{StreamExt, stream};
use serde::Serialize;

use crate::api::{DockerApi, Progress, ProgressSink};
use crate::error::{DockerError, Result};

/// The kind of an engine object a bottle leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A volume.
    Volume,
    /// A network.
    Network,
}

impl ObjectKind {
    /// `container`, `volume`, `network`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Container => "container",
            ObjectKind::Volume => "volume",
            ObjectKind::Network => "network",
        }
    }
}

/// What teardown or cleanup removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
}

/// How many removals of one kind run at once: enough that a bottle's containers go together
/// and a cleanup of many bottles does not queue behind each one, few enough not to flood the
/// engine.
const AT_ONCE: usize = 8;

/// Removes `objects`: each run of one kind at once (up to [`AT_ONCE`]), the runs in the order
/// given — containers before the networks they are attached to. Already-gone objects are
/// skipped, so this is idempotent; a failure does not stop the rest. Each removal is reported
/// to `progress` in the order given, as soon as it and those before it are done; the first
/// failure is returned after all were tried.
pub async fn remove_all<D: DockerApi>(
    api: &D,
    objects: impl IntoIterator<Item = (ObjectKind, String)>,
    progress: ProgressSink<'_>,
) -> Result<Vec<Removed>> {
    let mut runs: Vec<(ObjectKind, Vec<String>)> = Vec::new();
    for (kind, name) in objects {
        match runs.last_mut() {
            Some((last, names)) if *last == kind => names.push(name),
            _ => runs.push((kind, vec![name])),
        }
    }
    let mut removed = Vec::new();
    let mut first_error: Option<DockerError> = None;
    for (kind, names) in runs {
        let mut results = stream::iter(names)
            .map(|name| async move {
                let result = match kind {
                    ObjectKind::Container => api.remove_container(&name).await,
                    ObjectKind::Volume => api.remove_volume(&name).await,
                    ObjectKind::Network => api.remove_network(&name).await,
                };
                (name, result)
            })
            .buffered(AT_ONCE);
        while let Some((name, result)) = results.next().await {
            match result {
                Ok(true) => {
                    progress(Progress::Removed {
                        kind: kind.as_str().to_owned(),
                        name: name.clone(),
                    });
                    removed.push(Removed { kind, name });
                }
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}
