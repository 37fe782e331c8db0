//! The seam to bottle-manifest: a loaded `ManifestIndex` is a `ManifestSource`, and its
//! effective agent becomes an `AgentSpec`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bottle_core::testing::FakeBackend;
use bottle_core::{BottleBackend, BottleSpec, EnvSource, Error, HostContext, ManifestSource};
use bottle_manifest::{ClaudeAuth, Layout, ManifestIndex};

struct Files {
    home: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

fn files() -> Files {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let write = |path: std::path::PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        home.path().join("bottles/base.md"),
        "---\nenv:\n  MODE: fast\nimage:\n  base: corp/debian:12\n  dockerfile: /opt/corp/agent.Dockerfile\n---\n",
    );
    write(
        home.path().join("bottles/work.md"),
        "---\nextends: base\nrepository_agents: allow\nenv:\n  GH_TOKEN: \"${GH_PAT}\"\n  DB_PASS: \"?database password\"\n\
         egress:\n  routes:\n    - host: api.github.com\n      auth: {scheme: Bearer, token_ref: GH_PAT}\n---\n",
    );
    write(
        cwd.path().join(".claude-bottle/agents/reviewer.md"),
        "---\nbottle: work\n---\nReview the diff.\n",
    );
    write(
        cwd.path().join(".claude-bottle/agents/broken.md"),
        "---\nbottle: nowhere\n---\n",
    );
    Files { home, cwd }
}

fn index(files: &Files) -> ManifestIndex {
    let layout = Layout::new(files.home.path(), None, files.cwd.path());
    ManifestIndex::load(
        &layout,
        ClaudeAuth::detect(|v| v == "CLAUDE_CODE_OAUTH_TOKEN"),
    )
}

#[test]
fn an_effective_manifest_becomes_an_agent_spec() {
    let files = files();
    let index = index(&files);
    let agent = index.agent("reviewer").unwrap().expect("reviewer exists");
    assert_eq!(agent.name, "reviewer");
    assert_eq!(agent.origin, bottle_manifest::Origin::Repo);
    assert_eq!(
        agent.file.as_deref(),
        Some(
            files
                .cwd
                .path()
                .join(".claude-bottle/agents/reviewer.md")
                .as_path()
        )
    );
    assert_eq!(agent.prompt.trim(), "Review the diff.");
    assert_eq!(agent.bottle.name, "work");
    assert_eq!(agent.bottle.extends, ["base"]);
    let env: Vec<(&str, &EnvSource)> = agent
        .bottle
        .env
        .iter()
        .map(|e| (e.name.as_str(), &e.source))
        .collect();
    assert!(env.contains(&("GH_TOKEN", &EnvSource::Host("GH_PAT".to_owned()))));
    assert!(env.contains(&(
        "DB_PASS",
        &EnvSource::Prompt(Some("database password".to_owned()))
    )));
    assert!(env.contains(&("MODE", &EnvSource::Literal("fast".into()))));
    let hosts: Vec<&str> = agent
        .bottle
        .egress
        .routes
        .iter()
        .map(|r| r.host.as_str())
        .collect();
    assert!(hosts.contains(&"api.github.com") && hosts.contains(&"api.anthropic.com"));
    assert_eq!(
        agent
            .bottle
            .placeholder_env
            .first()
            .map(|(n, _)| n.as_str()),
        Some("CLAUDE_CODE_OAUTH_TOKEN"),
        "the agent holds a placeholder for the credential the egress injects"
    );
    assert_eq!(agent.bottle.image.base.as_deref(), Some("corp/debian:12"));
    assert_eq!(
        agent.bottle.image.dockerfile.as_deref(),
        Some(std::path::Path::new("/opt/corp/agent.Dockerfile")),
        "the manifest's image overrides reach the backend"
    );
    assert!(index.agent_names().contains(&"reviewer".to_owned()));
}

#[test]
fn unknown_agents_are_none_and_broken_ones_errors() {
    let files = files();
    let index = index(&files);
    assert!(index.agent("nobody").unwrap().is_none());
    assert!(index.agent("broken").is_err());
}

#[tokio::test]
async fn prepare_reports_manifest_problems_through_core_errors() {
    let files = files();
    let manifest: Arc<dyn ManifestSource> = Arc::new(index(&files));
    let env = BTreeMap::from([
        ("GH_PAT".to_owned(), "x".to_owned()),
        ("CLAUDE_CODE_OAUTH_TOKEN".to_owned(), "y".to_owned()),
    ]);
    let host = HostContext::new(files.home.path(), env);
    let fake = FakeBackend::new();

    let plan = fake
        .prepare(
            BottleSpec::new(manifest.clone(), "reviewer", files.cwd.path()),
            &host,
        )
        .await
        .unwrap();
    assert_eq!(plan.prepared.agent.bottle.name, "work");

    let err = fake
        .prepare(
            BottleSpec::new(manifest.clone(), "nobody", files.cwd.path()),
            &host,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownAgent { known, .. } if known.contains(&"reviewer".to_owned()))
    );

    let err = fake
        .prepare(BottleSpec::new(manifest, "broken", files.cwd.path()), &host)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Manifest { agent, .. } if agent == "broken"));
}
