//! What the agent sees of the git gate: a git config that rewrites each declared upstream, in
//! the spellings people use for it, to the gate — so `git clone`, `fetch`, `pull` and `push`
//! of the usual URL just work — and the agent's `user.name` / `user.email`.
//!
//! Here, with the git vocabulary, because two sides render it: bottle-core's provisioning
//! installs it as the agent's `/etc/gitconfig`, and the gate (`bottle_git_gate::agent`)
//! documents and tests against it.
//!
//! ```
//! use bottle_manifest::gitconfig::{GateEndpoint, render_gitconfig};
//! use bottle_manifest::{GitEntry, GitUser};
//!
//! let entry: GitEntry = bottle_manifest::yaml::parse(
//!     "Name: app\nUpstream: ssh://git@github.com/me/app.git\nIdentityFile: /k\nKnownHostKey: ssh-ed25519 AAAA\n",
//! )?;
//! let user = GitUser { name: Some("Claude".into()), email: Some("claude@example.com".into()) };
//! let config = render_gitconfig(&GateEndpoint::in_bottle(), &[entry], &user);
//! assert!(config.contains("[url \"http://git-gate:9419/app\"]"));
//! assert!(config.contains("\tinsteadOf = \"git@github.com:me/app\"\n"));
//! assert!(config.contains("\tpushInsteadOf = \"https://github.com/me/app\"\n"));
//! # Ok::<(), bottle_manifest::yaml::YamlError>(())
//! ```

use crate::git::GitUser;
use crate::model::{GitEntry, GitUpstream};

/// The name the gate has on the bottle's internal network.
pub const GATE_HOST: &str = "git-gate";

/// The port the gate listens on in a bottle (`http://git-gate:9419/<name>.git`).
pub const GATE_PORT: u16 = 9419;

/// Forges whose SSH paths are also their HTTPS paths and whose scp-like spelling takes a
/// path relative to nothing (`git@github.com:me/app`), so both spellings name the same
/// repository as `ssh://git@github.com/me/app`.
pub const FORGES: &[&str] = &["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"];

/// Where the agent reaches the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateEndpoint {
    /// Host name (or address) of the gate as the agent resolves it.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl GateEndpoint {
    /// `git-gate:9419`: the gate's alias and port in a bottle.
    pub fn in_bottle() -> GateEndpoint {
        GateEndpoint {
            host: GATE_HOST.to_owned(),
            port: GATE_PORT,
        }
    }

    /// `http://<host>:<port>/` (IPv6 in brackets).
    pub fn base_url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}/", self.host, self.port)
        } else {
            format!("http://{}:{}/", self.host, self.port)
        }
    }

    /// The URL of entry `name` without `.git` (`http://git-gate:9419/app`): the prefix the
    /// rewritten URLs start with, so `….git` and a trailing `/` of the original carry over.
    pub fn entry_url(&self, name: &str) -> String {
        format!("{}{name}", self.base_url())
    }
}

/// The URL prefixes that mean `upstream`, each without the repository's `.git` (git's
/// `insteadOf` matches prefixes, so `…/app` also rewrites `…/app.git` and `…/app/`):
///
/// - `ssh://user@host[:port]/path` as declared, and with `:22` spelled out on port 22;
/// - scp-like `user@host:/path` (port 22 only: scp syntax has no port);
/// - on a known forge ([`FORGES`]), also `user@host:path` and `https://host/path`.
pub fn url_spellings(upstream: &GitUpstream) -> Vec<String> {
    let path = upstream.path.strip_suffix(".git").unwrap_or(&upstream.path);
    let host = if upstream.host.contains(':') {
        format!("[{}]", upstream.host)
    } else {
        upstream.host.clone()
    };
    let user = &upstream.user;
    let mut out = Vec::new();
    if upstream.port == 22 {
        out.push(format!("ssh://{user}@{host}{path}"));
        out.push(format!("ssh://{user}@{host}:22{path}"));
        out.push(format!("{user}@{host}:{path}"));
        if FORGES.contains(&upstream.host.as_str()) {
            let relative = path.trim_start_matches('/');
            out.push(format!("{user}@{host}:{relative}"));
            out.push(format!("https://{host}/{relative}"));
        }
    } else {
        out.push(format!("ssh://{user}@{host}:{}{path}", upstream.port));
    }
    out
}

/// The agent's git config (a bottle installs it as `/etc/gitconfig`): `user.name` and
/// `user.email` when given, no proxy for the gate (the agent's `HTTP_PROXY` points at the
/// egress), and for each entry an `insteadOf` and a `pushInsteadOf` per spelling of its
/// upstream.
pub fn render_gitconfig(gate: &GateEndpoint, entries: &[GitEntry], user: &GitUser) -> String {
    let mut out = String::from(
        "# Written by claude-bottle. Each declared upstream is served by the bottle's git gate,\n\
         # which holds the SSH key, scans every push for secrets and decides which refs may move:\n\
         # clone, fetch, pull and push the usual URLs.\n",
    );
    if !user.is_empty() {
        out.push_str("[user]\n");
        if let Some(name) = &user.name {
            out.push_str(&format!("\tname = {}\n", quote(name)));
        }
        if let Some(email) = &user.email {
            out.push_str(&format!("\temail = {}\n", quote(email)));
        }
    }
    // An empty proxy for the gate's URLs wins over HTTP_PROXY/http_proxy (NO_PROXY says the
    // same, for tools other than git).
    out.push_str(&format!(
        "[http {}]\n\tproxy = \"\"\n",
        quote(&gate.base_url())
    ));
    for entry in entries {
        out.push_str(&format!("# {} ({})\n", entry.name, entry.upstream));
        out.push_str(&format!("[url {}]\n", quote(&gate.entry_url(&entry.name))));
        let spellings = url_spellings(&entry.upstream);
        for key in ["insteadOf", "pushInsteadOf"] {
            for spelling in &spellings {
                out.push_str(&format!("\t{key} = {}\n", quote(spelling)));
            }
        }
    }
    out
}

/// A git config value or subsection name in double quotes (`#` and `;` start comments
/// otherwise), `\` and `"` escaped. Values never hold a newline: the manifest refuses them.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, upstream: &str) -> GitEntry {
        crate::yaml::parse(&format!(
            "Name: {name}\nUpstream: {upstream}\nIdentityFile: /k\nKnownHostKey: ssh-ed25519 AAAA\n"
        ))
        .unwrap()
    }

    #[test]
    fn the_agent_gitconfig() {
        let entries = [
            entry("app", "ssh://git@github.com/me/app.git"),
            entry("infra", "ssh://git@gitea.example.com:30009/team/infra.git"),
            entry("lib", "ssh://deploy@[2001:db8::1]/srv/git/lib"),
        ];
        let user = GitUser {
            name: Some("Claude (bottle \"work\")".to_owned()),
            email: Some("claude@example.com".to_owned()),
        };
        insta::assert_snapshot!(render_gitconfig(
            &GateEndpoint::in_bottle(),
            &entries,
            &user
        ));
    }

    #[test]
    fn no_user_section_without_a_user() {
        let text = render_gitconfig(
            &GateEndpoint::in_bottle(),
            &[entry("app", "ssh://git@h/r.git")],
            &GitUser::default(),
        );
        assert!(!text.contains("[user]"), "{text}");
    }
}
