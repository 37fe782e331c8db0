//! Claude Code's own configuration (`provision::claude_code_files`): the files that open a fresh
//! bottle at the prompt, with the agent's permission mode and the host's theme, and nothing of
//! the host's files beyond that theme.

use bottle_core::provision::{self, CLAUDE_STATE_FILE, MANAGED_SETTINGS_FILE};
use bottle_core::{AgentSpec, BottleDef, FileContents};
use bottle_manifest::{PLACEHOLDER, PermissionMode};

use crate::support::Host;

/// The files as text: path, mode, owner, then the contents, the placeholder filtered.
fn shown(agent: &AgentSpec) -> String {
    provision::claude_code_files(agent)
        .iter()
        .map(|f| {
            let body = match &f.contents {
                FileContents::Dir => "(directory)".to_owned(),
                FileContents::File(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            };
            format!("== {} {:o} {}\n{body}", f.path, f.mode, f.owner)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(PLACEHOLDER, "[PLACEHOLDER]")
}

fn agent_with(placeholder_var: &str) -> AgentSpec {
    let mut bottle = BottleDef::new("b");
    bottle.placeholder_env = vec![(placeholder_var.to_owned(), PLACEHOLDER.to_owned())];
    AgentSpec::new("a", bottle)
}

#[test]
fn an_api_key_bottle_opens_at_the_prompt_with_no_questions() {
    let mut agent = agent_with("ANTHROPIC_API_KEY");
    agent.claude.theme = Some("dark-ansi".to_owned());
    let files = shown(&agent);
    // The approval is the placeholder's end: what the agent holds, never the real key.
    let suffix = &PLACEHOLDER[PLACEHOLDER.len() - 20..];
    assert!(
        files.contains(&format!("\"approved\": [\n      \"{suffix}\"")),
        "{files}"
    );
    insta::assert_snapshot!(files);
}

#[test]
fn an_oauth_bottle_has_no_api_key_approval_and_the_chosen_mode_is_managed() {
    let mut agent = agent_with("CLAUDE_CODE_OAUTH_TOKEN");
    agent.claude.permission_mode = PermissionMode::Plan;
    let files = shown(&agent);
    assert!(!files.contains("customApiKeyResponses"), "{files}");
    assert!(
        !files.contains("skipDangerousModePermissionPrompt"),
        "only bypass mode has that screen: {files}"
    );
    assert!(
        !files.contains("/.claude/settings.json"),
        "no theme, no user settings"
    );
    insta::assert_snapshot!(files);
    let paths: Vec<String> = provision::claude_code_files(&agent)
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(
        paths,
        [CLAUDE_STATE_FILE, "/etc/claude-code", MANAGED_SETTINGS_FILE]
    );
}

#[test]
fn the_theme_comes_from_the_hosts_claude_code_settings_and_nothing_else_does() {
    let host = Host::new();
    let claude = host.home().join(".claude");
    assert_eq!(host.ctx.claude_theme(), None, "no files, no theme");

    std::fs::write(
        host.home().join(".claude.json"),
        r#"{"theme": "light-daltonized", "oauthAccount": {"emailAddress": "me@example.com"}}"#,
    )
    .unwrap();
    assert_eq!(host.ctx.claude_theme().as_deref(), Some("light-daltonized"));

    std::fs::write(
        claude.join("settings.json"),
        r#"{"theme": "dark-ansi", "env": {"K": "v"}}"#,
    )
    .unwrap();
    assert_eq!(
        host.ctx.claude_theme().as_deref(),
        Some("dark-ansi"),
        "settings.json wins, as in Claude Code"
    );

    let mut agent = agent_with("ANTHROPIC_API_KEY");
    agent.claude.theme = host.ctx.claude_theme();
    let files = shown(&agent);
    for other in ["me@example.com", "oauthAccount", "\"K\""] {
        assert!(
            !files.contains(other),
            "{other} leaked from the host: {files}"
        );
    }

    std::fs::write(
        claude.join("settings.json"),
        r#"{"theme": "dark\"}, \"x\": {"}"#,
    )
    .unwrap();
    assert_eq!(
        host.ctx.claude_theme().as_deref(),
        Some("light-daltonized"),
        "a theme that is not a plain name is not taken"
    );
}
