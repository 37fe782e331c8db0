//! The host as `prepare` sees it: an environment snapshot and a few folders, passed explicitly so
//! that checks are pure functions of their inputs (and tests isolate them).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Names the backend (`docker` when unset); a `--backend` flag wins over it.
pub const ENV_BACKEND: &str = "CLAUDE_BOTTLE_BACKEND";
/// The claude-bottle home (default `~/.claude-bottle`): manifests and `state/`.
pub const ENV_HOME: &str = "CLAUDE_BOTTLE_HOME";

/// The host inputs of `prepare` and of secret resolution.
#[derive(Clone)]
pub struct HostContext {
    /// The host environment (values are sensitive: `Debug` shows names only).
    pub env: BTreeMap<String, String>,
    /// The user's home folder (for `~` expansion).
    pub home: PathBuf,
    /// The host's skills folder (`~/.claude/skills`).
    pub skills_dir: PathBuf,
    /// `$CLAUDE_BOTTLE_HOME` (default `~/.claude-bottle`).
    pub bottle_home: PathBuf,
}

impl HostContext {
    /// A context for `home` and `env`: skills under `home/.claude/skills`, the claude-bottle home
    /// from `CLAUDE_BOTTLE_HOME` or `home/.claude-bottle`.
    pub fn new(home: impl Into<PathBuf>, env: BTreeMap<String, String>) -> Self {
        let home = home.into();
        let bottle_home = env
            .get(ENV_HOME)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".claude-bottle"));
        HostContext {
            skills_dir: home.join(".claude").join("skills"),
            bottle_home,
            env,
            home,
        }
    }

    /// The running process's environment and `$HOME`. Variables that are not UTF-8 are left
    /// out (no manifest can name them).
    pub fn from_process() -> Self {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let home = env
            .get("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        Self::new(home, env)
    }

    /// The theme of the host's Claude Code: `theme` of `~/.claude/settings.json`, else of
    /// `~/.claude.json` (the order Claude Code itself reads them in). Only that key is read,
    /// and only a plain name (`dark`, `light-daltonized`) is taken: nothing else of the host's
    /// files reaches the bottle. Unreadable files or other values count as no theme.
    pub fn claude_theme(&self) -> Option<String> {
        [
            self.home.join(".claude").join("settings.json"),
            self.home.join(".claude.json"),
        ]
        .iter()
        .find_map(|file| {
            let text = std::fs::read(file).ok()?;
            let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
            let theme = value.get("theme")?.as_str()?;
            let plain = !theme.is_empty()
                && theme.len() <= 40
                && theme.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            plain.then(|| theme.to_owned())
        })
    }

    /// A host variable, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// `path` with a leading `~` replaced by the home folder.
    pub fn expand_tilde(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("~") {
            Ok(rest) => self.home.join(rest),
            Err(_) => path.to_path_buf(),
        }
    }

    /// The host folder of skill `name`, or `None` when `name` is not a single plain folder name
    /// (so it can never point outside the skills folder).
    pub fn skill_dir(&self, name: &str) -> Option<PathBuf> {
        let mut components = Path::new(name).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => {
                Some(self.skills_dir.join(name))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for HostContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostContext")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .field("skills_dir", &self.skills_dir)
            .field("bottle_home", &self.bottle_home)
            .finish()
    }
}
