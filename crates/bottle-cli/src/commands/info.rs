//! `claude-bottle info <AGENT>`: what an agent is granted. Names and modes, never a value.

use bottle_manifest::{EnvValue, Manifest};

use crate::cli::InfoArgs;
use crate::commands::Output;
use crate::context::Context;
use crate::error::CliError;
use crate::render;

pub(crate) fn run(ctx: &Context, args: &InfoArgs) -> Result<Output, CliError> {
    let index = ctx.load();
    let stderr = render::warnings(ctx, index.warnings());
    let manifest = index.manifest(&args.agent).map_err(|e| {
        let mut err = CliError::from(e);
        err.details = err.details.map(|d| render::relativize(ctx, &d));
        err.hint = err.hint.map(|h| render::relativize(ctx, &h));
        err
    })?;
    if args.json {
        let text = serde_json::to_string_pretty(&render::info_json(ctx, &manifest))
            .map_err(anyhow::Error::from)?;
        return Ok(Output::ok(text + "\n", stderr));
    }
    Ok(Output::ok(text(ctx, &manifest), stderr))
}

fn text(ctx: &Context, m: &Manifest) -> String {
    let (agent, bottle) = (&m.agent, &m.bottle);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(vec![k.to_owned(), v]);
    let whence = |origin: bottle_manifest::Origin, path: Option<&std::path::PathBuf>| match path {
        Some(p) => format!("({origin}, {})", ctx.show_path(p)),
        None => format!("({origin})"),
    };
    row(
        "agent",
        format!(
            "{} {}",
            agent.name,
            whence(agent.origin, agent.path.as_ref())
        ),
    );
    row(
        "bottle",
        format!(
            "{} {}",
            bottle.name,
            whence(bottle.origin, bottle.path.as_ref())
        ),
    );
    if bottle.chain.len() > 1 {
        row("extends", bottle.chain.join(" → "));
    }
    row(
        "skills",
        if agent.skills.is_empty() {
            "none".into()
        } else {
            agent.skills.join(", ")
        },
    );
    row("prompt", format!("{} bytes", m.prompt_bytes()));
    row(
        "supervise",
        if bottle.supervise {
            "yes".into()
        } else {
            "no".into()
        },
    );
    row(
        "repository agents",
        match bottle.repository_agents {
            bottle_manifest::RepositoryAgents::Allow => "allowed in this bottle".into(),
            bottle_manifest::RepositoryAgents::Deny => "not allowed".into(),
        },
    );
    row(
        "claude auth",
        match bottle.claude_placeholder_env() {
            Some((var, _)) => format!(
                "{var} from the host, injected by the egress (the agent holds a placeholder)"
            ),
            None => "none: set CLAUDE_CODE_OAUTH_TOKEN (`claude setup-token`) or ANTHROPIC_API_KEY"
                .into(),
        },
    );
    let mut out = render::table(&rows, "");

    out.push_str("\nenv\n");
    if bottle.env.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows: Vec<Vec<String>> = bottle
            .env
            .iter()
            .map(|e| {
                let source = match &e.value {
                    EnvValue::Literal(_) => "literal".to_owned(),
                    EnvValue::Host { var } => format!("host (${var})"),
                    EnvValue::Prompt { .. } => "prompt (asked at launch)".to_owned(),
                };
                vec![e.name.clone(), source]
            })
            .collect();
        out.push_str(&render::table(&rows, "  "));
    }

    out.push_str("\ngit\n");
    if bottle.git.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows: Vec<Vec<String>> = bottle
            .git
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.upstream.to_string(),
                    format!("key {}", ctx.show_path(&g.identity_file)),
                ]
            })
            .collect();
        out.push_str(&render::table(&rows, "  "));
    }

    out.push_str(&format!(
        "\negress (log: {})\n",
        log_name(bottle.egress.log)
    ));
    let rows: Vec<Vec<String>> = bottle
        .egress
        .routes
        .iter()
        .map(|r| {
            let mut limits = Vec::new();
            if !r.route.methods.is_empty() {
                limits.push(r.route.methods.join(","));
            }
            if !r.route.path_allowlist.is_empty() {
                limits.push(r.route.path_allowlist.join(" "));
            }
            if r.route.allow_private {
                limits.push("private addresses allowed".into());
            }
            vec![
                r.route.host.to_string(),
                render::auth_mark(&r.route),
                r.source.label().to_owned(),
                limits.join("  "),
            ]
        })
        .collect();
    out.push_str(&render::table(&rows, "  "));
    if !bottle.egress.trust.is_empty() {
        let trust: Vec<String> = bottle
            .egress
            .trust
            .iter()
            .map(|p| ctx.show_path(p))
            .collect();
        out.push_str(&format!("  trust     {}\n", trust.join(", ")));
    }
    if !bottle.egress.networks.is_empty() {
        out.push_str(&format!(
            "  networks  {}\n",
            bottle.egress.networks.join(", ")
        ));
    }
    out
}

fn log_name(log: bottle_manifest::LogMode) -> &'static str {
    match log {
        bottle_manifest::LogMode::Off => "off",
        bottle_manifest::LogMode::Blocks => "blocks",
        bottle_manifest::LogMode::Full => "full",
    }
}
