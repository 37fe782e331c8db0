//! End-to-end tests of the `claude-bottle` binary: an isolated HOME, CLAUDE_BOTTLE_HOME and
//! working directory per test, the real binary, snapshots of what a user sees.

mod bottle_commands;
mod bottle_support;
mod capabilities;
mod docker;
mod e2e;
mod help;
mod logs;
mod manifest_commands;
mod preflight;
mod pty;
mod remote;
mod tidy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One isolated world: `home/` (HOME), `home/.claude-bottle` (the claude-bottle home),
/// `repo/` (the working directory). Nothing of the real environment leaks in.
#[derive(Debug)]
pub struct TestContext {
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything, for one snapshot.
    pub fn all(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["home/.claude-bottle", "repo"] {
            fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        TestContext {
            root,
            env: Vec::new(),
        }
    }

    pub fn user_home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn home(&self) -> PathBuf {
        self.user_home().join(".claude-bottle")
    }

    pub fn cwd(&self) -> PathBuf {
        self.root.path().join("repo")
    }

    pub fn write(&self, path: impl AsRef<Path>, text: &str) -> &Self {
        let path = path.as_ref();
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
        self
    }

    pub fn bottle(&self, name: &str, text: &str) -> &Self {
        self.write(self.home().join(format!("bottles/{name}.md")), text)
    }

    pub fn agent(&self, name: &str, text: &str) -> &Self {
        self.write(self.home().join(format!("agents/{name}.md")), text)
    }

    pub fn repo_agent(&self, name: &str, text: &str) -> &Self {
        self.write(
            self.cwd().join(format!(".claude-bottle/agents/{name}.md")),
            text,
        )
    }

    /// Set an extra environment variable for the runs.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The binary with `args` and only the environment this context defines, not yet run
    /// (for runs under a pseudo-terminal or without a controlling terminal).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-bottle"));
        cmd.args(args)
            .current_dir(self.cwd())
            .env_clear()
            .env("HOME", self.user_home())
            .env("CLAUDE_BOTTLE_HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run the binary with only the environment this context defines.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-bottle"));
        cmd.args(args)
            .current_dir(self.cwd())
            .env_clear()
            .env("HOME", self.user_home())
            .env("CLAUDE_BOTTLE_HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("the binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: self.redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Run without HOME and CLAUDE_BOTTLE_HOME.
    pub fn run_without_home(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_claude-bottle"))
            .args(args)
            .current_dir(self.cwd())
            .env_clear()
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: self.redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&out.stderr)),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root.path().display().to_string(), "[TMP]")
    }
}
