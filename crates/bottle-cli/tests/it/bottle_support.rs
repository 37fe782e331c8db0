//! Helpers for the bottle commands' tests: the fake backend's record, runs without a
//! controlling terminal, and runs under a real pseudo-terminal.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;

use crate::{Run, TestContext};

/// A context whose runs use the `fake` backend, recording into a file of the context.
pub(crate) fn fake_context() -> TestContext {
    let ctx = TestContext::new();
    let record = record_path(&ctx);
    ctx.env("CLAUDE_BOTTLE_BACKEND", "fake").env(
        "CLAUDE_BOTTLE_FAKE_RECORD",
        record.to_str().expect("utf-8 path"),
    )
}

fn record_path(ctx: &TestContext) -> PathBuf {
    ctx.user_home().with_file_name("fake-record.json")
}

/// What the fake backend received in the last run, and what it left.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) calls: Vec<Value>,
    pub(crate) resources: Vec<String>,
}

impl Record {
    /// The `call` names in order.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.calls
            .iter()
            .map(|c| c["call"].as_str().expect("a call name"))
            .collect()
    }

    /// The first call named `name`.
    pub(crate) fn call(&self, name: &str) -> Option<&Value> {
        self.calls.iter().find(|c| c["call"] == name)
    }
}

/// Whether any run built the fake backend (it writes its record when it was used).
pub(crate) fn backend_used(ctx: &TestContext) -> bool {
    record_path(ctx).exists()
}

/// The record of the last run (it is written when the process exits).
pub(crate) fn record(ctx: &TestContext) -> Record {
    let path = record_path(ctx);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no fake record at {}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).expect("the record is JSON");
    Record {
        calls: value["calls"].as_array().expect("calls").clone(),
        resources: value["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r.as_str().expect("a name").to_owned())
            .collect(),
    }
}

/// The identities with kept state.
pub(crate) fn kept_states(ctx: &TestContext) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(ctx.home().join("state")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

/// Replaces bottle identities (`agent-xxxxx`) of `agent` with `agent-[ID]`.
pub(crate) fn redact_identity(text: &str, agent: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let prefix = format!("{agent}-");
    while let Some(at) = rest.find(&prefix) {
        let after = &rest[at + prefix.len()..];
        let suffix: String = after.chars().take(5).collect();
        let boundary = after[suffix.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-');
        out.push_str(&rest[..at + prefix.len()]);
        if suffix.len() == 5
            && suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && boundary
        {
            out.push_str("[ID]");
            rest = &after[5..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Finds the identity of `agent` in `text`.
pub(crate) fn find_identity(text: &str, agent: &str) -> String {
    let prefix = format!("{agent}-");
    let at = text
        .find(&format!("resume {prefix}"))
        .unwrap_or_else(|| panic!("no resume command in:\n{text}"))
        + "resume ".len();
    text[at..at + prefix.len() + 5].to_owned()
}

/// Runs the binary with extra environment for this run only.
pub(crate) fn run_with(ctx: &TestContext, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = ctx.command(args);
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: ctx.redact(&String::from_utf8_lossy(&out.stdout)),
        stderr: ctx.redact(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// Runs `cmd` in a new session, without a controlling terminal (as under CI or cron), with
/// `stdin` as its input.
pub(crate) fn run_detached(ctx: &TestContext, cmd: Command, stdin: &str) -> Run {
    let mut detached = Command::new("setsid");
    detached
        .arg("--wait")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    detached.env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            detached.env(key, value);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        detached.current_dir(dir);
    }
    let mut child = detached
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setsid runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: ctx.redact(&String::from_utf8_lossy(&out.stdout)),
        stderr: ctx.redact(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// A run of the binary under a real pseudo-terminal: it is the child's controlling terminal,
/// stdin, stdout and stderr, as in an interactive shell.
pub(crate) struct PtyRun {
    writer: Box<dyn Write + Send>,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl PtyRun {
    pub(crate) fn spawn(cmd: &Command) -> PtyRun {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut builder = CommandBuilder::new(cmd.get_program());
        builder.args(cmd.get_args());
        builder.env_clear();
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                builder.env(key, value);
            }
        }
        builder.env("TERM", "xterm");
        if let Some(dir) = cmd.get_current_dir() {
            builder.cwd(dir);
        }
        let child = pty
            .slave
            .spawn_command(builder)
            .expect("spawn under the pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep the master open as long as the reader runs.
            let _master = pty.master;
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        PtyRun {
            writer,
            output,
            seen: String::new(),
            child,
        }
    }

    fn pump(&mut self, timeout: Duration) -> bool {
        match self.output.recv_timeout(timeout) {
            Ok(bytes) => {
                self.seen.push_str(&String::from_utf8_lossy(&bytes));
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until the terminal has shown `text`; panics with what it showed after 60 s.
    pub(crate) fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(text) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?}; it showed:\n{}",
                self.seen
            );
            self.pump(Duration::from_millis(200));
        }
    }

    /// Waits until the terminal's text, escape sequences and white space taken out, holds
    /// `text` (white space taken out too: a full-screen program such as Claude Code moves the
    /// cursor between words); panics with that text after `secs` seconds. Returns the text
    /// seen so far, white space taken out.
    pub(crate) fn expect_text(&mut self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let wanted = squashed(text);
        loop {
            let plain = plain_text(&self.seen);
            if squashed(&plain).contains(&wanted) {
                return squashed(&plain);
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?}; it showed:\n{plain}"
            );
            self.pump(Duration::from_millis(200));
        }
    }

    /// Types `text` (use `\r` for Enter, as a keyboard sends it).
    pub(crate) fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("type");
        self.writer.flush().expect("flush");
    }

    /// Waits for the exit; returns the code and everything the terminal showed.
    pub(crate) fn finish(mut self) -> (u32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit; the terminal showed:\n{}",
                self.seen
            );
            self.pump(Duration::from_millis(100));
        };
        while self.pump(Duration::from_millis(300)) {}
        (status.exit_code(), self.seen)
    }
}

/// `raw` terminal output as text: CSI and OSC sequences taken out, a cursor move right
/// (`ESC [ n C`) as `n` spaces and any other cursor move as a line break.
pub(crate) fn plain_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if c != '\r' {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('[') => {
                let mut params = String::new();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        match c {
                            'C' => out.push_str(&" ".repeat(params.parse().unwrap_or(1))),
                            'A' | 'B' | 'H' | 'G' | 'E' | 'F' => out.push('\n'),
                            _ => {}
                        }
                        break;
                    }
                    params.push(c);
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `text` without white space.
pub(crate) fn squashed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
