//! The bottle commands on a real Docker engine. Built as ordinary tests only with
//! `CLAUDE_BOTTLE_DOCKER_TESTS=1` (see build.rs); otherwise listed as ignored. With the variable
//! set, a missing engine fails them. They need the images of `cargo xtask images`.
//!
//! Each test uses its own agent name; a [`Leftovers`] guard removes every container and network
//! labelled with that agent when the test ends, passed or failed, and checks that nothing was
//! left before it does.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestContext;
use crate::bottle_support::{PtyRun, find_identity, kept_states};

/// The engine settings a test run passes on to the binary.
const PASSED_ON: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CLAUDE_BOTTLE_RUNTIME",
    "CLAUDE_BOTTLE_EGRESS_IMAGE",
    "CLAUDE_BOTTLE_BASE_IMAGE",
];

/// A context on the docker backend, with one agent named `agent` in a plain bottle.
pub(crate) fn docker_context(agent: &str) -> TestContext {
    let mut ctx = TestContext::new().env("CLAUDE_BOTTLE_BACKEND", "docker");
    for name in PASSED_ON {
        if let Ok(value) = std::env::var(name) {
            ctx = ctx.env(name, &value);
        }
    }
    ctx.agent(agent, "---\nbottle: default\n---\nA test agent.\n");
    ctx
}

/// `docker` with `args`; its stdout. Panics (fails the test) when the engine does not answer.
pub(crate) fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("CLAUDE_BOTTLE_DOCKER_TESTS=1 but the docker CLI cannot run");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers and networks labelled with `agent`.
pub(crate) fn resources_of(agent: &str) -> Vec<String> {
    let filter = format!("label=claude-bottle.agent={agent}");
    let mut names: Vec<String> =
        docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
            .lines()
            .chain(
                docker(&[
                    "network",
                    "ls",
                    "--filter",
                    &filter,
                    "--format",
                    "{{.Name}}",
                ])
                .lines(),
            )
            .map(str::to_owned)
            .collect();
    names.extend(
        docker(&["volume", "ls", "--filter", &filter, "--format", "{{.Name}}"])
            .lines()
            .map(str::to_owned),
    );
    names.sort();
    names
}

/// Removes everything labelled with the agent, at the start and at the end of a test.
pub(crate) struct Leftovers {
    agent: String,
}

impl Leftovers {
    pub(crate) fn new(agent: &str) -> Leftovers {
        docker(&["info", "--format", "{{.ServerVersion}}"]);
        let guard = Leftovers {
            agent: agent.to_owned(),
        };
        guard.remove();
        guard
    }

    fn remove(&self) {
        let filter = format!("label=claude-bottle.agent={}", self.agent);
        for id in docker(&["ps", "-aq", "--filter", &filter]).lines() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        for id in docker(&["network", "ls", "-q", "--filter", &filter]).lines() {
            let _ = Command::new("docker").args(["network", "rm", id]).output();
        }
        for id in docker(&["volume", "ls", "-q", "--filter", &filter]).lines() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", id])
                .output();
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Reads `child`'s stderr into `seen` until it contains `text` after position `from`.
fn wait_for(child: &mut Child, seen: &mut String, from: usize, text: &str) {
    let stderr = child.stderr.as_mut().expect("stderr piped");
    let mut buf = [0u8; 4096];
    while !seen[from..].contains(text) {
        let n = stderr.read(&mut buf).expect("read stderr");
        assert!(n > 0, "exited before showing {text:?}:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn interrupt(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn start_exec_runs_in_a_real_bottle_and_resume_continues_it() {
    let agent = "cli-exec";
    let _guard = Leftovers::new(agent);
    let ctx = docker_context(agent);

    let run = ctx.run(&[
        "start",
        agent,
        "--yes",
        "--exec",
        "id -un; echo to-stderr >&2; exit 7",
    ]);
    assert_eq!(run.code, 7, "{}", run.all());
    assert_eq!(
        run.stdout,
        "node\n",
        "the command's stdout, and only it: {}",
        run.all()
    );
    assert!(run.stderr.contains("to-stderr"), "{}", run.stderr);
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );
    let identity = find_identity(&run.stderr, agent);
    assert_eq!(kept_states(&ctx), std::slice::from_ref(&identity));

    let run = ctx.run(&["resume", &identity, "--yes", "--exec", "hostname"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains(&format!("resuming {identity}")),
        "{}",
        run.stderr
    );
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );
    assert!(
        kept_states(&ctx).is_empty(),
        "a clean exit removes the state"
    );
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn list_active_shows_a_running_bottle_and_cleanup_removes_a_killed_one() {
    let agent = "cli-kill";
    let _guard = Leftovers::new(agent);
    let ctx = docker_context(agent);

    let mut child = ctx
        .command(&["start", agent, "--yes", "--exec", "sleep 600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut seen = String::new();
    // The last provisioning step this agent has (it has a prompt; docker runs no supervise).
    wait_for(&mut child, &mut seen, 0, "system prompt copied");
    let identity = seen
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("identity")
                .map(|v| v.trim().to_owned())
        })
        .expect("the preflight names the identity");

    let run = ctx.run(&["list", "active", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let mine: Vec<&serde_json::Value> = json["active"]
        .as_array()
        .expect("active")
        .iter()
        .filter(|b| b["identity"] == identity.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{}", run.stdout);
    assert_eq!(mine[0]["agent"], agent);
    assert_eq!(mine[0]["state"], "running");

    // A running bottle is not cleanup's business.
    let run = ctx.run(&["cleanup", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.stdout.contains(&identity),
        "a live bottle offered for cleanup:\n{}",
        run.stdout
    );

    // SIGKILL: no teardown runs; the labelled resources stay behind for cleanup.
    interrupt(&child, "-KILL");
    child.wait().expect("wait");
    assert!(!resources_of(agent).is_empty(), "SIGKILL cannot tear down");

    let run = ctx.run(&["cleanup", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains(&identity), "{}", run.all());
    let run = ctx.run(&["cleanup", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn ctrl_c_during_launch_leaves_nothing_behind() {
    let agent = "cli-sigint";
    let _guard = Leftovers::new(agent);
    let ctx = docker_context(agent);

    let mut child = ctx
        .command(&["start", agent, "--yes", "--exec", "sleep 600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The first launch step has created something; interrupt as Ctrl-C does.
    let mut seen = String::new();
    wait_for(&mut child, &mut seen, 0, "launching the bottle");
    let launch = seen.find("launching the bottle").expect("found");
    wait_for(&mut child, &mut seen, launch, "\n  creating network");
    interrupt(&child, "-INT");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut rest = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut rest);
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}\n{rest}",
        resources_of(agent)
    );
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn a_terminal_session_gets_a_real_tty_of_the_right_size() {
    let agent = "cli-tty";
    let _guard = Leftovers::new(agent);
    let ctx = docker_context(agent);
    let mut pty = PtyRun::spawn(&ctx.command(&[
        "start",
        agent,
        "--exec",
        "test -t 0 && test -t 1 && echo is-a-tty; stty size; read -r line; echo got:$line",
    ]));
    pty.expect("launch this agent? [y/N] ");
    pty.send("y\r");
    // The PtyRun terminal is 40 rows by 120 columns; the bottle's terminal must match.
    pty.expect("40 120");
    pty.send("typed-into-the-bottle\r");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("is-a-tty"), "{screen}");
    assert!(screen.contains("got:typed-into-the-bottle"), "{screen}");
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn cwd_is_copied_in_and_a_prompted_secret_reaches_only_the_bottle() {
    let agent = "cli-cwd";
    let _guard = Leftovers::new(agent);
    let ctx = docker_context(agent);
    ctx.bottle(
        "asks",
        "---\nenv:\n  DEPLOY_TOKEN: \"?the deploy token\"\n---\n",
    )
    .agent(agent, "---\nbottle: asks\n---\n")
    .write(ctx.cwd().join("notes/todo.txt"), "ship it\n");
    let mut pty = PtyRun::spawn(&ctx.command(&[
        "start",
        agent,
        "--cwd",
        "--exec",
        "cat notes/todo.txt; printf 'len=%s\\n' \"${#DEPLOY_TOKEN}\"; \
         test \"$DEPLOY_TOKEN\" = typed-deploy-secret && echo token-arrived",
    ]));
    pty.expect("launch this agent? [y/N] ");
    pty.send("y\r");
    pty.expect("the deploy token (DEPLOY_TOKEN, hidden): ");
    pty.send("typed-deploy-secret\r");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("ship it"),
        "the working tree arrived:\n{screen}"
    );
    assert!(
        screen.contains("len=19") && screen.contains("token-arrived"),
        "{screen}"
    );
    assert!(
        !screen.contains("typed-deploy-secret"),
        "the secret was shown:\n{screen}"
    );
    assert!(
        resources_of(agent).is_empty(),
        "left: {:?}",
        resources_of(agent)
    );
}

/// `-vv` and `RUST_LOG=trace` on a real launch: the create-container bodies the Docker client
/// sends hold the Claude credential (for the egress) and the bottle's env values (for the
/// agent), and no log line shows any of them.
#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn verbose_logs_never_show_a_credential_or_an_env_value() {
    let agent = "cli-logs";
    let _guard = Leftovers::new(agent);
    const TOKEN: &str = "sk-ant-oat01-cli-logs-token-never-shown";
    const LITERAL: &str = "literal-env-value-never-shown";
    const FROM_HOST: &str = "host-env-value-never-shown";
    let ctx = docker_context(agent)
        .env("CLAUDE_CODE_OAUTH_TOKEN", TOKEN)
        .env("BOTTLE_SECRET_ON_HOST", FROM_HOST);
    ctx.bottle(
        "secrets",
        &format!(
            "---\nenv:\n  LITERAL_SECRET: {LITERAL}\n  HOST_SECRET: \"${{BOTTLE_SECRET_ON_HOST}}\"\n---\n"
        ),
    )
    .agent(agent, "---\nbottle: secrets\n---\nA test agent.\n");

    for (args, rust_log) in [
        (
            &["-vv", "start", agent, "--yes", "--exec", "true"][..],
            None,
        ),
        (&["start", agent, "--yes", "--exec", "true"], Some("trace")),
    ] {
        let mut cmd = ctx.command(args);
        if let Some(directives) = rust_log {
            cmd.env("RUST_LOG", directives);
        }
        let out = cmd.output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains("DEBUG"),
            "{args:?}: the logs were on:\n{stderr}"
        );
        for secret in [TOKEN, LITERAL, FROM_HOST] {
            assert!(
                !stderr.contains(secret),
                "{args:?} RUST_LOG={rust_log:?} logs `{secret}`"
            );
        }
        assert!(
            resources_of(agent).is_empty(),
            "left: {:?}",
            resources_of(agent)
        );
    }
}
