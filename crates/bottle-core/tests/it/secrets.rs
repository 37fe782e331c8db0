//! Resolving env values and credentials at launch; nothing secret is ever shown.

use bottle_core::testing::FakeBackend;
use bottle_core::{Error, SecretString, Secrets};

use crate::support::{self, Host};

#[tokio::test]
async fn resolves_literal_host_and_prompted_values_in_manifest_order() {
    let host = Host::new();
    let plan = support::prepare(&FakeBackend::new(), &host).await;
    let mut asked = Vec::new();
    let secrets = Secrets::resolve(&plan.prepared, &host.ctx, |prompt| {
        asked.push((prompt.name.to_owned(), prompt.message.map(str::to_owned)));
        Ok(SecretString::new("typed"))
    })
    .unwrap();
    assert_eq!(
        asked,
        vec![("DB_PASS".to_owned(), Some("database password".to_owned()))]
    );
    let env: Vec<(&str, &str)> = secrets.env().map(|(n, v)| (n, v.expose())).collect();
    assert_eq!(
        env,
        vec![
            ("MODE", "fast"),
            ("GH_TOKEN", "gh-secret"),
            ("DB_PASS", "typed")
        ]
    );
    assert_eq!(
        secrets.token("GITHUB_PAT").map(SecretString::expose),
        Some("pat-secret")
    );
    assert_eq!(secrets.tokens().len(), 1);
}

#[tokio::test]
async fn debug_output_never_contains_a_value() {
    let host = Host::new();
    let plan = support::prepare(&FakeBackend::new(), &host).await;
    let secrets = support::secrets(&plan, &host);
    let debug = format!("{secrets:?} {:?} {plan:?}", SecretString::new("fast"));
    for value in ["fast", "gh-secret", "pat-secret", "typed"] {
        assert!(!debug.contains(value), "{value} leaked: {debug}");
    }
    assert!(debug.contains("GH_TOKEN"));
}

#[tokio::test]
async fn a_failed_prompt_names_the_entry() {
    let host = Host::new();
    let plan = support::prepare(&FakeBackend::new(), &host).await;
    let err = Secrets::resolve(&plan.prepared, &host.ctx, |_| {
        Err("no terminal to ask on".into())
    })
    .unwrap_err();
    assert!(matches!(&err, Error::Prompt { name, .. } if name == "DB_PASS"));
    insta::assert_snapshot!(err.to_string());
}

#[tokio::test]
async fn a_variable_unset_after_prepare_is_still_caught() {
    let host = Host::new();
    let plan = support::prepare(&FakeBackend::new(), &host).await;
    let later = host.without_var("GITHUB_PAT");
    let err = Secrets::resolve(&plan.prepared, &later.ctx, |_| Ok("x".into())).unwrap_err();
    assert!(matches!(err, Error::TokenRefMissing { .. }));
}

#[tokio::test]
async fn placeholders_follow_the_env_unless_the_manifest_sets_the_name() {
    let host = Host::new();
    let mut agent = support::agent();
    agent.bottle.placeholder_env = vec![
        (
            "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
            "placeholder".to_owned(),
        ),
        ("MODE".to_owned(), "ignored".to_owned()),
    ];
    let spec =
        bottle_core::BottleSpec::new(support::manifest_with(agent), support::AGENT, host.home());
    let plan = bottle_core::BottleBackend::prepare(&FakeBackend::new(), spec, &host.ctx)
        .await
        .unwrap();
    let secrets = support::secrets(&plan, &host);
    let env: Vec<(&str, &str)> = secrets.env().map(|(n, v)| (n, v.expose())).collect();
    assert_eq!(
        env,
        vec![
            ("MODE", "fast"),
            ("GH_TOKEN", "gh-secret"),
            ("DB_PASS", "typed"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "placeholder"),
        ]
    );
    let summary = bottle_core::BottlePlan::summary(&plan);
    assert!(
        summary
            .env
            .iter()
            .all(|e| e.name != "CLAUDE_CODE_OAUTH_TOKEN"),
        "placeholders stay out of the preflight"
    );
}
