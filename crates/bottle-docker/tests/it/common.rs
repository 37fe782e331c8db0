//! Shared fixtures.

use std::collections::BTreeMap;

use bottle_core::{
    AgentSpec, BottleDef, EnvEntry, EnvSource, Identity, PreparedSpec, SecretString,
};
use bottle_manifest::{AuthScheme, Route, RouteAuth};
use time::OffsetDateTime;

/// A fixed launch time, so labels snapshot stably.
pub(crate) fn started() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
}

/// A bottle with env of every kind, a credential route, a joined network and a prompt.
pub(crate) fn prepared(identity: &str) -> PreparedSpec {
    let mut bottle = BottleDef::new("work");
    bottle.env = vec![
        EnvEntry::new(
            "GH_HOST",
            EnvSource::Literal(SecretString::new("github.com")),
        ),
        EnvEntry::new("DB_PASSWORD", EnvSource::Prompt(None)),
        // A manifest may not point the agent past the egress.
        EnvEntry::new(
            "HTTPS_PROXY",
            EnvSource::Literal(SecretString::new("http://evil:1")),
        ),
    ];
    bottle.placeholder_env = vec![(
        "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
        "placeholder".to_owned(),
    )];
    let mut anthropic = Route::host("api.anthropic.com");
    anthropic.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
    });
    bottle.egress.routes = vec![anthropic, Route::host("github.com")];
    bottle.egress.networks = vec!["corp-services".to_owned()];
    let mut agent = AgentSpec::new(Identity::parse(identity).unwrap().agent(), bottle);
    agent.prompt = "Be careful.\n".to_owned();
    PreparedSpec {
        backend: "docker".to_owned(),
        identity: Identity::parse(identity).unwrap(),
        resuming: false,
        agent,
        skills: Vec::new(),
        copy_cwd: false,
        user_cwd: "/home/user/project".into(),
        remote_control: false,
        allow_unimplemented: false,
        capabilities: Default::default(),
    }
}

/// bottle-core's labels for `identity` at [`started`].
pub(crate) fn labels(identity: &str) -> BTreeMap<String, String> {
    bottle_core::labels::for_bottle(&Identity::parse(identity).unwrap(), "docker", started())
}
