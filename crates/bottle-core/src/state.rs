//! Resume state: `$CLAUDE_BOTTLE_HOME/state/<identity>/state.json`.
//!
//! The lifecycle driver writes it before launch creates anything, removes it after a clean exit
//! and keeps it otherwise (a crash, a signal, a non-zero exit), so `resume <identity>` can
//! continue the bottle. No secret of the bottle's is ever written here. Next to the state, a
//! kept bottle whose session ran holds what [`crate::resume`] saved: its workspace and Claude
//! Code's conversations, as archives only the user can read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::resume::{DEFAULT_SAVE_LIMIT, SAVED_FILE, Saved, SavedSession};

/// The state file's name inside a bottle's state folder.
pub const STATE_FILE: &str = "state.json";

/// What `resume` needs to continue a bottle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BottleState {
    /// The bottle's identity.
    pub identity: Identity,
    /// The agent's name.
    pub agent: String,
    /// The user's working directory at start.
    pub cwd: PathBuf,
    /// Whether the working directory was copied in (`--cwd`).
    pub copy_cwd: bool,
    /// The backend that ran it.
    pub backend: String,
    /// When it was (last) started.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// The image (or equivalent) it ran, when the backend has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Whether Claude Code ran with `--remote-control`.
    #[serde(default)]
    pub remote_control: bool,
}

/// The `state/` folder under the claude-bottle home.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
    save_limit: u64,
}

impl StateStore {
    /// The store under `bottle_home` (`$CLAUDE_BOTTLE_HOME`); state goes to `bottle_home/state/`.
    pub fn new(bottle_home: impl AsRef<Path>) -> Self {
        StateStore {
            root: bottle_home.as_ref().join("state"),
            save_limit: DEFAULT_SAVE_LIMIT,
        }
    }

    /// The same store, saving at most `bytes` per archive ([`crate::resume`]; the CLI reads
    /// [`SAVE_LIMIT_VAR`](crate::resume::SAVE_LIMIT_VAR)).
    pub fn with_save_limit(mut self, bytes: u64) -> Self {
        self.save_limit = bytes;
        self
    }

    /// The most a save writes per archive.
    pub fn save_limit(&self) -> u64 {
        self.save_limit
    }

    /// What a save kept for `identity`, if anything ([`SAVED_FILE`]).
    pub fn saved(&self, identity: &Identity) -> Result<Option<SavedSession>> {
        let path = self.dir(identity).join(SAVED_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::StateIo {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::StateFormat { path, source })
    }

    /// Records what a save kept, atomically, or forgets it when nothing was kept.
    pub fn write_saved(&self, identity: &Identity, saved: &SavedSession) -> Result<()> {
        let path = self.dir(identity).join(SAVED_FILE);
        if saved.saved.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::StateIo {
                    action: "remove",
                    path,
                    source: e,
                }),
                _ => Ok(()),
            };
        }
        let json = serde_json::to_vec_pretty(saved).map_err(|source| Error::StateFormat {
            path: path.clone(),
            source,
        })?;
        write_atomically(&path, &json)
    }

    /// The size of what a save kept for `identity` (its archives), 0 when nothing.
    pub fn saved_bytes(&self, identity: &Identity) -> u64 {
        let dir = self.dir(identity);
        Saved::ALL
            .iter()
            .filter_map(|what| fs::metadata(dir.join(what.archive())).ok())
            .map(|meta| meta.len())
            .sum()
    }

    /// The `state/` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state folder of one bottle (it may not exist).
    pub fn dir(&self, identity: &Identity) -> PathBuf {
        self.root.join(identity.as_str())
    }

    /// Writes (or replaces) a bottle's state atomically: a crash mid-write leaves the old file.
    pub fn write(&self, state: &BottleState) -> Result<PathBuf> {
        let dir = self.dir(&state.identity);
        create_private_dir(&dir).map_err(|source| Error::StateIo {
            action: "write",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(state).map_err(|source| Error::StateFormat {
            path: path.clone(),
            source,
        })?;
        write_atomically(&path, &json)?;
        Ok(dir)
    }

    /// Reads a bottle's state; [`Error::StateNotFound`] when none is kept.
    pub fn load(&self, identity: &Identity) -> Result<BottleState> {
        let dir = self.dir(identity);
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::StateNotFound {
                    identity: identity.to_string(),
                    dir,
                });
            }
            Err(source) => {
                return Err(Error::StateIo {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| Error::StateFormat { path, source })
    }

    /// Whether state is kept for `identity`.
    pub fn exists(&self, identity: &Identity) -> bool {
        self.dir(identity).join(STATE_FILE).is_file()
    }

    /// Forgets a bottle: removes its state folder. Removing what is not there is not an error.
    pub fn remove(&self, identity: &Identity) -> Result<()> {
        let dir = self.dir(identity);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::StateIo {
                action: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// Every kept state, sorted by identity. Folders that are not identities are skipped; a
    /// corrupt state file is an error naming it.
    pub fn list(&self) -> Result<Vec<BottleState>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::StateIo {
                    action: "list",
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut states = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::StateIo {
                action: "list",
                path: self.root.clone(),
                source,
            })?;
            let Some(identity) = entry
                .file_name()
                .to_str()
                .and_then(|n| Identity::parse(n).ok())
            else {
                continue;
            };
            if self.exists(&identity) {
                states.push(self.load(&identity)?);
            }
        }
        states.sort_by(|a, b| a.identity.cmp(&b.identity));
        Ok(states)
    }
}

/// Writes `path` through a temporary file next to it, readable by the user alone: a crash
/// mid-write leaves the old file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    crate::resume::create_private_file(&tmp)
        .and_then(|mut file| io::Write::write_all(&mut file, bytes))
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|source| Error::StateIo {
            action: "write",
            path: path.to_owned(),
            source,
        })
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        // The state folder is the user's business alone.
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
