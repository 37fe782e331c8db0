//! The preflight: what a bottle will be granted, shown before the launch question. Rendered
//! from core's [`PlanSummary`] (data), so it can never show a value the summary does not hold —
//! and the summary holds names and modes only, never an env value or a credential.
//!
//! Every value is [`escape`]d before it is painted: agent files, prompts, working directories
//! and backend details can come from a repository, and a control character in one of them must
//! not be able to redraw the preflight it appears in.

use std::path::Path;

use bottle_core::{CleanupSummary, EnvMode, Feature, PlanSummary};
use bottle_manifest::{Origin, PermissionMode, escape};

use crate::render;
use crate::ui::Paint;

/// How Claude Code in the bottle gets a Claude credential, as the preflight shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaudeLogin {
    /// The egress injects the host's credential from `var`; the agent holds a placeholder.
    Injected {
        /// The host variable.
        var: String,
    },
    /// `--login-in-bottle`: Claude Code logs in inside the bottle, and the agent holds that
    /// login.
    InBottle,
    /// An `--exec` session: no Claude Code runs, and no credential is injected.
    NotRun,
}

/// The compact preflight, one fact per line, labels in a column.
pub(crate) fn render(
    summary: &PlanSummary,
    login: &ClaudeLogin,
    paint: Paint,
    show_path: &dyn Fn(&Path) -> String,
) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    // Labels are padded by hand (not `render::table`): values carry colour codes.
    let mut push = |label: &'static str, value: String| rows.push((label, value));
    let e = |text: &str| escape(text).into_owned();

    let mut agent = paint.bold(&e(&summary.agent));
    let origin = match summary.agent_origin {
        // A repository wrote this agent's prompt: say so where it cannot be missed.
        Origin::Repo => paint.warn(Origin::Repo.as_str()),
        other => other.as_str().to_owned(),
    };
    let whence = match &summary.agent_file {
        Some(file) => format!("({origin}, {})", show_path(file)),
        None => format!("({origin})"),
    };
    agent.push_str(&format!("  {}", paint.dim(&whence)));
    if summary.resuming {
        agent.push_str(&paint.dim(&format!("  (resuming {})", summary.identity)));
    }
    push("agent", agent);

    let prompt = &summary.prompt;
    let mut first = true;
    for line in &prompt.head {
        push(if first { "prompt" } else { "" }, e(line));
        first = false;
    }
    let size = format!(
        "({} line{}, {} bytes in all)",
        prompt.lines,
        if prompt.lines == 1 { "" } else { "s" },
        prompt.bytes
    );
    push(if first { "prompt" } else { "" }, paint.dim(&size));

    let mut bottle = paint.bold(&e(&summary.bottle));
    if !summary.extends.is_empty() {
        // Parents first, as folded: `base → team → work`.
        let chain: Vec<String> = summary
            .extends
            .iter()
            .chain([&summary.bottle])
            .map(|name| e(name))
            .collect();
        bottle.push_str(&paint.dim(&format!("  ({})", chain.join(" → "))));
    }
    push("bottle", bottle);

    let env_width = summary.env.iter().map(|e| e.name.len()).max().unwrap_or(0);
    list(
        &mut push,
        "env",
        summary.env.iter().map(|entry| {
            let mode = match entry.mode {
                EnvMode::Literal => "literal",
                EnvMode::Host => "host",
                EnvMode::Prompt => "prompt (asked after you confirm)",
            };
            format!("{:<env_width$}  {}", e(&entry.name), paint.dim(mode))
        }),
    );
    list(&mut push, "skills", summary.skills.iter().map(|s| e(s)));
    let git_width = summary.git.iter().map(|g| g.name.len()).max().unwrap_or(0);
    list(
        &mut push,
        "git",
        summary.git.iter().map(|g| {
            format!(
                "{:<git_width$} → {}  {}",
                e(&g.name),
                e(&g.address),
                paint.dim(&e(&g.policy))
            )
        }),
    );
    missing_grant(&mut push, summary, Feature::GitGate, paint);
    let host_width = summary
        .egress
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(0);
    list(
        &mut push,
        "egress",
        summary.egress.iter().map(|r| {
            let mut line = e(&r.host);
            let mut marks = Vec::new();
            if !r.ports.is_empty() {
                let ports: Vec<String> = r.ports.iter().map(ToString::to_string).collect();
                marks.push(format!("ports {}", ports.join(",")));
            }
            if let Some(auth) = &r.auth {
                marks.push(format!("[auth:{}]", e(auth)));
            }
            if r.auth_every_subdomain {
                marks.push("[auth on every sub-domain]".to_owned());
            }
            if !r.methods.is_empty() {
                marks.push(e(&r.methods.join(",")));
            }
            if !r.paths.is_empty() {
                marks.push(e(&r.paths.join(" ")));
            }
            if r.allow_private {
                marks.push("[private]".to_owned());
            }
            if !marks.is_empty() {
                line = format!("{line:<host_width$}  {}", marks.join(" "));
            }
            line
        }),
    );
    push(
        "claude",
        match login {
            ClaudeLogin::Injected { var } => format!(
                "{}  {}",
                e(var),
                paint.dim("from the host, injected by the egress; the agent holds a placeholder")
            ),
            ClaudeLogin::InBottle => paint
                .warn("logs in inside the bottle (--login-in-bottle): the agent holds that login"),
            ClaudeLogin::NotRun => paint.dim("not run (--exec)"),
        },
    );
    if !matches!(login, ClaudeLogin::NotRun) {
        let mode = summary.permission_mode;
        let why = match mode {
            PermissionMode::BypassPermissions => "no permission prompts: the bottle is the sandbox",
            PermissionMode::Default => "Claude Code asks before risky tool uses",
            PermissionMode::AcceptEdits => "file edits without asking; other tools ask",
            PermissionMode::Plan => "read-only until you approve a plan",
            PermissionMode::Auto => "Claude Code's classifier decides what to ask",
        };
        push("mode", format!("{mode}  {}", paint.dim(why)));
    }

    if !summary.networks.is_empty() {
        list(&mut push, "networks", summary.networks.iter().map(|n| e(n)));
        missing_grant(&mut push, summary, Feature::EgressNetworks, paint);
    }

    if let Some(cwd) = &summary.copy_cwd {
        push(
            "cwd",
            format!("{}  {}", show_path(cwd), paint.dim("(copied in)")),
        );
        for found in &summary.cwd_credentials {
            push(
                "",
                format!(
                    "{} {}:{} {}: {}; stripped from the copy (your file is unchanged)",
                    paint.dim("-"),
                    show_path(&found.file),
                    found.line,
                    e(&found.key),
                    found.kind.describe()
                ),
            );
        }
    }
    if summary.remote_control {
        push("remote", "Claude Code --remote-control".to_owned());
    }
    // A convenience: what is missing is said, never refused (see bottle_core::capability).
    let supervise = if !summary.supervise {
        "off".to_owned()
    } else if summary.unimplemented.contains(&Feature::Supervise) {
        paint.dim(&format!(
            "not available on the {} backend yet",
            e(&summary.backend)
        ))
    } else {
        "on".to_owned()
    };
    push("supervise", supervise);
    push("runtime", e(&summary.runtime));
    push("image", e(&summary.image));
    // The backend's own lines, grouped under its name: its labels (`agent`, `egress`) would
    // read as duplicates of ours otherwise.
    let detail_width = summary
        .details
        .iter()
        .map(|d| d.label.len())
        .max()
        .unwrap_or(0);
    let backend = e(&summary.backend);
    if summary.details.is_empty() {
        rows.push(("backend", backend.clone()));
    }
    let mut details = Vec::new();
    for detail in &summary.details {
        details.push(format!(
            "{}  {}",
            paint.dim(&format!("{:<detail_width$}", e(&detail.label))),
            e(&detail.value)
        ));
    }
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|(label, _)| label.len())
        .chain([backend.chars().count(), "identity".len()])
        .max()
        .unwrap_or(0);
    let mut line = |label: &str, value: &str| {
        let label = format!("{label:<width$}");
        out.push_str(&format!("  {}  {value}\n", paint.dim(&label)));
    };
    for (label, value) in &rows {
        line(label, value);
    }
    for (i, detail) in details.iter().enumerate() {
        line(if i == 0 { &backend } else { "" }, detail);
    }
    line("identity", summary.identity.as_ref());
    out
}

/// Below a grant's lines: the backend does not implement it, and what that means for the launch.
fn missing_grant(
    push: &mut impl FnMut(&'static str, String),
    summary: &PlanSummary,
    feature: Feature,
    paint: Paint,
) {
    if !summary.unimplemented.contains(&feature) {
        return;
    }
    let what = paint.warn(&format!(
        "not implemented by the {} backend",
        escape(&summary.backend)
    ));
    let then = if summary.allow_unimplemented {
        "launched without it (--allow-unimplemented)"
    } else {
        "refused unless --allow-unimplemented"
    };
    push("", format!("{what}: {then}"));
}

/// A multi-line entry: the label on the first line, `(none)` when empty.
fn list(
    push: &mut impl FnMut(&'static str, String),
    label: &'static str,
    items: impl Iterator<Item = String>,
) {
    let mut first = true;
    for item in items {
        push(if first { label } else { "" }, item);
        first = false;
    }
    if first {
        push(label, "(none)".to_owned());
    }
}

/// What `cleanup` would remove, as a table.
pub(crate) fn cleanup(summary: &CleanupSummary) -> String {
    let mut rows = vec![vec![
        "KIND".to_owned(),
        "NAME".to_owned(),
        "BOTTLE".to_owned(),
    ]];
    rows.extend(summary.items.iter().map(|item| {
        vec![
            item.kind.clone(),
            item.name.clone(),
            item.identity
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ]
    }));
    render::table(&rows, "  ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bottle_core::{
        AgentSpec, BottleDef, Capabilities, Detail, EnvEntry, EnvSource, GitCredential,
        GitCredentialKind, Identity, PlanSummary, PreparedSpec, SkillSource,
    };
    use bottle_manifest::{Origin, Route};

    use super::*;

    const HOSTILE: &str = "\u{1b}[1;1r\u{1b}]52;c;aGk=\u{7}\r\n\u{9b}8m\u{202e}";

    /// Every string a summary carries, hostile: the rendered preflight holds no control or
    /// bidirectional character but its own line ends.
    #[test]
    fn every_value_is_escaped() {
        let h = |s: &str| format!("{s}{HOSTILE}");
        let mut bottle = BottleDef::new(h("bottle"));
        bottle.extends = vec![h("base")];
        bottle.env = vec![EnvEntry::new(h("ENV"), EnvSource::Host("X".to_owned()))];
        // Route hosts, paths and methods are validated types: they cannot hold a control
        // character, so the route here is plain.
        bottle.egress.routes = vec![Route::host("host.example")];
        bottle.egress.networks = vec![h("network")];
        let mut agent = AgentSpec::new(h("agent"), bottle);
        agent.origin = Origin::Repo;
        agent.file = Some(PathBuf::from(h("/repo/agent")));
        agent.prompt = format!("{}\n{}\n", h("first"), h("second"));
        let prepared = PreparedSpec {
            backend: h("backend"),
            identity: Identity::parse("agent-abcde").expect("identity"),
            resuming: true,
            agent,
            skills: vec![SkillSource {
                name: h("skill"),
                host_dir: PathBuf::from("/skills"),
            }],
            copy_cwd: true,
            user_cwd: PathBuf::from(h("/cwd")),
            cwd_credentials: vec![GitCredential {
                file: PathBuf::from(h(".git/config")),
                line: 3,
                key: h("remote.origin.url"),
                kind: GitCredentialKind::UrlCredentials,
            }],
            remote_control: true,
            // Missing features are shown with the backend's (hostile) name.
            allow_unimplemented: false,
            capabilities: Capabilities::none(),
        };
        let mut summary = PlanSummary::from_prepared(&prepared);
        summary.runtime = h("runtime");
        summary.image = h("image");
        summary.details = vec![Detail {
            label: h("label"),
            value: h("value"),
        }];
        let show = |p: &Path| escape(&p.to_string_lossy()).into_owned();
        for login in [
            ClaudeLogin::Injected { var: h("VAR") },
            ClaudeLogin::InBottle,
            ClaudeLogin::NotRun,
        ] {
            let out = render(&summary, &login, Paint { enabled: false }, &show);
            for line in out.lines() {
                assert!(
                    !line.contains(
                        |c: char| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)
                    ),
                    "{line:?}"
                );
            }
            assert!(out.contains("\\u{1b}[1;1r"), "{out}");
            assert_eq!(out.lines().filter(|l| l.starts_with("  agent ")).count(), 1);
        }
    }
}
