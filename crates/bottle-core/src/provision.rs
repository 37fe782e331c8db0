//! The provisioning recipe: what goes into every bottle once it runs, written once against the
//! [`Bottle`] handle so that a backend only implements transport.
//!
//! [`BottleBackend::provision`](crate::BottleBackend::provision) runs these in order (CA →
//! prompt → skills → working tree → git → supervise), each as a reported [`Step`](crate::Step), and
//! skips a step with nothing to do. A backend overrides a step only when it can do better than
//! the handle's primitives (baking the CA into an image, say); the default implementations of
//! the `provision_*` methods call these functions.
//!
//! Ownership is decided by the files, never by a `chown` inside: the agent has no `CAP_CHOWN`,
//! and the CA step runs as root on root-owned files only.

use std::path::Path;

use bottle_manifest::gitconfig::{GateEndpoint, render_gitconfig};

use crate::agent::{
    CA_BUNDLE, CA_FILE, GITCONFIG_FILE, HOME, PROMPT_FILE, SKILLS_DIR, SYSTEM_CA_FILE, WORKDIR,
};
use crate::backend::{Bottle, BottleFile, ExecUser, FileOwner, HostTree};
use crate::error::{Error, Result};
use crate::plan::SkillSource;
use crate::spec::{GitEntry, GitUser};

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
