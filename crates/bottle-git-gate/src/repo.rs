//! The gate's state directory and the bare repositories in it.
//!
//! ```text
//! <state>/repos/<name>.git         one bare repository per entry: what the agent is served
//! <state>/hooks/pre-receive        the hook every repository runs (core.hooksPath)
//! <state>/ssh/<name>.known_hosts   the entry's pinned host key, the only line
//! <state>/home/                    HOME of every git and ssh the gate runs (empty)
//! ```
//!
//! Keys are never copied here: ssh reads each entry's `IdentityFile` where it is.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use bottle_manifest::GitEntry;

use crate::error::GateError;
use crate::upstream;

/// The environment variable naming the entry a `pre-receive` hook runs for; the server sets it
/// for each `git receive-pack`.
pub const ENTRY_ENV: &str = "BOTTLE_GIT_GATE_ENTRY";

/// The environment variable naming the gate's config file (for `pre-receive` and `health`).
pub const CONFIG_ENV: &str = "BOTTLE_GIT_GATE_CONFIG";

/// Where the gate keeps what it serves and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    state: PathBuf,
}

impl Layout {
    /// The layout under `state`.
    pub fn new(state: impl Into<PathBuf>) -> Layout {
        Layout {
            state: state.into(),
        }
    }

    /// The state directory.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// The bare repository of entry `name`.
    pub fn repo(&self, name: &str) -> PathBuf {
        self.state.join("repos").join(format!("{name}.git"))
    }

    /// The hooks every repository runs.
    pub fn hooks(&self) -> PathBuf {
        self.state.join("hooks")
    }

    /// The `known_hosts` file of entry `name`.
    pub fn known_hosts(&self, name: &str) -> PathBuf {
        self.state.join("ssh").join(format!("{name}.known_hosts"))
    }

    /// `HOME` for git and ssh: empty, so nothing of a user's setup is read.
    pub fn home(&self) -> PathBuf {
        self.state.join("home")
    }
}

/// Repository settings, set on every start (so an old repository gets today's).
///
/// git's own `receive.denyNonFastForwards` and `receive.denyDeletes` are *off*: they are
/// checked after the pre-receive hook, which has already forwarded the push upstream, so a
/// refusal there would leave the upstream ahead of the gate. The hook is the one place that
/// decides (and it refuses by default).
const REPO_CONFIG: &[(&str, &str)] = &[
    // Malformed objects never enter (and so never reach an upstream).
    ("transfer.fsckObjects", "true"),
    ("receive.denyNonFastForwards", "false"),
    ("receive.denyDeletes", "false"),
    // Push options (`git push -o`) reach the hook, which scans and forwards them.
    ("receive.advertisePushOptions", "true"),
    // The gate moves its refs from the upstream only; no reflog to grow.
    ("core.logAllRefUpdates", "false"),
    ("uploadpack.allowFilter", "true"),
    ("gc.autoDetach", "false"),
];

/// Make `state` ready to serve `entries`: directories, one bare repository each (kept across
/// restarts), the settings above, each entry's `known_hosts`, and the hook that runs `exe
/// pre-receive`. Idempotent.
///
/// # Errors
///
/// [`GateError::Io`] or [`GateError::Git`].
pub fn prepare(layout: &Layout, entries: &[GitEntry], exe: &Path) -> Result<(), GateError> {
    for dir in [
        layout.state().to_path_buf(),
        layout.state().join("repos"),
        layout.hooks(),
        layout.state().join("ssh"),
        layout.home(),
    ] {
        create_private_dir(&dir)?;
    }
    write_hook(layout, exe)?;
    for entry in entries {
        let repo = layout.repo(&entry.name);
        if !repo.join("HEAD").is_file() {
            git(
                layout,
                &[
                    "init".as_ref(),
                    "--bare".as_ref(),
                    "--quiet".as_ref(),
                    repo.as_os_str(),
                ],
            )?;
        }
        let hooks = layout.hooks();
        let mut settings: Vec<(&str, &str)> = REPO_CONFIG.to_vec();
        let hooks = hooks.to_string_lossy();
        settings.push(("core.hooksPath", &hooks));
        for (key, value) in settings {
            git(
                layout,
                &[
                    "--git-dir".as_ref(),
                    repo.as_os_str(),
                    "config".as_ref(),
                    key.as_ref(),
                    value.as_ref(),
                ],
            )?;
        }
        write_file(
            &layout.known_hosts(&entry.name),
            upstream::known_hosts_line(entry).as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// The pre-receive hook: a two-line script handing the push to `exe pre-receive`, which reads
/// the entry and the config from the environment the server gave `git receive-pack`.
pub fn hook_script(exe: &Path) -> String {
    let exe = exe.to_string_lossy().replace('\'', "'\\''");
    format!(
        "#!/bin/sh\n# Written by bottle-git-gate: every push is checked (ref policy, secrets) and forwarded upstream before any ref here moves.\nexec '{exe}' pre-receive\n"
    )
}

fn write_hook(layout: &Layout, exe: &Path) -> Result<(), GateError> {
    write_file(
        &layout.hooks().join("pre-receive"),
        hook_script(exe).as_bytes(),
        0o755,
    )
}

/// Write `path` whole (via a temporary file and a rename, so a hook is never half-written).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), GateError> {
    let io = |source| GateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn create_private_dir(dir: &Path) -> Result<(), GateError> {
    let io = |source| GateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Run a local git command of the gate's own (no upstream) with the gate's environment.
fn git(layout: &Layout, args: &[&std::ffi::OsStr]) -> Result<(), GateError> {
    let mut command = Command::new("git");
    command
        .env_clear()
        .envs(upstream::base_env(layout))
        .args(args);
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command.output().map_err(|source| GateError::Io {
        path: PathBuf::from("git"),
        source,
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(GateError::Git {
            command: format!("git {shown}"),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
