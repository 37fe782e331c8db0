//! The git gate in a real bottle, against an upstream of our own: an sshd container (Debian's
//! openssh-server, built once and cached by the hash of its Dockerfile) with bare repositories,
//! a user key and a host key minted by the test, on a network the test creates and the gate
//! joins through `egress.networks`. One bottle serves every scenario.

use std::path::Path;
use std::process::Command;

use bottle_core::{
    Bottle, BottleBackend, EnvEntry, EnvSource, EventLog, FileOwner, Identity, Role, Secrets,
};
use bottle_docker::api::{
    Attachment, BuildRequest, ContainerConfig, DockerApi, ExecSpec, NetworkSpec,
};
use bottle_docker::engine::Engine;
use bottle_docker::tarball::TarBuilder;
use bottle_manifest::{GitEntry, GitUser};

use crate::docker::{Guard, backend, ctx, engine, host, launch_or_fail, objects_of, sh, spec};

/// The upstream's name on the test network (and in the declared URLs).
pub(crate) const UPSTREAM_HOST: &str = "git.bottle.test";
/// A bottle env secret the gate must find, even base64-encoded.
pub(crate) const DB_PASSWORD: &str = "hunter2-correct-horse-battery";
/// An AWS access key id of the shape the scanner knows.
pub(crate) const AWS_KEY: &str = "AKIAZ3MHQ4VX7NB2KDLT";

const SSHD_DOCKERFILE: &str = "FROM debian:bookworm-slim\n\
RUN apt-get update \\\n && apt-get install -y --no-install-recommends openssh-server git \\\n \
&& rm -rf /var/lib/apt/lists/*\n";

/// The upstream's start: a `git` user with the test's key, two bare repositories (`app` with
/// one commit on `main`), then sshd with the test's host key.
const SSHD_SCRIPT: &str = r#"set -e
useradd -m -s /bin/sh git
install -d -o git -g git -m 700 /home/git/.ssh
install -o git -g git -m 600 /tmp/up/authorized_keys /home/git/.ssh/authorized_keys
install -m 600 /tmp/up/host_key /etc/ssh/test_host_key
mkdir -p /srv /run/sshd
git init -q --bare -b main /srv/app.git
git init -q --bare -b main /srv/other.git
git clone -q /srv/app.git /tmp/seed 2>/dev/null
cd /tmp/seed
git -c user.name=seed -c user.email=seed@example.com commit -q --allow-empty -m seed
git push -q origin HEAD:main
chown -R git:git /srv
exec /usr/sbin/sshd -D -e -o HostKey=/etc/ssh/test_host_key -o PasswordAuthentication=no
"#;

/// An ed25519 key pair at `path` (and `path.pub`); returns the public key as `type base64`.
pub(crate) fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sshd image, built once per Dockerfile content.
async fn sshd_image(engine: &Engine) -> String {
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        SSHD_DOCKERFILE.hash(&mut h);
        h.finish()
    };
    let tag = format!("claude-bottle-test-sshd:{hash:016x}");
    if engine.image_info(&tag).await.unwrap().is_some() {
        return tag;
    }
    let mut tar = TarBuilder::new("sshd image");
    tar.file(
        "Dockerfile",
        SSHD_DOCKERFILE.as_bytes(),
        0o644,
        FileOwner::ROOT,
    )
    .unwrap();
    engine
        .build_image(
            BuildRequest {
                tag: tag.clone(),
                dockerfile: "Dockerfile".to_owned(),
                context: tar.finish().unwrap(),
                build_args: Vec::new(),
                labels: Default::default(),
            },
            &|_| {},
        )
        .await
        .expect("build the test sshd image");
    tag
}

/// Starts the upstream on a network of its own; returns (network, container).
pub(crate) async fn start_upstream(
    engine: &Engine,
    guard: &Guard,
    authorized_key: &str,
    host_key: &[u8],
) -> (String, String) {
    let image = sshd_image(engine).await;
    let labels = guard.labels();
    let network = format!("bottle-test-gitnet-{}", guard.value);
    engine
        .create_network(&NetworkSpec::bridge(network.clone(), labels.clone()))
        .await
        .unwrap();
    let name = format!("bottle-test-sshd-{}", guard.value);
    engine
        .create_container(&ContainerConfig {
            name: name.clone(),
            image,
            cmd: Some(vec!["sh".into(), "-c".into(), SSHD_SCRIPT.into()]),
            user: Some("0".into()),
            labels,
            network: Some(Attachment {
                network: network.clone(),
                aliases: vec![UPSTREAM_HOST.to_owned()],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tar = TarBuilder::new("upstream");
    tar.dir("up", 0o755, FileOwner::ROOT).unwrap();
    tar.file(
        "up/authorized_keys",
        format!("{authorized_key}\n").as_bytes(),
        0o644,
        FileOwner::ROOT,
    )
    .unwrap();
    tar.file("up/host_key", host_key, 0o600, FileOwner::ROOT)
        .unwrap();
    engine
        .upload(&name, "/tmp", tar.finish().unwrap())
        .await
        .unwrap();
    engine.start_container(&name).await.unwrap();
    (network, name)
}

/// Runs `script` in the upstream container; returns stdout.
pub(crate) async fn upstream_sh(engine: &Engine, container: &str, script: &str) -> String {
    let out = engine
        .exec(
            container,
            &ExecSpec {
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn entry(name: &str, upstream: &str, key: &Path, host_key: &str) -> GitEntry {
    GitEntry::new(name, upstream.parse().unwrap(), key, host_key)
}

#[tokio::test]
#[cfg_attr(
    not(docker_tests),
    ignore = "needs Docker: build with CLAUDE_BOTTLE_DOCKER_TESTS=1"
)]
async fn docker_the_git_gate_serves_declared_upstreams_and_stops_what_must_not_leave() {
    let engine = engine().await;
    let guard = Guard::new();
    let dir = tempfile::tempdir().unwrap();
    let user_key = dir.path().join("id_user");
    let user_pub = keygen(&user_key);
    let host_key = dir.path().join("host_key");
    let host_pub = keygen(&host_key);
    let other_pub = keygen(&dir.path().join("other_host_key"));
    let (network, upstream) = start_upstream(
        &engine,
        &guard,
        &user_pub,
        &std::fs::read(&host_key).unwrap(),
    )
    .await;

    let identity = Identity::generate("gitgate").unwrap();
    let mut prepared = spec(&identity);
    let bottle = &mut prepared.agent.bottle;
    let mut app = entry(
        "app",
        &format!("ssh://git@{UPSTREAM_HOST}/srv/app.git"),
        &user_key,
        &host_pub,
    );
    app.push_refs = Some(vec!["refs/heads/agent/*".parse().unwrap()]);
    // The same upstream, pinned to another host key: the gate must refuse to talk to it.
    let wrong = entry(
        "wrong",
        &format!("ssh://git@{UPSTREAM_HOST}/srv/other.git"),
        &user_key,
        &other_pub,
    );
    // Nothing listens there: the gate's own loopback, port 1.
    let mut down = entry(
        "down",
        "ssh://git@down.bottle.test:1/srv/app.git",
        &user_key,
        &host_pub,
    );
    down.extra_hosts
        .insert("down.bottle.test".to_owned(), "127.0.0.1".parse().unwrap());
    bottle.git = vec![app, wrong, down];
    bottle.git_user = GitUser {
        name: Some("Claude".to_owned()),
        email: Some("claude@example.com".to_owned()),
    };
    bottle.env = vec![EnvEntry::new("DB_PASSWORD", EnvSource::Prompt(None))];
    bottle.egress.networks = vec![network];

    let backend = backend(&engine, &guard);
    prepared.capabilities = backend.capabilities();
    let plan = backend.resolve_plan(prepared, &host()).await.unwrap();
    let secrets = Secrets::empty().with_env("DB_PASSWORD", DB_PASSWORD);
    let events = EventLog::new();
    let ctx = ctx(&identity, &secrets, &events);
    let bottle = launch_or_fail(&backend, &plan, &ctx, &events).await;
    backend.provision(&plan, &bottle, &ctx).await.unwrap();

    // Clone by the declared URL, in both spellings: the agent's git config sends it to the gate.
    let r = sh(
        &bottle,
        &format!(
            "cd /tmp && git clone -q ssh://git@{UPSTREAM_HOST}/srv/app.git a 2>&1 && \
             git clone -q git@{UPSTREAM_HOST}:/srv/app.git b 2>&1 && \
             git -C a log --format=%s && git -C a remote get-url origin"
        ),
    )
    .await;
    assert!(r.success(), "{r:?}");
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        // git records the URL it was rewritten to.
        ["seed", "http://git-gate:9419/app.git"],
        "{r:?}"
    );

    // A clean push to an allowed ref arrives upstream, committed as the bottle's git_user.
    let r = sh(
        &bottle,
        "cd /tmp/a && git checkout -q -b agent/ok && echo fine > ok.txt && git add ok.txt && \
         git commit -q -m ok && git push -q origin agent/ok 2>&1 && git rev-parse HEAD",
    )
    .await;
    assert!(r.success(), "{r:?}");
    let pushed = r.stdout.lines().last().unwrap().to_owned();
    let up = upstream_sh(
        &engine,
        &upstream,
        "git --git-dir=/srv/app.git rev-parse refs/heads/agent/ok; \
         git --git-dir=/srv/app.git log -1 --format=%an refs/heads/agent/ok",
    )
    .await;
    assert_eq!(
        up.lines().collect::<Vec<_>>(),
        [pushed.as_str(), "Claude"],
        "{up}"
    );

    // A push carrying an AWS key is refused, naming the rule and the file; nothing arrives.
    let r = sh(
        &bottle,
        &format!(
            "cd /tmp/a && git checkout -q -b agent/leak && \
             printf 'key = {AWS_KEY}\\n' > deploy.ini && git add deploy.ini && \
             git commit -q -m leak && git push origin agent/leak 2>&1"
        ),
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout.contains("aws-access-key-id") && r.stdout.contains("file deploy.ini"),
        "{r:?}"
    );
    assert!(!r.stdout.contains(AWS_KEY), "the secret was echoed: {r:?}");
    // A bottle env secret, base64-encoded, is found too.
    let r = sh(
        &bottle,
        &format!(
            "cd /tmp/a && git checkout -q agent/ok && git checkout -q -b agent/b64 && \
             printf '%s' '{DB_PASSWORD}' | base64 > settings.txt && git add settings.txt && \
             git commit -q -m settings && git push origin agent/b64 2>&1"
        ),
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout.contains("known-secret `ENV_DB_PASSWORD` (base64)")
            && r.stdout.contains("file settings.txt"),
        "{r:?}"
    );
    // Outside `PushRefs`, and a force push: refused by the policy.
    let r = sh(
        &bottle,
        "cd /tmp/a && git checkout -q agent/ok && git push origin HEAD:main 2>&1",
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout
            .contains("the ref is outside `PushRefs` (refs/heads/agent/*)"),
        "{r:?}"
    );
    let r = sh(
        &bottle,
        "cd /tmp/a && git commit -q --amend -m rewritten && git push -f origin agent/ok 2>&1",
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout.contains("push refused by the policy of `app`"),
        "{r:?}"
    );
    let up = upstream_sh(
        &engine,
        &upstream,
        "git --git-dir=/srv/app.git for-each-ref --format='%(refname) %(objectname)'",
    )
    .await;
    assert!(
        up.contains(&format!("refs/heads/agent/ok {pushed}")),
        "the force push changed nothing: {up}"
    );
    for refused in ["agent/leak", "agent/b64"] {
        assert!(!up.contains(refused), "{refused} arrived: {up}");
    }
    assert_eq!(up.lines().count(), 2, "main and agent/ok only: {up}");

    // A wrong host key: the gate does not talk to the upstream.
    let r = sh(
        &bottle,
        &format!("cd /tmp && git clone -q ssh://git@{UPSTREAM_HOST}/srv/other.git o 2>&1"),
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout
            .contains("the upstream's host key does not match the entry's KnownHostKey"),
        "{r:?}"
    );
    // An unreachable upstream: one clear sentence naming it.
    let r = sh(
        &bottle,
        "cd /tmp && git clone -q ssh://git@down.bottle.test:1/srv/app.git d 2>&1",
    )
    .await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stdout
            .contains("bottle-git-gate cannot fetch from ssh://git@down.bottle.test:1/srv/app.git"),
        "{r:?}"
    );

    // No key material anywhere in the agent: not on disk, in its env, or any process's
    // environment or command line.
    let private = std::fs::read_to_string(&user_key).unwrap();
    // A line from the middle of the key's base64: the first is the same in every OpenSSH key.
    let lines: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let body = lines[lines.len() / 2].to_owned();
    assert!(body.len() >= 40, "{private:?}");
    // The script holds the body in two halves, so that no command line of the search (the
    // shell's included) holds it; the greps that do have exited before the command lines are
    // read.
    let (head, tail) = body.split_at(body.len() / 2);
    let r = sh(
        &bottle,
        &format!(
            "b='{head}''{tail}'; \
             grep -rIlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e \"$b\" / \
             | wc -l; env | grep -cF \"$b\"; \
             cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF \"$b\"; \
             python3 -c \"import glob\ndef r(p):\n try: return open(p, 'rb').read()\n \
             except OSError: return b''\nb = '{head}' + '{tail}'\n\
             print(sum(b.encode() in r(p) for p in glob.glob('/proc/[0-9]*/cmdline')))\"; \
             ls /home/node/.ssh 2>/dev/null | wc -l"
        ),
    )
    .await;
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "0", "0", "0"],
        "{r:?}"
    );

    // The gate serves its own bottle only: the upstream shares a network with it and reaches
    // its port, but the connection is closed unanswered.
    let gate = plan.topology().sidecar(Role::GitGate).unwrap().name.clone();
    let probe = upstream_sh(
        &engine,
        &upstream,
        &format!("git ls-remote http://{gate}:9419/app 2>&1; echo rc=$?"),
    )
    .await;
    assert!(!probe.contains("refs/heads"), "{probe}");
    assert!(
        probe.contains("Empty reply") || probe.contains("reset"),
        "reached and closed: {probe}"
    );

    bottle.close().await.unwrap();
    backend.teardown(&plan, &events).await.unwrap();
    assert!(
        objects_of(&engine, identity.as_str()).await.is_empty(),
        "left behind: {:?}",
        objects_of(&engine, identity.as_str()).await
    );
}
