//! The main job, end to end: `claude-bottle start AGENT --yes -- -p "say hi"` runs the real
//! Claude Code (from npm, in the agent image) in a bottle against a fake Anthropic Messages API:
//! a test container with a streamed (SSE) reply, on a network named in `egress.networks`, under
//! the alias `api.anthropic.com`, with a certificate from a test CA listed in `trust`. The turn
//! completes through the egress; the fake saw the credential the bottle's `auth` route injected;
//! the agent only ever held the placeholder.
//!
//! The bottle's routes for the fake's hosts are Claude Code's built-in table
//! ([`bottle_manifest::CLAUDE_CODE_ROUTES`]: the same hosts, methods and paths), plus what a
//! test origin needs (`allow_private`, `trust`): Claude Code works with exactly that table
//! (`-p`, `--continue`), every request it made is inside it, and a request outside it is refused
//! by the egress.
//!
//! Gated like the other Docker tests (`CLAUDE_BOTTLE_DOCKER_TESTS=1`, see build.rs).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::bottle_support::{PtyRun, plain_text, squashed};
use crate::docker::{Leftovers, docker, docker_context, resources_of};

const AGENT: &str = "cli-e2e";
const TEST_LABEL: &str = "claude-bottle.test=cli-e2e";
const PTY_AGENT: &str = "cli-e2e-pty";
const RESUME_AGENT: &str = "cli-e2e-resume";
const FAKE_API: &str = include_str!("fixtures/fake_anthropic.py");

/// Removes one test's own network and fake API container (labelled `label`).
struct TestResources {
    label: String,
}

impl TestResources {
    fn new(label: &str) -> TestResources {
        let guard = TestResources {
            label: label.to_owned(),
        };
        guard.remove();
        guard
    }

    fn remove(&self) {
        let filter = format!("label={}", self.label);
        for id in docker(&["ps", "-aq", "--filter", &filter]).lines() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        for id in docker(&["network", "ls", "-q", "--filter", &filter]).lines() {
            let _ = Command::new("docker").args(["network", "rm", id]).output();
        }
    }
}

impl Drop for TestResources {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A test CA (written as `ca.pem`, for `trust`) and a leaf for api.anthropic.com signed by it
/// (`cert.pem`, `key.pem`, for the fake API).
fn write_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name
        .push(DnType::CommonName, "claude-bottle e2e test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write CA");

    let leaf_key = KeyPair::generate().expect("leaf key");
    let hosts = bottle_manifest::CLAUDE_CODE_HOSTS
        .iter()
        .map(|h| (*h).to_owned());
    let mut leaf = CertificateParams::new(hosts.collect::<Vec<_>>()).expect("leaf");
    leaf.distinguished_name
        .push(DnType::CommonName, "api.anthropic.com");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    std::fs::write(dir.join("cert.pem"), leaf_cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).expect("write key");
    std::fs::write(dir.join("fake_anthropic.py"), FAKE_API).expect("write server");
}

fn logs(container: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", container])
        .output()
        .expect("docker logs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The bottle's routes: each built-in route's host, methods and paths, made reachable on the
/// test network (`allow_private`, the test CA), the API route injecting the host's key.
fn builtin_table_routes(ca: &Path) -> String {
    let mut yaml = String::new();
    for route in bottle_manifest::CLAUDE_CODE_ROUTES {
        yaml.push_str(&format!(
            "    - host: {}\n      allow_private: true\n      trust: [{}]\n      methods: [{}]\n      path_allowlist: [{}]\n",
            route.host,
            ca.display(),
            route.methods.join(", "),
            route.paths.join(", "),
        ));
        if route.host == bottle_manifest::ANTHROPIC_API_HOST {
            yaml.push_str("      auth: {header: x-api-key, token_ref: ANTHROPIC_API_KEY}\n");
        }
    }
    yaml
}

/// Whether the built-in table allows `method` on `target` (a request target, query included)
/// of `host`.
fn in_builtin_table(host: &str, method: &str, target: &str) -> bool {
    let path = target.split('?').next().unwrap_or_default();
    bottle_manifest::CLAUDE_CODE_ROUTES.iter().any(|r| {
        r.host == host
            && r.methods.contains(&method)
            && r.paths.iter().any(|p| {
                path == *p
                    || path
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    })
}

/// A fake Anthropic API on a test network of its own, and a claude-bottle context whose agent
/// `agent` runs in a bottle routed to it through the built-in table (see the module docs).
/// Everything is labelled with the agent's name and removed on drop.
struct FakeApi {
    ctx: crate::TestContext,
    api: String,
    token: String,
    _dir: tempfile::TempDir,
    _bottles: Leftovers,
    _test: TestResources,
}

impl FakeApi {
    fn start(agent: &str, agent_file: &str) -> FakeApi {
        let label = format!("{TEST_LABEL}-{agent}");
        let test = TestResources::new(&label);
        let bottles = Leftovers::new(agent);
        let token = format!("sk-ant-e2e-{:x}", std::process::id() as u64 * 0x9E37_79B9);
        let dir = tempfile::tempdir().expect("tempdir");
        write_certificates(dir.path());
        let network = format!("{agent}-api-{}", std::process::id());

        let ctx = docker_context(agent).env("ANTHROPIC_API_KEY", &token);
        ctx.bottle(
            agent,
            &format!(
                "---\negress:\n  log: full\n  networks: [{network}]\n  routes:\n{routes}---\nThe fake API is a private address on a test network, hence allow_private; a route with `auth` trusts only the roots it lists.\n",
                routes = builtin_table_routes(&dir.path().join("ca.pem"))
            ),
        )
        .agent(agent, &format!("---\nbottle: {agent}\n{agent_file}---\nAnswer briefly.\n"));

        // The fake API runs from the agent image (it has python3), which the plan names.
        let plan = ctx.run(&["start", agent, "--dry-run", "--json"]);
        assert_eq!(plan.code, 0, "{}", plan.all());
        let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
        let image = plan["image"].as_str().expect("image").to_owned();
        let marks: Vec<&serde_json::Value> = plan["egress"]
            .as_array()
            .expect("egress")
            .iter()
            .filter(|r| r["host"] == "api.anthropic.com")
            .collect();
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0]["auth"], "x-api-key");

        docker(&["network", "create", "--label", &label, &network]);
        let api = format!("{network}-fake");
        // The agent image carries `claude-bottle.managed`, which Docker copies onto the fake:
        // a `cleanup` run by another test would take it for a leftover bottle. Naming this
        // (live) test process as its launcher keeps it out of every cleanup.
        let identity = format!(
            "{}=e2e-fake-{}",
            bottle_docker::names::label::IDENTITY,
            std::process::id()
        );
        let launcher = format!(
            "{}={}",
            bottle_docker::names::label::LAUNCHER,
            bottle_docker::liveness::current().expect("the test's launcher label")
        );
        docker(&[
            "create",
            "--name",
            &api,
            "--label",
            &label,
            "--label",
            &identity,
            "--label",
            &launcher,
            "--network",
            &network,
            "--network-alias",
            "api.anthropic.com",
            "--network-alias",
            "platform.claude.com",
            "--user",
            "root",
            "--entrypoint",
            "python3",
            &image,
            "/srv/fake_anthropic.py",
            "443",
            "/srv/cert.pem",
            "/srv/key.pem",
        ]);
        docker(&[
            "cp",
            &format!("{}/.", dir.path().display()),
            &format!("{api}:/srv"),
        ]);
        docker(&["start", &api]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !logs(&api).contains("READY") {
            assert!(
                Instant::now() < deadline,
                "the fake API never started:\n{}",
                logs(&api)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        FakeApi {
            ctx,
            api,
            token,
            _dir: dir,
            _bottles: bottles,
            _test: test,
        }
    }
}

#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn claude_code_says_hi_through_the_egress_with_an_injected_credential() {
    let fake = FakeApi::start(AGENT, "");
    let (ctx, api, token) = (&fake.ctx, fake.api.as_str(), fake.token.as_str());

    // The main job.
    let run = ctx.run(&["start", AGENT, "--yes", "--", "-p", "say hi"]);
    assert_eq!(run.code, 0, "{}\nfake API log:\n{}", run.all(), logs(api));
    assert!(
        run.stdout.contains("hi from the fake API"),
        "the streamed reply is Claude Code's output: {}",
        run.all()
    );
    let seen = logs(api);
    assert!(seen.contains("REQUEST POST /v1/messages"), "{seen}");
    assert!(
        seen.contains(&format!("SEEN x-api-key={token}")),
        "the egress injected the host's credential:\n{seen}"
    );
    assert!(
        !seen.contains(bottle_manifest::PLACEHOLDER),
        "the placeholder never reaches the API:\n{seen}"
    );
    assert!(!run.all().contains(token), "the credential is never shown");
    assert!(
        resources_of(AGENT).is_empty(),
        "left: {:?}",
        resources_of(AGENT)
    );
    // Every request Claude Code made is inside the built-in table: nothing else is needed.
    let requests: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("REQUEST "))
        .collect();
    for request in &requests {
        let (method, target) = request.split_once(' ').expect("method and target");
        assert!(
            in_builtin_table("api.anthropic.com", method, target),
            "Claude Code needed {request}, outside the built-in table:\n{seen}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/claude_code/policy_limits")),
        "{seen}"
    );

    // In one bottle: `--continue` carries the earlier turn; the pinned table answers what it
    // lists (WebFetch's preflight, the onboarding check on platform.claude.com) and refuses
    // what it does not (telemetry, another method, another path), at the egress; and the
    // agent holds only the placeholder, in its environment and every process's.
    let before = logs(api).lines().count();
    let run = ctx.run(&[
        "start",
        AGENT,
        "--yes",
        "--exec",
        "claude -p 'say hi' >/dev/null && claude -p --continue 'and again'; echo ==table; \
         probe() { code=$(curl -s -o /dev/null -D /tmp/h -w '%{http_code}' -X \"$1\" \"$2\"); \
         why=$(tr -d '\\r' </tmp/h | sed -n 's/^proxy-status: .*details=\"\\([a-z_]*\\)\".*/\\1/p'); \
         echo \"$code${why:+ $why} $1 $2\"; }; \
         probe GET 'https://api.anthropic.com/api/web/domain_info?domain=example.com'; \
         probe GET https://platform.claude.com/v1/oauth/hello; \
         probe POST https://api.anthropic.com/api/event_logging/v2/batch; \
         probe POST https://platform.claude.com/v1/oauth/hello; \
         probe GET https://platform.claude.com/v1/oauth/token; \
         probe GET https://statsig.anthropic.com/; \
         echo ==env; printenv ANTHROPIC_API_KEY; echo ==environ; \
         cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; echo ==files; \
         grep -rIs -l sk-ant-e2e /home /tmp /etc /var /opt /run /srv 2>/dev/null; true",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let section = |name: &str| -> &str {
        let start = run.stdout.find(&format!("=={name}\n")).expect(name) + name.len() + 3;
        let rest = &run.stdout[start..];
        &rest[..rest.find("\n==").map_or(rest.len(), |e| e + 1)]
    };
    let replies = run.stdout.split("==table\n").next().unwrap_or_default();
    assert!(replies.contains("hi from the fake API"), "{}", run.all());
    let later: String = logs(api)
        .lines()
        .skip(before)
        .collect::<Vec<_>>()
        .join("\n");
    let counts: Vec<usize> = later
        .lines()
        .filter_map(|l| l.strip_prefix("MESSAGES ")?.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts[1] > counts[0],
        "`--continue` sent the earlier turn with the new one:\n{later}"
    );
    assert_eq!(
        section("table"),
        "200 GET https://api.anthropic.com/api/web/domain_info?domain=example.com\n\
         200 GET https://platform.claude.com/v1/oauth/hello\n\
         403 path_not_allowed POST https://api.anthropic.com/api/event_logging/v2/batch\n\
         403 method_not_allowed POST https://platform.claude.com/v1/oauth/hello\n\
         403 path_not_allowed GET https://platform.claude.com/v1/oauth/token\n\
         000 host_not_allowed GET https://statsig.anthropic.com/\n",
        "{}",
        run.all()
    );
    assert!(
        !later.contains("event_logging") && !later.contains("/v1/oauth/token"),
        "a refused request never reaches the host:\n{later}"
    );
    // After the session, the refused hosts are named, read from the egress's audit (a
    // refusal repeated for one reason within the audit's window may be folded into the first).
    assert!(
        run.stderr.lines().any(|l| l.starts_with("refused: ")
            && l.ends_with("(host_not_allowed) — add an egress route for it to the bottle")),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("refused: ")
                && l.contains("× api.anthropic.com (path_not_allowed)")),
        "{}",
        run.all()
    );
    assert_eq!(
        section("env"),
        format!("{}\n", bottle_manifest::PLACEHOLDER)
    );
    assert!(
        !run.stdout.contains(token),
        "the agent held the credential:\n{}",
        run.stdout
    );
    let files = run
        .stdout
        .split("==files\n")
        .nth(1)
        .expect("the file search ran");
    assert_eq!(files, "", "files in the agent mention the credential");
    assert!(
        resources_of(AGENT).is_empty(),
        "left: {:?}",
        resources_of(AGENT)
    );
}

/// A person's first session: a fresh bottle opens straight at Claude Code's prompt (provisioned
/// onboarding, trust, API-key approval and the bypass prompt pre-answered: no key pressed), the
/// status line shows the permission mode, and `say hi` gets the fake's reply.
#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn a_fresh_bottle_opens_at_claude_codes_prompt_in_a_terminal() {
    let fake = FakeApi::start(PTY_AGENT, "");
    let mut pty = PtyRun::spawn(&fake.ctx.command(&["start", PTY_AGENT, "--yes"]));
    let first = pty.expect_text("bypass permissions on", 120);
    for screen in [
        "Choose the text style",
        "Do you want to use this API key",
        "Security notes",
        "trust this folder",
        "Bypass Permissions mode",
    ] {
        assert!(
            !first.contains(&squashed(screen)),
            "a first-run screen ({screen}):\n{first}"
        );
    }
    pty.send("say hi");
    std::thread::sleep(Duration::from_millis(500));
    pty.send("\r");
    pty.expect_text("hi from the fake API", 60);
    pty.send("/exit");
    std::thread::sleep(Duration::from_millis(500));
    pty.send("\r");
    let (_, screen) = pty.finish();
    let screen = plain_text(&screen);
    assert!(screen.contains("torn down"), "{screen}");
    assert!(
        !logs(&fake.api).contains("/v1/oauth/hello"),
        "onboarding was done: no connectivity check"
    );
    assert!(
        resources_of(PTY_AGENT).is_empty(),
        "left: {:?}",
        resources_of(PTY_AGENT)
    );
}

/// The `USER_TEXTS` of each Messages request in the fake's log after line `skip`.
fn user_texts(api: &str, skip: usize) -> Vec<Vec<String>> {
    logs(api)
        .lines()
        .skip(skip)
        .filter_map(|l| l.strip_prefix("USER_TEXTS "))
        .map(|json| serde_json::from_str(json).expect("USER_TEXTS is JSON"))
        .collect()
}

/// Resume continues: a session writes a file in the workspace and has a conversation with the
/// fake API, then exits non-zero; its workspace and conversation are saved into the state
/// folder (holding none of the bottle's secrets), `resume` shows the file, and Claude Code's
/// next request carries the earlier messages. A clean exit then forgets it all.
#[test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
fn resume_puts_back_the_workspace_and_continues_the_conversation() {
    let fake = FakeApi::start(RESUME_AGENT, "");
    let (ctx, api, token) = (&fake.ctx, fake.api.as_str(), fake.token.as_str());

    let first = ctx.run(&[
        "start",
        RESUME_AGENT,
        "--yes",
        "--exec",
        "claude -p 'remember the word PAPAYA-ONE' && echo 'kept across resume' > notes.txt \
         && printenv HTTPS_PROXY; exit 3",
    ]);
    assert_eq!(
        first.code,
        3,
        "{}\nfake API log:\n{}",
        first.all(),
        logs(api)
    );
    assert!(
        first.stdout.contains("hi from the fake API"),
        "{}",
        first.all()
    );
    assert!(
        first
            .stderr
            .contains("saved Claude Code's conversation and the workspace ("),
        "{}",
        first.all()
    );
    let identity = first
        .all()
        .lines()
        .find_map(|l| l.split("claude-bottle resume ").nth(1))
        .map(|id| id.trim().to_owned())
        .expect("the resume command is shown");
    assert!(resources_of(RESUME_AGENT).is_empty(), "teardown still ran");

    // What was saved: both archives, private, and none of the bottle's secrets in them.
    let dir = ctx.home().join("state").join(&identity);
    let proxy_token = first
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("http://bottle:"))
        .and_then(|rest| rest.split('@').next())
        .expect("the agent's proxy URL")
        .to_owned();
    assert!(proxy_token.len() >= 16, "{proxy_token}");
    for archive in ["workspace.tar", "claude-code.tar"] {
        let path = dir.join(archive);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{archive}: {e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{archive}");
        }
        let text = String::from_utf8_lossy(&bytes);
        for secret in [token, proxy_token.as_str()] {
            assert!(
                !text.contains(secret),
                "{archive} holds a secret of the bottle"
            );
        }
        if archive == "claude-code.tar" {
            assert!(
                text.contains("PAPAYA-ONE"),
                "the conversation is in {archive}"
            );
        }
    }
    // The conversation to continue is named by its session id, the newest transcript's.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("saved.json")).expect("saved.json"))
            .expect("saved.json is JSON");
    let session_id = saved["conversation"].as_str().expect("a session id");
    assert!(
        String::from_utf8_lossy(&std::fs::read(dir.join("claude-code.tar")).unwrap())
            .contains(&format!("{session_id}.jsonl")),
        "{saved}"
    );
    let listed = ctx.run(&["list", "active"]);
    assert_eq!(listed.code, 0, "{}", listed.all());
    let row = listed
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&identity))
        .unwrap_or_else(|| panic!("{identity} is resumable:\n{}", listed.stdout));
    assert!(row.contains(" KiB "), "the saved size is shown: {row}");

    // The file is back, owned by the agent; a non-zero exit saves again.
    let shown = ctx.run(&[
        "resume",
        &identity,
        "--yes",
        "--exec",
        "cat notes.txt; stat -c '%U' notes.txt; exit 4",
    ]);
    assert_eq!(shown.code, 4, "{}", shown.all());
    assert_eq!(
        shown.stdout,
        "kept across resume\nnode\n",
        "{}",
        shown.all()
    );

    // The conversation continues: the next request carries the earlier turn.
    let before = logs(api).lines().count();
    let resumed = ctx.run(&[
        "resume",
        &identity,
        "--yes",
        "--",
        "-p",
        "what was the word",
    ]);
    assert_eq!(
        resumed.code,
        0,
        "{}\nfake API log:\n{}",
        resumed.all(),
        logs(api)
    );
    let requests = user_texts(api, before);
    let last = requests.last().expect("a Messages request after resume");
    assert!(
        last.iter()
            .any(|t| t.contains("remember the word PAPAYA-ONE"))
            && last.iter().any(|t| t.contains("what was the word")),
        "the resumed request carries the earlier messages: {requests:?}"
    );
    assert!(
        !dir.exists(),
        "a clean exit forgets the bottle and what it saved"
    );
    assert!(resources_of(RESUME_AGENT).is_empty());
}
