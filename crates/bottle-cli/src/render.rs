//! Text and JSON rendering shared by the commands. Pure: values in, strings out.

use bottle_manifest::{EnvValue, Manifest, RouteSource, Warning, escape, escape_path};
use serde::Serialize;

use crate::context::Context;

/// `warning: …` lines for stderr.
pub(crate) fn warnings(ctx: &Context, warnings: &[Warning]) -> String {
    warnings
        .iter()
        .map(|w| format!("warning: {}\n", relativize(ctx, &w.to_string())))
        .collect()
}

/// Show paths under the working directory and the home directory short, in free text that
/// shows them escaped (every message of bottle-manifest does).
pub(crate) fn relativize(ctx: &Context, text: &str) -> String {
    let mut out = text.replace(&format!("{}/", escape_path(ctx.layout.cwd())), "./");
    if let Some(home) = ctx.layout.user_home() {
        out = out.replace(&format!("{}/", escape_path(home)), "~/");
    }
    out
}

/// Left-aligned columns separated by two spaces; the last column is not padded. Cells are shown
/// [`escape`]d (they hold names and paths, some from repositories); they must not be painted.
pub(crate) fn table(rows: &[Vec<String>], indent: &str) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `[auth:…]` mark of a route, empty without auth. Never the credential.
pub(crate) fn auth_mark(route: &bottle_manifest::Route) -> String {
    route
        .auth
        .as_ref()
        .map(|a| format!("[auth:{}]", a.mark()))
        .unwrap_or_default()
}

/// `info --json`: names and modes only, never a value.
#[derive(Debug, Serialize)]
pub(crate) struct InfoJson {
    pub(crate) agent: AgentJson,
    pub(crate) bottle: BottleJson,
    /// The host variable the api.anthropic.com route injects, if any.
    pub(crate) claude_credential: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AgentJson {
    name: String,
    origin: &'static str,
    path: Option<String>,
    skills: Vec<String>,
    prompt_bytes: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct BottleJson {
    name: String,
    origin: &'static str,
    path: Option<String>,
    chain: Vec<String>,
    env: Vec<EnvJson>,
    git: Vec<GitJson>,
    egress: EgressJson,
    supervise: bool,
    /// `allow` or `deny`: whether repository agents may run in this bottle.
    repository_agents: bottle_manifest::RepositoryAgents,
}

#[derive(Debug, Serialize)]
struct EnvJson {
    name: String,
    mode: &'static str,
    /// For `host` entries, the host variable copied (a name, not a value).
    #[serde(skip_serializing_if = "Option::is_none")]
    host_var: Option<String>,
}

#[derive(Debug, Serialize)]
struct GitJson {
    name: String,
    upstream: String,
    identity_file: String,
}

#[derive(Debug, Serialize)]
struct EgressJson {
    log: bottle_manifest::LogMode,
    trust: Vec<String>,
    networks: Vec<String>,
    routes: Vec<RouteJson>,
}

#[derive(Debug, Serialize)]
struct RouteJson {
    host: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    path_allowlist: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    methods: Vec<String>,
    /// `Bearer`, `token` or the header name; never the credential.
    auth: Option<String>,
    /// The host variable the egress reads the credential from.
    token_ref: Option<String>,
    allow_private: bool,
    source: String,
}

pub(crate) fn info_json(ctx: &Context, m: &Manifest) -> InfoJson {
    let path = |p: Option<&std::path::PathBuf>| p.map(|p| ctx.show_path(p));
    InfoJson {
        agent: AgentJson {
            name: m.agent.name.clone(),
            origin: m.agent.origin.as_str(),
            path: path(m.agent.path.as_ref()),
            skills: m.agent.skills.clone(),
            prompt_bytes: m.prompt_bytes(),
        },
        bottle: BottleJson {
            name: m.bottle.name.clone(),
            origin: m.bottle.origin.as_str(),
            path: path(m.bottle.path.as_ref()),
            chain: m.bottle.chain.clone(),
            env: m
                .bottle
                .env
                .iter()
                .map(|e| EnvJson {
                    name: e.name.clone(),
                    mode: e.value.mode().as_str(),
                    host_var: match &e.value {
                        EnvValue::Host { var } => Some(var.clone()),
                        _ => None,
                    },
                })
                .collect(),
            git: m
                .bottle
                .git
                .iter()
                .map(|g| GitJson {
                    name: g.name.clone(),
                    upstream: g.upstream.to_string(),
                    identity_file: ctx.show_path(&g.identity_file),
                })
                .collect(),
            egress: EgressJson {
                log: m.bottle.egress.log,
                trust: m
                    .bottle
                    .egress
                    .trust
                    .iter()
                    .map(|p| ctx.show_path(p))
                    .collect(),
                networks: m.bottle.egress.networks.clone(),
                routes: m
                    .bottle
                    .egress
                    .routes
                    .iter()
                    .map(|r| RouteJson {
                        host: r.route.host.to_string(),
                        path_allowlist: r
                            .route
                            .path_allowlist
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                        methods: r.route.methods.iter().map(ToString::to_string).collect(),
                        auth: r.route.auth.as_ref().map(|a| a.mark()),
                        token_ref: r.route.auth.as_ref().map(|a| a.token_ref().to_owned()),
                        allow_private: r.route.allow_private,
                        source: match &r.source {
                            RouteSource::ClaudeCode => "claude-code".to_owned(),
                            RouteSource::Bottle(b) => b.clone(),
                        },
                    })
                    .collect(),
            },
            supervise: m.bottle.supervise,
            repository_agents: m.bottle.repository_agents,
        },
        claude_credential: m.bottle.claude_placeholder_env().map(|(var, _)| var),
    }
}
