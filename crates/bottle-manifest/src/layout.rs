//! Where manifests live. The layout is the trust boundary: bottles only under the
//! claude-bottle home, agents also under the working directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::ManifestError;

/// The folders manifests are read from, resolved from explicit inputs (never from the process
/// environment directly, so tests and embedders stay isolated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    home: PathBuf,
    user_home: Option<PathBuf>,
    cwd: PathBuf,
}

impl Layout {
    /// A layout with the claude-bottle home `home` (holding `bottles/` and `agents/`), the
    /// user's home directory for `~` expansion, and the working directory `cwd`.
    pub fn new(
        home: impl Into<PathBuf>,
        user_home: Option<PathBuf>,
        cwd: impl Into<PathBuf>,
    ) -> Self {
        Layout {
            home: home.into(),
            user_home,
            cwd: cwd.into(),
        }
    }

    /// Resolve from the values of `CLAUDE_BOTTLE_HOME` and `HOME` (pass
    /// `std::env::var_os(..)`): `$CLAUDE_BOTTLE_HOME` when set and not empty, else
    /// `$HOME/.claude-bottle`.
    ///
    /// The home must be an absolute path. Bottles are trusted because they live in the home; a
    /// relative home would resolve against the working directory, so a repository shipping
    /// `.claude-bottle/bottles/` would grant itself whatever its files say.
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use bottle_manifest::{Layout, ManifestError};
    ///
    /// let layout = Layout::from_env(None, Some(OsStr::new("/home/me")), "/src/app".as_ref())?;
    /// assert_eq!(layout.home(), std::path::Path::new("/home/me/.claude-bottle"));
    /// assert_eq!(layout.repo_agents_dir(), std::path::Path::new("/src/app/.claude-bottle/agents"));
    ///
    /// let relative = Layout::from_env(Some(OsStr::new(".claude-bottle")), None, "/src/app".as_ref());
    /// assert!(matches!(relative, Err(ManifestError::RelativeHome { .. })));
    /// # Ok::<(), bottle_manifest::ManifestError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ManifestError::NoHome`] when neither is set, [`ManifestError::RelativeHome`] when the
    /// one that decides the home is relative.
    pub fn from_env(
        claude_bottle_home: Option<&OsStr>,
        home: Option<&OsStr>,
        cwd: &Path,
    ) -> Result<Self, ManifestError> {
        let absolute = |var: &'static str, value: PathBuf| {
            if value.is_absolute() {
                Ok(value)
            } else {
                Err(ManifestError::RelativeHome { var, value })
            }
        };
        let user_home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
        let bottle_home = match claude_bottle_home.filter(|h| !h.is_empty()) {
            Some(dir) => absolute("CLAUDE_BOTTLE_HOME", PathBuf::from(dir))?,
            None => absolute("HOME", user_home.clone().ok_or(ManifestError::NoHome)?)?
                .join(".claude-bottle"),
        };
        Ok(Layout::new(bottle_home, user_home, cwd))
    }

    /// The claude-bottle home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The user's home directory, used to expand `~` in paths.
    pub fn user_home(&self) -> Option<&Path> {
        self.user_home.as_deref()
    }

    /// The working directory.
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// `$CLAUDE_BOTTLE_HOME/cache`: what a launcher may forget at any time (it costs only time).
    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// `$CLAUDE_BOTTLE_HOME/bottles`: the only place bottles are read from.
    pub fn bottles_dir(&self) -> PathBuf {
        self.home.join("bottles")
    }

    /// `$CLAUDE_BOTTLE_HOME/agents`.
    pub fn home_agents_dir(&self) -> PathBuf {
        self.home.join("agents")
    }

    /// `<cwd>/.claude-bottle`.
    pub fn repo_dir(&self) -> PathBuf {
        self.cwd.join(".claude-bottle")
    }

    /// `<cwd>/.claude-bottle/agents`.
    pub fn repo_agents_dir(&self) -> PathBuf {
        self.repo_dir().join("agents")
    }

    /// `<cwd>/.claude-bottle/bottles`: never read; warned about when present.
    pub fn repo_bottles_dir(&self) -> PathBuf {
        self.repo_dir().join("bottles")
    }

    /// Expand a leading `~/` with the user's home.
    pub(crate) fn expand_tilde(&self, path: &str) -> Option<PathBuf> {
        if path == "~" {
            return self.user_home.clone();
        }
        match path.strip_prefix("~/") {
            Some(rest) => self.user_home.as_ref().map(|h| h.join(rest)),
            None => Some(PathBuf::from(path)),
        }
    }
}
