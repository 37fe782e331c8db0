//! The provisioning recipe: what goes into every bottle once it runs, written once against the
//! [`Bottle`] handle so that a backend only implements transport.
//!
//! [`BottleBackend::provision`](crate::BottleBackend::provision) runs these in order (CA →
//! Claude Code's configuration → prompt → skills → working tree → git → supervise), each as a
//! reported [`Step`](crate::Step), and
//! skips a step with nothing to do. A backend overrides a step only when it can do better than
//! the handle's primitives (baking the CA into an image, say); the default implementations of
//! the `provision_*` methods call these functions.
//!
//! Ownership is decided by the files, never by a `chown` inside: the agent has no `CAP_CHOWN`,
//! and the CA step runs as root on root-owned files only.

use std::path::Path;

use bottle_manifest::PermissionMode;
use bottle_manifest::gitconfig::{GateEndpoint, render_gitconfig};
use serde_json::json;

use crate::agent::{
    CA_BUNDLE, CA_FILE, GITCONFIG_FILE, HOME, PROMPT_FILE, SKILLS_DIR, SYSTEM_CA_FILE, WORKDIR,
};
use crate::backend::{Bottle, BottleFile, ExecUser, FileOwner, HostTree};
use crate::error::{Error, Result};
use crate::plan::SkillSource;
use crate::spec::{AgentSpec, GitEntry, GitUser};

/// Claude Code's user state (onboarding, the approved API key, trusted folders), owned by the
/// agent: Claude Code rewrites it as it runs.
pub const CLAUDE_STATE_FILE: &str = "/home/node/.claude.json";
/// Claude Code's user settings (the theme), owned by the agent.
pub const CLAUDE_SETTINGS_FILE: &str = "/home/node/.claude/settings.json";
/// Claude Code's managed settings (the permission mode), owned by root and read-only to the
/// agent, so the agent cannot lower what the bottle chose.
pub const MANAGED_SETTINGS_FILE: &str = "/etc/claude-code/managed-settings.json";
/// The credential variable Claude Code asks about ("Do you want to use this API key?") unless
/// its value's last [`APPROVED_KEY_SUFFIX`] characters are approved.
const API_KEY_VAR: &str = "ANTHROPIC_API_KEY";
/// How many trailing characters of an API key Claude Code records as approved.
const APPROVED_KEY_SUFFIX: usize = 20;

/// The files that make a fresh bottle open at Claude Code's prompt, with no question asked
/// (measured for Claude Code 2.1.332):
///
/// - [`CLAUDE_STATE_FILE`]: `hasCompletedOnboarding` (skips the theme picker and the security
///   notes, and with them the onboarding connectivity checks), the trust of [`WORKDIR`]
///   (`projects[WORKDIR].hasTrustDialogAccepted`) and, when the agent holds an API-key
///   placeholder, `customApiKeyResponses.approved` with the placeholder's last 20 characters:
///   the value the agent holds, never anything of the real key (which the egress injects).
/// - [`CLAUDE_SETTINGS_FILE`]: the host's `theme`, when it has one.
/// - [`MANAGED_SETTINGS_FILE`]: `permissions.defaultMode` from the agent's `permission_mode`,
///   and for `bypassPermissions` `skipDangerousModePermissionPrompt` (its "are you sure"
///   screen). Managed, so no flag is needed and `--continue` and the user's arguments work.
///
/// Nothing here is secret.
pub fn claude_code_files(agent: &AgentSpec) -> Vec<BottleFile> {
    let mut state = json!({
        "hasCompletedOnboarding": true,
        "projects": { WORKDIR: { "hasTrustDialogAccepted": true } },
    });
    let placeholder = agent
        .bottle
        .placeholder_env
        .iter()
        .find(|(name, _)| name == API_KEY_VAR)
        .map(|(_, value)| value.as_str());
    if let Some(placeholder) = placeholder {
        let start = placeholder
            .char_indices()
            .rev()
            .nth(APPROVED_KEY_SUFFIX - 1)
            .map_or(0, |(i, _)| i);
        state["customApiKeyResponses"] =
            json!({ "approved": [&placeholder[start..]], "rejected": [] });
    }
    let mode = agent.claude.permission_mode;
    let mut managed = json!({ "permissions": { "defaultMode": mode.as_str() } });
    if mode == PermissionMode::BypassPermissions {
        managed["skipDangerousModePermissionPrompt"] = json!(true);
    }
    let pretty = |v: &serde_json::Value| {
        let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
        text.push('\n');
        text
    };

    let mut files = vec![BottleFile::file(
        CLAUDE_STATE_FILE,
        pretty(&state),
        0o600,
        FileOwner::AGENT,
    )];
    if let Some(theme) = &agent.claude.theme {
        files.extend(dirs_between(HOME, CLAUDE_SETTINGS_FILE, FileOwner::AGENT));
        files.push(BottleFile::file(
            CLAUDE_SETTINGS_FILE,
            pretty(&json!({ "theme": theme })),
            0o644,
            FileOwner::AGENT,
        ));
    }
    files.extend(dirs_between("/etc", MANAGED_SETTINGS_FILE, FileOwner::ROOT));
    files.push(BottleFile::file(
        MANAGED_SETTINGS_FILE,
        pretty(&managed),
        0o644,
        FileOwner::ROOT,
    ));
    files
}

/// Writes [`claude_code_files`] into the bottle.
pub async fn configure_claude_code<B: Bottle>(bottle: &B, agent: &AgentSpec) -> Result<()> {
    bottle.write_files(&claude_code_files(agent)).await
}

/// Makes the agent trust the per-bottle CA: [`CA_FILE`] for `NODE_EXTRA_CA_CERTS`, appended
/// to the system bundle [`CA_BUNDLE`], and linked under its subject hash in `/etc/ssl/certs`
/// (for OpenSSL's `CApath` lookups) when the image has `openssl`. Runs as root; fails unless
/// the bundle then holds the CA.
///
/// Not `update-ca-certificates`: it rebuilds the whole bundle and every hash link and runs the
/// image's hooks — over a second of every start for the same result. [`SYSTEM_CA_FILE`] is
/// still written, so a later `update-ca-certificates` (by root in the image) keeps the CA.
pub async fn install_ca<B: Bottle>(bottle: &B, ca_pem: &str) -> Result<()> {
    let pem = ca_pem.as_bytes();
    let mut files = dirs_between("/etc", CA_FILE, FileOwner::ROOT);
    files.push(BottleFile::file(CA_FILE, pem, 0o644, FileOwner::ROOT));
    files.push(BottleFile::file(
        SYSTEM_CA_FILE,
        pem,
        0o644,
        FileOwner::ROOT,
    ));
    bottle.write_files(&files).await?;
    // The second line of the PEM is the start of the certificate's base64: present in the
    // bundle only if the CA was added.
    let certs = Path::new(CA_BUNDLE)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("/etc/ssl/certs");
    let script = format!(
        "set -e; mkdir -p {certs}; cat {CA_FILE} >> {CA_BUNDLE}; \
         if command -v openssl >/dev/null 2>&1; then \
         h=$(openssl x509 -hash -noout -in {CA_FILE}); i=0; \
         while [ -e {certs}/$h.$i ]; do i=$((i+1)); done; \
         ln -s {SYSTEM_CA_FILE} {certs}/$h.$i; fi; \
         grep -q \"$(sed -n 2p {CA_FILE})\" {CA_BUNDLE}"
    );
    let out = bottle.exec(ExecUser::Root, &script).await?;
    if !out.success() {
        return Err(Error::InBottle {
            action: "add the bottle's CA to the agent's trust store".to_owned(),
            exit_code: out.exit_code,
            detail: out.stderr.trim().to_owned(),
        });
    }
    Ok(())
}

/// Copies a non-empty `prompt` to [`PROMPT_FILE`], owned by the agent; returns its path for
/// Claude Code's `--append-system-prompt-file`, or `None` for an empty prompt.
pub async fn copy_prompt<B: Bottle>(bottle: &B, prompt: &str) -> Result<Option<String>> {
    if prompt.trim().is_empty() {
        return Ok(None);
    }
    let mut files = dirs_between(HOME, PROMPT_FILE, FileOwner::AGENT);
    files.push(BottleFile::file(
        PROMPT_FILE,
        prompt.as_bytes(),
        0o644,
        FileOwner::AGENT,
    ));
    bottle.write_files(&files).await?;
    Ok(Some(PROMPT_FILE.to_owned()))
}

/// Copies each skill folder to `SKILLS_DIR/<name>`, owned by the agent.
pub async fn copy_skills<B: Bottle>(bottle: &B, skills: &[SkillSource]) -> Result<()> {
    if skills.is_empty() {
        return Ok(());
    }
    let mut dirs = dirs_between(HOME, SKILLS_DIR, FileOwner::AGENT);
    dirs.push(BottleFile::dir(SKILLS_DIR, 0o755, FileOwner::AGENT));
    bottle.write_files(&dirs).await?;
    for skill in skills {
        bottle
            .cp_in(
                &HostTree::new(&skill.host_dir),
                &format!("{SKILLS_DIR}/{}", skill.name),
            )
            .await?;
    }
    Ok(())
}

/// Installs the agent's git config as [`GITCONFIG_FILE`] (root-owned, world-readable: the
/// agent may read it, not change it): each of `entries`' upstreams, in every spelling, is
/// rewritten to the git gate, and `user` is the committer. The agent gets no key, no
/// `known_hosts` and no ssh config: the gate holds them. Nothing for no entries.
pub async fn install_gitconfig<B: Bottle>(
    bottle: &B,
    entries: &[GitEntry],
    user: &GitUser,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let config = render_gitconfig(&GateEndpoint::in_bottle(), entries, user);
    bottle
        .write_files(&[BottleFile::file(
            GITCONFIG_FILE,
            config.into_bytes(),
            0o644,
            FileOwner::ROOT,
        )])
        .await
}

/// Copies the user's working tree, with its `.git`, to [`WORKDIR`], owned by the agent. Its git
/// configs are read now, once, and copied with their credentials stripped
/// ([`crate::cwd::workdir_copy`]); the host's files are not changed.
pub async fn copy_workdir<B: Bottle>(bottle: &B, cwd: &Path) -> Result<()> {
    let tree = crate::cwd::workdir_copy(cwd)?;
    bottle.cp_in(&tree, WORKDIR).await
}

/// The directories strictly between `base` (which exists and is left as it is) and `path`'s
/// parent, outermost first, owned by `owner`.
fn dirs_between(base: &str, path: &str, owner: FileOwner) -> Vec<BottleFile> {
    let mut dirs: Vec<BottleFile> = Path::new(path)
        .ancestors()
        .skip(1)
        .take_while(|dir| dir.starts_with(base) && *dir != Path::new(base))
        .map(|dir| BottleFile::dir(dir.to_string_lossy(), 0o755, owner))
        .collect();
    dirs.reverse();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_directories_below_the_base_are_made() {
        let paths = |base: &str, p: &str| -> Vec<String> {
            dirs_between(base, p, FileOwner::AGENT)
                .into_iter()
                .map(|f| f.path)
                .collect()
        };
        assert_eq!(paths(HOME, PROMPT_FILE), ["/home/node/.claude-bottle"]);
        assert_eq!(paths(HOME, SKILLS_DIR), ["/home/node/.claude"]);
        assert_eq!(paths("/etc", CA_FILE), ["/etc/claude-bottle"]);
        assert!(paths(HOME, "/home/node/f").is_empty());
    }
}
