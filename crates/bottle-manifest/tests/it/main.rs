//! Integration tests of bottle-manifest: one binary, one module per concern.

mod errors;
mod fuzz;
mod hostile;
mod layout;
mod resolve;
mod yaml;

use std::fs;
use std::path::{Path, PathBuf};

use bottle_manifest::{ClaudeAuth, Diagnostic, Layout, ManifestError, ManifestIndex};

/// An isolated claude-bottle home, user home and working directory.
#[derive(Debug)]
pub struct Fixture {
    root: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["home/.claude-bottle", "user", "cwd"] {
            fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        Fixture { root }
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home/.claude-bottle")
    }

    pub fn cwd(&self) -> PathBuf {
        self.root.path().join("cwd")
    }

    pub fn user_home(&self) -> PathBuf {
        self.root.path().join("user")
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn write(&self, path: PathBuf, text: impl AsRef<[u8]>) -> PathBuf {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        path
    }

    pub fn bottle(&self, name: &str, text: &str) -> PathBuf {
        self.write(self.home().join("bottles").join(format!("{name}.md")), text)
    }

    pub fn agent(&self, name: &str, text: &str) -> PathBuf {
        self.write(self.home().join("agents").join(format!("{name}.md")), text)
    }

    pub fn repo_agent(&self, name: &str, text: &str) -> PathBuf {
        self.write(
            self.cwd()
                .join(".claude-bottle/agents")
                .join(format!("{name}.md")),
            text,
        )
    }

    pub fn layout(&self) -> Layout {
        Layout::new(self.home(), Some(self.user_home()), self.cwd())
    }

    pub fn load(&self) -> ManifestIndex {
        ManifestIndex::load(&self.layout(), None)
    }

    pub fn load_with(&self, auth: Option<ClaudeAuth>) -> ManifestIndex {
        ManifestIndex::load(&self.layout(), auth)
    }

    /// Replace the temporary root in rendered text, so snapshots are stable.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root.path().display().to_string(), "[TMP]")
    }

    /// Every error `check` reports, rendered.
    pub fn check_errors(&self) -> String {
        let report = self.load().check();
        self.render(&report.errors)
    }

    pub fn render(&self, diagnostics: &[Diagnostic]) -> String {
        let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        self.redact(&text.join("\n\n"))
    }

    /// The error of selecting `agent`, rendered with its hint.
    pub fn select_error(&self, agent: &str) -> String {
        let err: ManifestError = self.load().manifest(agent).expect_err("should fail");
        let hint = err
            .hint()
            .map(|h| format!("\nhint: {h}"))
            .unwrap_or_default();
        self.redact(&format!("{err}{hint}"))
    }
}

/// A bottle file with the given front matter.
pub fn md(front: &str) -> String {
    format!("---\n{front}---\nBody.\n")
}
