//! What the commands need from the process environment, read once in `main` so that every
//! command (and every test) gets it explicitly.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bottle_manifest::{ClaudeAuth, Layout, ManifestIndex, escape_path};

use crate::error::CliError;

/// The process environment, as the commands see it.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) layout: Layout,
    /// Which host credential the api.anthropic.com route injects.
    pub(crate) claude_auth: Option<ClaudeAuth>,
}

impl Context {
    pub(crate) fn from_env() -> Result<Self, CliError> {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let layout = Layout::from_env(
            std::env::var_os("CLAUDE_BOTTLE_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
            &cwd,
        )?;
        // Only presence matters here; the value is read by the launch, never by us.
        let claude_auth =
            ClaudeAuth::detect(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
        Ok(Context {
            layout,
            claude_auth,
        })
    }

    pub(crate) fn load(&self) -> ManifestIndex {
        ManifestIndex::load(&self.layout, self.claude_auth)
    }

    /// A path for humans: `./…` under the working directory, `~/…` under the home directory,
    /// escaped ([`escape_path`]): file names come from repositories too.
    pub(crate) fn show_path(&self, path: &Path) -> String {
        if let Ok(rest) = path.strip_prefix(self.layout.cwd()) {
            return format!("./{}", escape_path(rest));
        }
        if let Some(home) = self.layout.user_home()
            && let Ok(rest) = path.strip_prefix(home)
        {
            return format!("~/{}", escape_path(rest));
        }
        escape_path(path)
    }

    pub(crate) fn show_opt_path(&self, path: Option<&PathBuf>) -> String {
        path.map_or_else(|| "-".to_owned(), |p| self.show_path(p))
    }
}
