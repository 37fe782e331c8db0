//! Shared fixtures.

use std::collections::BTreeMap;

use bottle_core::{
    AgentSpec, BottleDef, EnvEntry, EnvSource, GitEntry, Identity, PreparedSpec, SecretString,
    SkillSource,
};
use bottle_manifest::{AuthScheme, GitUpstream, LogMode, Route, RouteAuth};
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
        token_ref: "CLAUDE_CODE_OAUTH_TOKEN".parse().unwrap(),
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
        cwd_credentials: Vec::new(),
        user_cwd: "/home/user/project".into(),
        remote_control: false,
        allow_unimplemented: false,
        capabilities: Default::default(),
    }
}

/// A bottle granting every kind of thing a manifest can: env of each mode (and a placeholder),
/// skills, a git remote, routes with both kinds of credential and with paths, methods and
/// private addresses, a trust root, `egress.networks`, supervise, a prompt, `--cwd` and remote
/// control. Host paths are not read by planning.
pub(crate) fn prepared_with_every_grant(identity: &str) -> PreparedSpec {
    let mut bottle = BottleDef::new("everything");
    bottle.extends = vec!["base".to_owned()];
    bottle.env = vec![
        EnvEntry::new("MODE", EnvSource::Literal(SecretString::new("fast"))),
        EnvEntry::new("GH_TOKEN", EnvSource::Host("GH_PAT".to_owned())),
        EnvEntry::new(
            "DB_PASSWORD",
            EnvSource::Prompt(Some("database".to_owned())),
        ),
    ];
    bottle.placeholder_env = vec![("ANTHROPIC_API_KEY".to_owned(), "placeholder".to_owned())];
    bottle.git = vec![GitEntry::new(
        "app",
        GitUpstream {
            user: "git".to_owned(),
            host: "gitea.example.com".to_owned(),
            port: 30009,
            path: "/me/app.git".to_owned(),
        },
        "/home/user/.ssh/id_app",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
    )];
    let mut anthropic = Route::host("api.anthropic.com");
    anthropic.auth = Some(RouteAuth::Header {
        header: "x-api-key".parse().unwrap(),
        token_ref: "ANTHROPIC_API_KEY".parse().unwrap(),
    });
    let mut github = Route::host("api.github.com");
    github.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "GH_PAT".parse().unwrap(),
    });
    github.path_allowlist = vec!["/repos/me/".parse().unwrap()];
    github.methods = vec!["GET".parse().unwrap(), "POST".parse().unwrap()];
    let mut internal = Route::host("*.internal.example");
    internal.allow_private = true;
    bottle.egress.routes = vec![anthropic, github, internal];
    bottle.egress.trust = vec!["/home/user/corp-ca.pem".into()];
    bottle.egress.networks = vec!["corp-services".to_owned()];
    bottle.egress.log = LogMode::Full;
    bottle.supervise = true;
    let id = Identity::parse(identity).unwrap();
    let mut agent = AgentSpec::new(id.agent(), bottle);
    agent.prompt = "You write code.\n".to_owned();
    agent.skills = vec!["review".to_owned()];
    PreparedSpec {
        backend: "docker".to_owned(),
        identity: id,
        resuming: false,
        agent,
        skills: vec![SkillSource {
            name: "review".to_owned(),
            host_dir: "/home/user/.claude/skills/review".into(),
        }],
        copy_cwd: true,
        user_cwd: "/home/user/project".into(),
        cwd_credentials: Vec::new(),
        remote_control: true,
        allow_unimplemented: false,
        capabilities: Default::default(),
    }
}

/// bottle-core's labels for `identity` at [`started`].
pub(crate) fn labels(identity: &str) -> BTreeMap<String, String> {
    bottle_core::labels::for_bottle(&Identity::parse(identity).unwrap(), "docker", started())
}
