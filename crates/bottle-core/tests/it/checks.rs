//! `prepare`'s common checks: each failure with a snapshot of its message, and that nothing is
//! created and no backend resolution runs when a check fails.

use std::path::PathBuf;

use bottle_core::testing::FakeBackend;
use bottle_core::{
    AgentSpec, BottleBackend, BottleSpec, Error, GitEntry, HostContext, ManifestSource,
};
use bottle_manifest::{Route, RouteAuth};

use crate::support::{self, AGENT, Host};

async fn prepare_error(host: &Host, spec: BottleSpec) -> Error {
    let fake = FakeBackend::new();
    let err = fake.prepare(spec, &host.ctx).await.unwrap_err();
    assert!(
        fake.calls().is_empty(),
        "the backend's own resolution must not run after a failed check"
    );
    assert!(fake.resources().is_empty());
    assert!(
        !host.ctx.bottle_home.exists(),
        "prepare must not create the state folder"
    );
    err
}

fn spec_with(host: &Host, agent: AgentSpec) -> BottleSpec {
    BottleSpec::new(support::manifest_with(agent), AGENT, host.home())
}

#[tokio::test]
async fn valid_spec_prepares_with_a_fresh_identity_and_expanded_paths() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let plan = support::prepare(&fake, &host).await;
    let prepared = &plan.prepared;
    assert_eq!(prepared.identity.agent(), AGENT);
    assert!(!prepared.resuming);
    assert_eq!(
        prepared.skills[0].host_dir,
        host.home().join(".claude/skills/web")
    );
    assert_eq!(
        prepared.agent.bottle.git[0].identity_file,
        host.home().join(".ssh/id_bottle")
    );
    assert!(!host.ctx.bottle_home.exists(), "prepare creates nothing");
}

#[tokio::test]
async fn plan_summary_shows_names_and_modes_never_values() {
    let host = Host::new();
    let plan = support::prepare(&FakeBackend::new(), &host).await;
    let summary = bottle_core::BottlePlan::summary(&plan);
    let json = serde_json::to_string(&summary).unwrap();
    for secret in ["fast", "gh-secret", "pat-secret"] {
        assert!(!json.contains(secret), "summary leaks {secret}");
    }
    support::redactions(&host).bind(|| insta::assert_json_snapshot!(summary));
}

#[tokio::test]
async fn unknown_agent() {
    let host = Host::new();
    let mut spec = support::spec(&host);
    spec.agent_name = "resercher".to_owned();
    let err = prepare_error(&host, spec).await;
    assert!(matches!(err, Error::UnknownAgent { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test]
async fn invalid_manifest_is_reported_with_its_own_message() {
    struct Broken;
    impl ManifestSource for Broken {
        fn agent_names(&self) -> Vec<String> {
            vec![AGENT.to_owned()]
        }
        fn agent(&self, _name: &str) -> Result<Option<AgentSpec>, bottle_core::BoxError> {
            Err("bottles/dev.md:3:1: unknown key `egres`, did you mean `egress`?".into())
        }
    }
    let host = Host::new();
    let spec = BottleSpec::new(std::sync::Arc::new(Broken), AGENT, host.home());
    let err = prepare_error(&host, spec).await;
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test]
async fn missing_skill() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.skills.push("deploy".to_owned());
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::SkillNotFound { .. }));
    support::redactions(&host).bind(|| insta::assert_snapshot!(err.to_string()));
}

#[tokio::test]
async fn names_and_paths_in_messages_are_escaped() {
    // A skill name is one folder name, which may hold any byte but `/`.
    let host = Host::new();
    let mut agent = support::agent();
    agent.skills = vec!["x\u{1b}]52;c;aGk=\u{7}".to_owned()];
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::SkillNotFound { .. }), "{err}");
    let shown = err.to_string();
    assert!(!shown.contains(char::is_control), "{shown:?}");
    assert!(shown.contains("x\\u{1b}]52;c;aGk=\\u{7}"), "{shown}");
}

#[tokio::test]
async fn skill_that_is_a_file_not_a_folder() {
    let host = Host::new();
    std::fs::write(host.home().join(".claude/skills/notes"), "").unwrap();
    let mut agent = support::agent();
    agent.skills = vec!["notes".to_owned()];
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::SkillNotFound { .. }));
}

#[tokio::test]
async fn skill_name_that_escapes_the_skills_folder() {
    let host = Host::new();
    // A folder that exists outside the skills folder must still be refused.
    for name in ["../../.ssh", "..", "a/b", "/etc"] {
        let mut agent = support::agent();
        agent.skills = vec![name.to_owned()];
        let err = prepare_error(&host, spec_with(&host, agent)).await;
        assert!(
            matches!(err, Error::InvalidSkillName { .. }),
            "{name}: {err}"
        );
        if name == "../../.ssh" {
            insta::assert_snapshot!(err.to_string());
        }
    }
}

#[tokio::test]
async fn missing_git_identity_file() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.bottle.git.push(GitEntry::new(
        "deploy",
        support::upstream("/team/deploy.git"),
        "~/.ssh/id_missing",
        "ssh-ed25519 AAAA",
    ));
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::GitIdentityFileMissing { .. }));
    support::redactions(&host).bind(|| insta::assert_snapshot!(err.to_string()));
}

#[tokio::test]
async fn missing_trust_certificate() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.bottle.egress.trust = vec![PathBuf::from("~/certs/company-ca.pem")];
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::TrustFileMissing { .. }));
    support::redactions(&host).bind(|| insta::assert_snapshot!(err.to_string()));
}

#[tokio::test]
async fn unset_host_variable() {
    let host = Host::new().without_var("GH_TOKEN");
    let err = prepare_error(&host, support::spec(&host)).await;
    assert!(matches!(err, Error::HostEnvMissing { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test]
async fn unset_token_ref() {
    let host = Host::new().without_var("GITHUB_PAT");
    let err = prepare_error(&host, support::spec(&host)).await;
    assert!(matches!(err, Error::TokenRefMissing { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test]
async fn header_token_ref_is_checked_too() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.bottle.egress.routes.push(Route {
        auth: Some(RouteAuth::Header {
            header: "x-api-key".parse().unwrap(),
            token_ref: "ANTHROPIC_API_KEY".parse().unwrap(),
        }),
        ..Route::host("api.anthropic.com")
    });
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(
        matches!(&err, Error::TokenRefMissing { token_ref, .. } if token_ref == "ANTHROPIC_API_KEY")
    );
}

#[tokio::test]
async fn a_route_cannot_take_the_name_of_the_bottles_proxy_token() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.bottle.egress.routes.push(Route {
        auth: Some(RouteAuth::Header {
            header: "x-api-key".parse().unwrap(),
            token_ref: "BOTTLE_EGRESS_PROXY_TOKEN".parse().unwrap(),
        }),
        ..Route::host("api.example.com")
    });
    let err = prepare_error(&host, spec_with(&host, agent)).await;
    assert!(matches!(err, Error::TokenRefReserved { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "egress route `api.example.com` takes its credential from `BOTTLE_EGRESS_PROXY_TOKEN`, \
         the name the egress reads the bottle's own proxy token from; export the credential \
         under another name and point the route's `token_ref` at it."
    );
}

#[test]
fn host_context_resolves_home_and_tilde() {
    let env = [("CLAUDE_BOTTLE_HOME".to_owned(), "/srv/cb".to_owned())].into();
    let host = HostContext::new("/home/u", env);
    assert_eq!(host.bottle_home, PathBuf::from("/srv/cb"));
    assert_eq!(host.skills_dir, PathBuf::from("/home/u/.claude/skills"));
    assert_eq!(
        host.expand_tilde("~/.ssh/k".as_ref()),
        PathBuf::from("/home/u/.ssh/k")
    );
    assert_eq!(host.expand_tilde("/abs".as_ref()), PathBuf::from("/abs"));
    let default = HostContext::new("/home/u", Default::default());
    assert_eq!(default.bottle_home, PathBuf::from("/home/u/.claude-bottle"));
}

#[test]
fn host_context_debug_shows_variable_names_not_values() {
    let env = [("API_TOKEN".to_owned(), "s3cret-value".to_owned())].into();
    let debug = format!("{:?}", HostContext::new("/home/u", env));
    assert!(debug.contains("API_TOKEN"));
    assert!(!debug.contains("s3cret-value"));
}
