//! Test fixtures: an isolated agent-side git (`TestContext`), a real OpenSSH upstream on
//! loopback (`Upstream`: `sshd -i` per connection, `git-shell` as the only command), and the
//! real `bottle-git-gate run` (`GateProcess`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bottle_git_gate::agent::{GateEndpoint, render_gitconfig};
use bottle_manifest::{GitEntry, GitUser};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bottle-git-gate");

/// The name the declared upstreams use; only the gate maps it (`ExtraHosts`) to 127.0.0.1, so
/// an agent-side git that is not rewritten to the gate cannot reach it.
pub(crate) const UPSTREAM_HOST: &str = "upstream.test";

/// An AWS-key-shaped value the scanner finds (base32 alphabet, enough entropy).
pub(crate) const AWS_KEY: &str = "AKIAZ3MHQ4VX7NB2KDLT";

/// Fail (never skip) when a tool a test drives is missing.
pub(crate) fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is required by this test and is not installed; install it (Debian: `apt-get install {package}`)"
    );
}

/// A temporary world for one test: its own HOME, its own global git config (the agent's,
/// rendered by the gate crate), and no way to reach anything through a proxy.
pub(crate) struct TestContext {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) home: PathBuf,
}

impl TestContext {
    pub(crate) fn new() -> TestContext {
        require("git", "git");
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("agent-home");
        std::fs::create_dir_all(&home).unwrap();
        // Until the agent's config is installed: an identity for the commits made upstream.
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Writer\n\temail = writer@upstream.test\n",
        )
        .unwrap();
        TestContext { dir, home }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The agent's `~/.gitconfig`, as the bottle would install it.
    pub(crate) fn install_agent_gitconfig(&self, gate: &GateProcess, entries: &[GitEntry]) {
        let user = GitUser {
            name: Some("Agent".to_owned()),
            email: Some("agent@bottle.test".to_owned()),
        };
        std::fs::write(
            self.home.join(".gitconfig"),
            render_gitconfig(&gate.endpoint(), entries, &user),
        )
        .unwrap();
    }

    /// git as the agent runs it: nothing of this machine's user (HOME, ~/.gitconfig,
    /// ~/.ssh) is read, and every proxy variable points at a closed port — only the gate's
    /// `http.proxy = ""` makes git reach it directly.
    pub(crate) fn git(&self, cwd: &Path, args: &[&str]) -> Output {
        self.git_with(cwd, args, &[])
    }

    pub(crate) fn git_with(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let dead_proxy = "http://127.0.0.1:9";
        Command::new("git")
            .current_dir(cwd)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", "false")
            .env("LC_ALL", "C")
            .env("http_proxy", dead_proxy)
            .env("HTTP_PROXY", dead_proxy)
            .env("https_proxy", dead_proxy)
            .env("all_proxy", dead_proxy)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run git and return its stdout, failing the test with its stderr when it fails.
    pub(crate) fn git_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(cwd, args);
        assert!(
            out.status.success(),
            "git {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run git expecting failure; its stderr.
    pub(crate) fn git_fails(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(cwd, args);
        assert!(
            !out.status.success(),
            "git {args:?} succeeded but should fail:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Clone `url` into `<dir>/<name>` and set the commit identity of the work tree.
    pub(crate) fn clone(&self, url: &str, name: &str) -> PathBuf {
        self.git_ok(self.dir.path(), &["clone", "--quiet", url, name]);
        self.path(name)
    }
}

/// Plain git on a path of ours (the upstream's own repositories, the gate's repositories),
/// with no user config.
pub(crate) fn plain_git(git_dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

/// `git rev-parse <rev>` in a bare repository, `None` when it does not resolve.
pub(crate) fn rev(git_dir: &Path, rev: &str) -> Option<String> {
    let out = plain_git(git_dir, &["rev-parse", "--verify", "-q", rev]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether the object exists in the repository.
pub(crate) fn has_object(git_dir: &Path, id: &str) -> bool {
    plain_git(git_dir, &["cat-file", "-e", id]).status.success()
}

/// Commit `files` in the work tree `dir` and return the new commit's id.
pub(crate) fn commit(
    ctx: &TestContext,
    dir: &Path,
    files: &[(&str, &str)],
    message: &str,
) -> String {
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    ctx.git_ok(dir, &["add", "-A"]);
    ctx.git_ok(dir, &["commit", "--quiet", "-m", message]);
    ctx.git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn keygen(path: &Path, comment: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A real OpenSSH server on 127.0.0.1: each accepted connection is handed to `sshd -i` (inetd
/// mode, so there is no daemon to race for a port), which authenticates the test's user key and
/// runs only `git-shell`.
pub(crate) struct Upstream {
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    /// `ssh-ed25519 AAAA…` of the server.
    pub(crate) host_key: String,
    /// The client key the gate uses (mode 0600).
    pub(crate) user_key: PathBuf,
    /// The login (the user running the tests: an sshd not run as root can log in no other).
    pub(crate) user: String,
    /// Connections accepted so far.
    pub(crate) connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    children: Arc<Mutex<Vec<Child>>>,
}

impl Upstream {
    pub(crate) fn start(ctx: &TestContext) -> Upstream {
        require("sshd", "openssh-server");
        require("ssh-keygen", "openssh-client");
        require("git-shell", "git");
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect(
                "sshd is installed at /usr/sbin/sshd (Debian: `apt-get install openssh-server`)",
            );
        let dir = ctx.path("upstream");
        std::fs::create_dir_all(dir.join("repos")).unwrap();
        let host_key = keygen(&dir.join("host_ed25519"), "upstream host");
        let user_key = dir.join("id_gate");
        let user_public = keygen(&user_key, "gate");
        std::fs::write(dir.join("authorized_keys"), format!("{user_public}\n")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let is_root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
            .unwrap()
            .trim()
            == "0";
        if is_root && !Path::new("/run/sshd").is_dir() {
            // sshd run as root wants its (empty) privilege-separation directory, which Debian's
            // init script would make.
            std::fs::create_dir_all("/run/sshd").unwrap();
            std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let git_shell = String::from_utf8(
            Command::new("sh")
                .args(["-c", "command -v git-shell"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_owned();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "HostKey {host}\n\
                 AuthorizedKeysFile {keys}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\n\
                 AllowUsers {user}\n\
                 ForceCommand {git_shell} -c \"$SSH_ORIGINAL_COMMAND\"\n\
                 AllowTcpForwarding no\n\
                 AllowAgentForwarding no\n\
                 X11Forwarding no\n\
                 PermitTTY no\n\
                 PidFile none\n\
                 LogLevel VERBOSE\n",
                host = dir.join("host_ed25519").display(),
                keys = dir.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let children: Arc<Mutex<Vec<Child>>> = Arc::default();
        let log = dir.join("sshd.log");
        let acceptor = {
            let (connections, stop, children) = (
                Arc::clone(&connections),
                Arc::clone(&stop),
                Arc::clone(&children),
            );
            let sshd = sshd.to_owned();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let input: OwnedFd = stream.try_clone().unwrap().into();
                    let output: OwnedFd = stream.into();
                    let log = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap();
                    let child = Command::new(&sshd)
                        .args(["-i", "-e", "-f"])
                        .arg(&config)
                        .stdin(Stdio::from(input))
                        .stdout(Stdio::from(output))
                        .stderr(Stdio::from(log))
                        .spawn()
                        .unwrap();
                    children.lock().unwrap().push(child);
                }
            })
        };
        Upstream {
            dir,
            port,
            host_key,
            user_key,
            user,
            connections,
            stop,
            acceptor: Mutex::new(Some(acceptor)),
            children,
        }
    }

    /// A bare repository `name.git` whose `main` holds one commit with `README.md`.
    pub(crate) fn repo(&self, ctx: &TestContext, name: &str) -> PathBuf {
        let bare = self.empty_repo(name);
        self.commit_directly(
            ctx,
            &bare,
            &[("README.md", "# upstream\n")],
            "initial commit",
        );
        bare
    }

    /// A bare repository with no commit at all.
    pub(crate) fn empty_repo(&self, name: &str) -> PathBuf {
        let bare = self.dir.join("repos").join(format!("{name}.git"));
        let out = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&bare)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        bare
    }

    /// Commit to `bare`'s `main` as another writer would (straight into the upstream, not
    /// through the gate); the new commit's id.
    pub(crate) fn commit_directly(
        &self,
        ctx: &TestContext,
        bare: &Path,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let work = ctx.path(&format!(
            "direct-{}",
            ctx.dir.path().read_dir().unwrap().count()
        ));
        let url = bare.to_str().unwrap();
        if rev(bare, "refs/heads/main").is_some() {
            ctx.git_ok(
                ctx.dir.path(),
                &["clone", "--quiet", url, work.to_str().unwrap()],
            );
        } else {
            ctx.git_ok(
                ctx.dir.path(),
                &[
                    "init",
                    "--quiet",
                    "--initial-branch=main",
                    work.to_str().unwrap(),
                ],
            );
        }
        let id = commit(ctx, &work, files, message);
        ctx.git_ok(&work, &["push", "--quiet", url, "HEAD:refs/heads/main"]);
        id
    }

    /// The declared `Upstream` of a repository: `ssh://<user>@upstream.test:<port><path>`.
    pub(crate) fn url(&self, bare: &Path) -> String {
        format!(
            "ssh://{}@{UPSTREAM_HOST}:{}{}",
            self.user,
            self.port,
            bare.display()
        )
    }

    /// A `git:` entry for `bare` with `extra` YAML keys (`PushRefs: …`).
    pub(crate) fn entry(&self, name: &str, bare: &Path, extra: &str) -> GitEntry {
        bottle_manifest::yaml::parse(&self.entry_yaml(name, bare, extra)).unwrap()
    }

    pub(crate) fn entry_yaml(&self, name: &str, bare: &Path, extra: &str) -> String {
        format!(
            "Name: {name}\nUpstream: {}\nIdentityFile: {}\nKnownHostKey: {}\nExtraHosts: {{{UPSTREAM_HOST}: 127.0.0.1}}\n{extra}",
            self.url(bare),
            self.user_key.display(),
            self.host_key,
        )
    }

    /// Stop answering: the port is closed, so connections are refused.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(handle) = self.acceptor.lock().unwrap().take() {
            handle.join().unwrap();
        }
    }

    /// What sshd logged (authentication attempts, commands).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
        for mut child in self.children.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `bottle-git-gate run` on a free loopback port, with its own state directory.
pub(crate) struct GateProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) state: PathBuf,
    log: PathBuf,
}

impl GateProcess {
    /// Start a gate serving `entries` (YAML items, each a `git:` entry) with `top` extra
    /// top-level YAML and `env` for its process.
    pub(crate) fn start(
        ctx: &TestContext,
        entries: &[String],
        top: &str,
        env: &[(&str, &str)],
    ) -> GateProcess {
        let n = ctx.dir.path().read_dir().unwrap().count();
        let dir = ctx.path(&format!("gate-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state");
        let config = dir.join("config.yaml");
        let mut yaml = format!(
            "listen: 127.0.0.1:0\nstate: {}\n{top}entries:\n",
            state.display()
        );
        for entry in entries {
            for (i, line) in entry.lines().enumerate() {
                yaml.push_str(if i == 0 { "  - " } else { "    " });
                yaml.push_str(line);
                yaml.push('\n');
            }
        }
        std::fs::write(&config, yaml).unwrap();
        let log = dir.join("gate.log");
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // A HOME with an ssh setup the gate must ignore.
            .env("HOME", ctx.path("gate-user-home"))
            .env("BOTTLE_GIT_GATE_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gate = GateProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            state,
            log,
        };
        gate.addr = gate.wait_for_address();
        gate
    }

    /// A gate serving one entry `name` for `bare` (with `extra` entry keys), and the agent's
    /// git config for it installed in `ctx`.
    pub(crate) fn serving(
        ctx: &TestContext,
        upstream: &Upstream,
        name: &str,
        bare: &Path,
        extra: &str,
    ) -> GateProcess {
        let gate = GateProcess::start(ctx, &[upstream.entry_yaml(name, bare, extra)], "", &[]);
        ctx.install_agent_gitconfig(&gate, &[upstream.entry(name, bare, extra)]);
        gate
    }

    fn wait_for_address(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(at) = log.find(" on http://") {
                let rest = &log[at + " on http://".len()..];
                let end = rest.find('/').unwrap();
                return rest[..end].parse().unwrap();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the gate exited ({status}) before serving:\n{log}");
            }
            assert!(Instant::now() < deadline, "the gate did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn endpoint(&self) -> GateEndpoint {
        GateEndpoint {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
        }
    }

    /// The gate URL of an entry, for tests that address the gate directly.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.addr)
    }

    /// The gate's own bare repository of an entry.
    pub(crate) fn repo(&self, name: &str) -> PathBuf {
        self.state.join("repos").join(format!("{name}.git"))
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A raw HTTP/1.1 GET; the status line and body.
    pub(crate) fn get(&self, target: &str) -> (String, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: git-gate\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let head_end = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(reply.len());
        let status = String::from_utf8_lossy(&reply[..head_end])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let body = reply[(head_end + 4).min(reply.len())..].to_vec();
        (status, body)
    }
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
