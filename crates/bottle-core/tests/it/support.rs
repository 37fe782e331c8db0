//! Shared fixtures: an isolated host (temporary home, explicit env) and a manifest whose agent
//! uses every kind of grant.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bottle_core::testing::{FakeBackend, FakePlan};
use bottle_core::{
    AgentSpec, BottleBackend, BottleDef, BottleSpec, EgressSpec, EnvEntry, EnvSource, GitEntry,
    HostContext, SecretString, Secrets, StateStore, StaticManifest,
};
use bottle_manifest::{AuthScheme, Route, RouteAuth};
use tempfile::TempDir;

pub(crate) const AGENT: &str = "researcher";

/// A temporary home with the agent's skill folder and git key in place, and the host variables
/// the agent's bottle needs.
pub(crate) struct Host {
    pub(crate) dir: TempDir,
    pub(crate) ctx: HostContext,
}

impl Host {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp home");
        let home = dir.path();
        std::fs::create_dir_all(home.join(".claude/skills/web")).expect("skill dir");
        std::fs::create_dir_all(home.join(".ssh")).expect("ssh dir");
        std::fs::write(home.join(".ssh/id_bottle"), "key").expect("key file");
        let env = BTreeMap::from([
            ("GH_TOKEN".to_owned(), "gh-secret".to_owned()),
            ("GITHUB_PAT".to_owned(), "pat-secret".to_owned()),
            (
                "CLAUDE_BOTTLE_HOME".to_owned(),
                home.join(".claude-bottle").display().to_string(),
            ),
        ]);
        let ctx = HostContext::new(home, env);
        Host { dir, ctx }
    }

    pub(crate) fn home(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn state(&self) -> StateStore {
        StateStore::new(&self.ctx.bottle_home)
    }

    pub(crate) fn without_var(mut self, name: &str) -> Self {
        self.ctx.env.remove(name);
        self
    }
}

/// An agent granted a skill, a git upstream, literal/host/prompt env entries and two routes,
/// one with an injected credential.
pub(crate) fn agent() -> AgentSpec {
    let mut bottle = BottleDef::new("dev");
    bottle.extends = vec!["base".to_owned()];
    bottle.env = vec![
        EnvEntry::new("MODE", EnvSource::Literal(SecretString::new("fast"))),
        EnvEntry::new("GH_TOKEN", EnvSource::Host("GH_TOKEN".to_owned())),
        EnvEntry::new(
            "DB_PASS",
            EnvSource::Prompt(Some("database password".to_owned())),
        ),
    ];
    bottle.git = vec![GitEntry::new(
        "origin",
        upstream("/team/repo.git"),
        "~/.ssh/id_bottle",
        "ssh-ed25519 AAAA",
    )];
    bottle.egress = EgressSpec {
        routes: vec![
            Route {
                auth: Some(RouteAuth::Scheme {
                    scheme: AuthScheme::Bearer,
                    token_ref: "GITHUB_PAT".parse().unwrap(),
                }),
                methods: vec!["GET".parse().unwrap()],
                ..Route::host("api.github.com")
            },
            Route::host("pypi.org"),
        ],
        ..EgressSpec::default()
    };
    let mut agent = AgentSpec::new(AGENT, bottle);
    agent.prompt = "You research.".to_owned();
    agent.skills = vec!["web".to_owned()];
    agent
}

pub(crate) fn upstream(path: &str) -> bottle_manifest::GitUpstream {
    bottle_manifest::GitUpstream {
        user: "git".to_owned(),
        host: "git.example.com".to_owned(),
        port: 22,
        path: path.to_owned(),
    }
}

pub(crate) fn manifest_with(agent: AgentSpec) -> Arc<StaticManifest> {
    Arc::new(
        StaticManifest::new()
            .with_agent(agent)
            .with_agent(AgentSpec::new("writer", BottleDef::new("default"))),
    )
}

pub(crate) fn spec(host: &Host) -> BottleSpec {
    let mut spec = BottleSpec::new(manifest_with(agent()), AGENT, host.home().join("project"));
    spec.remote_control = true;
    spec
}

/// Prepares the fixture agent on `fake`.
pub(crate) async fn prepare(fake: &FakeBackend, host: &Host) -> FakePlan {
    fake.prepare(spec(host), &host.ctx)
        .await
        .expect("prepare the fixture agent")
}

/// Prepares the fixture agent on `fake` with `--cwd` too (its project folder), so that every
/// provisioning step has work to do.
pub(crate) async fn prepare_copying(fake: &FakeBackend, host: &Host) -> FakePlan {
    let mut spec = spec(host);
    spec.copy_cwd = true;
    fake.prepare(spec, &host.ctx)
        .await
        .expect("prepare the fixture agent with --cwd")
}

/// Secrets for the fixture agent, answering its one `?` entry.
pub(crate) fn secrets(plan: &FakePlan, host: &Host) -> Secrets {
    Secrets::resolve(&plan.prepared, &host.ctx, |_| {
        Ok(SecretString::new("typed"))
    })
    .expect("resolve secrets")
}

/// insta settings that hide temporary paths, identities' random suffixes and timestamps.
pub(crate) fn redactions(host: &Host) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&host.home().display().to_string()), "[HOME]");
    settings.add_filter(r"researcher-[0-9a-z]{5}", "researcher-[ID]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    settings
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
