//! Plumbing every task of this package shares: where the workspace is, a nested `cargo`,
//! release builds of the binaries under test, child processes that cannot outlive us, and the
//! description of the machine a report was measured on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The workspace root: this package lives at `<root>/xtask/bench`.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("xtask-bench lives two levels below the workspace root")
        .to_path_buf()
}

/// A nested `cargo` command, without the variables `cargo run` set for us: build scripts such
/// as ring's rerun when `CARGO_MANIFEST_DIR` changes, so passing it on would rebuild half the
/// graph on every bench (and again on the next plain build).
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.current_dir(workspace_root());
    cmd
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR` or the workspace's).
pub(crate) fn target_dir() -> Result<PathBuf> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let target = meta["target_directory"]
        .as_str()
        .context("no target_directory in cargo metadata")?;
    Ok(PathBuf::from(target))
}

/// `cargo build --release --bin <bin>`, of `package` when given (as the egress image builds
/// `-p bottle-egress`), else of whichever default workspace member has that binary (so a package
/// rename does not break the bench); returns the binary's path.
pub(crate) fn build_release(package: Option<&str>, bin: &str) -> Result<PathBuf> {
    eprintln!("bench: building {bin} in release mode");
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--quiet", "--locked"]);
    if let Some(package) = package {
        cmd.args(["-p", package]);
    }
    let status = cmd
        .args(["--bin", bin])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release --bin {bin}` failed");
    }
    Ok(target_dir()?.join("release").join(bin))
}

/// The first line a command prints on stdout, when it runs and succeeds.
pub(crate) fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

/// Whether `program` is on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

/// A tool the bench needs, with the command that installs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    /// Arguments that print the version on the first line of stdout.
    pub(crate) version_args: &'static [&'static str],
    pub(crate) install: &'static str,
}

impl Tool {
    pub(crate) fn version(&self) -> Option<String> {
        first_line(self.name, self.version_args)
    }
}

/// Fails with one sentence naming every missing tool and how to install it.
pub(crate) fn require(task: &str, tools: &[Tool]) -> Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| t.version().is_none())
        .map(|t| format!("`{}` (install it with `{}`)", t.name, t.install))
        .collect();
    if !missing.is_empty() {
        bail!("`{task}` needs {}", missing.join(" and "));
    }
    Ok(())
}

/// The machine a run was measured on, and the versions of what took part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) nproc: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    /// The 1, 5 and 15 minute load averages when the run started.
    pub(crate) load_average: String,
    pub(crate) rustc: String,
    /// `(tool, version)` for every tool of the run, in a fixed order.
    pub(crate) tools: Vec<(String, String)>,
}

impl Machine {
    /// Describes this machine now, with `tools`' versions.
    pub(crate) fn describe(tools: &[(&str, Option<String>)]) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown", |(_, m)| m.trim())
            .to_owned();
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Machine {
            cpu,
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib,
            kernel: first_line("uname", &["-sr"]).unwrap_or_default(),
            load_average: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            rustc: first_line("rustc", &["--version"]).unwrap_or_default(),
            tools: tools
                .iter()
                .map(|(name, version)| {
                    (
                        (*name).to_owned(),
                        version.clone().unwrap_or_else(|| "unknown".to_owned()),
                    )
                })
                .collect(),
        }
    }

    /// A machine for the report tests.
    #[cfg(test)]
    pub(crate) fn fixture(tool: (&str, &str)) -> Machine {
        Machine {
            cpu: "test CPU".to_owned(),
            nproc: 2,
            memory_gib: 24.0,
            kernel: "Linux 6.0".to_owned(),
            load_average: "0.10 0.20 0.30".to_owned(),
            rustc: "rustc 1.95.0".to_owned(),
            tools: vec![(tool.0.to_owned(), tool.1.to_owned())],
        }
    }

    /// As Markdown list items.
    pub(crate) fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!(
            "- CPU: {}; nproc {}\n- Memory: {:.1} GiB\n- Kernel: {}\n\
             - Load average when the run started: {} (1, 5, 15 min)\n- {} (release builds, rustls with ring)\n",
            self.cpu, self.nproc, self.memory_gib, self.kernel, self.load_average, self.rustc
        );
        for (tool, version) in &self.tools {
            let _ = writeln!(s, "- {tool}: {version}");
        }
        s
    }
}

/// A child process that is killed and reaped when this is dropped, so every exit path —
/// success, error, panic, Ctrl-C — stops what was started.
pub(crate) struct Proc {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdin and stdout closed and stderr to the file `stderr`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, stderr: PathBuf) -> Result<Proc> {
        let log = std::fs::File::create(&stderr)
            .with_context(|| format!("creating {}", stderr.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the process's own last words if it has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its last output:\n{}",
                self.name,
                self.last_words()
            );
        }
        Ok(())
    }

    /// The last 15 lines it wrote to stderr.
    pub(crate) fn last_words(&self) -> String {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The resident set size of the process and every descendant (Squid's certificate
    /// helpers are processes of their own), in KiB.
    pub(crate) fn rss_kib(&mut self) -> Result<u64> {
        self.check_alive()?;
        let mut total = 0;
        for pid in process_tree(self.pid()) {
            let path = format!("/proc/{pid}/status");
            if let Ok(status) = std::fs::read_to_string(&path) {
                total += vm_rss_kib(&status).unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Waits until the process accepts TCP connections on `addr` (and is still running).
    pub(crate) async fn wait_listening(&mut self, addr: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} does not listen on {addr} after 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`-TERM`, `-INT`) and waits up to `grace` for the process to exit on its
    /// own (a process under valgrind writes its counts then, `perf record` its data), killing it
    /// after that.
    pub(crate) fn stop(
        mut self,
        signal: &str,
        grace: Duration,
    ) -> Result<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} did not exit within {:.0} s of {signal}; killed",
            self.name,
            grace.as_secs_f64()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Descendants first (Squid's helpers), then the process itself.
        for pid in process_tree(self.pid()).into_iter().skip(1) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pid` and all its descendants, `pid` first, from `/proc/*/stat`.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parent_pid(&stat))
            {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree
}

/// The parent pid in a `/proc/<pid>/stat` line: the field after the `)` that closes the
/// command name (which may itself hold spaces and parentheses) and the state.
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A free loopback port (there is a small race until the proxy binds it; fine for a bench).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits for SIGINT or SIGTERM and names it.
pub(crate) async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

/// The current time in UTC, `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn utc_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}

/// The median of `v` (the mean of the middle two of an even count); NaN for none.
pub(crate) fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// The `p`th percentile of `v` by the nearest-rank method (the median averages the middle two
/// of an even count); NaN for none.
pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if (p - 50.0).abs() < f64::EPSILON {
        return if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
    }
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    v[rank.clamp(1, n) - 1]
}

/// Writes `text` to `path`, creating its directory.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status =
            "Name:\tbottle-egress\nVmPeak:\t  20000 kB\nVmRSS:\t    8123 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(8123));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn the_parent_is_read_past_a_command_name_with_spaces() {
        assert_eq!(
            parent_pid("4242 (squid (ssl) x) S 17 4242 4242 0"),
            Some(17)
        );
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.lock").is_file());
    }
}
