//! The git-gate vocabulary, shared by bottle manifests (`git:` entries, `git_user:`) and the
//! gate's own config file, so the two can never validate one thing differently.
//!
//! - [`GitUpstream::parse`] reads `ssh://user@host[:port]/path`; [`RefPattern::parse`] reads a
//!   `PushRefs` pattern; [`validate_known_host_key`] and [`validate_user_value`] check single
//!   values.
//! - [`check_entries`] applies every rule that spans fields or entries (names, host keys,
//!   `ExtraHosts`, `PushRefs` against `AllowTags`, duplicate names) to typed entries. The
//!   manifest maps each [`GitProblem`] to a line and column of the bottle file; the gate maps it
//!   to its config file.
//!
//! ```
//! use bottle_manifest::git::RefPattern;
//!
//! let agent = RefPattern::parse("refs/heads/agent/*")?;
//! assert!(agent.matches("refs/heads/agent/fix-1"));
//! assert!(agent.matches("refs/heads/agent/team/fix-2")); // `*` crosses `/`, as in refspecs
//! assert!(!agent.matches("refs/heads/main"));
//! assert!(RefPattern::parse("agent/*").is_err()); // always a full ref name
//! # Ok::<(), String>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::escape::escape;
use crate::model::{GitEntry, GitUpstream};
use crate::route;

/// The refs a push may touch when an entry has no `PushRefs`: every branch.
pub const DEFAULT_PUSH_REFS: &[&str] = &["refs/heads/*"];

/// Where tags live; a change there needs `AllowTags`.
pub const TAGS_PREFIX: &str = "refs/tags/";

// ---------------------------------------------------------------------------------------------
// Upstream

impl GitUpstream {
    /// Parse `ssh://user@host[:port]/path` (IPv6 hosts in brackets). The error is one sentence
    /// quoting the value and saying what is wrong.
    pub fn parse(raw: &str) -> Result<GitUpstream, String> {
        let bad = |why: &str| format!("`{}` is not an SSH upstream: {why}", escape(raw));
        let rest = raw
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("it must start with `ssh://`"))?;
        let (authority, path) = rest
            .find('/')
            .map(|i| rest.split_at(i))
            .ok_or_else(|| bad("the repository path is missing"))?;
        let (user, hostport) = authority
            .split_once('@')
            .ok_or_else(|| bad("the user is missing (`git@…`)"))?;
        let user_ok = !user.is_empty()
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !user_ok {
            return Err(bad("the user name is not valid"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("the bracketed address is not IPv6"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("only `:port` may follow `]`"))?,
                ),
            };
            (addr, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if !hostport.starts_with('[') && !is_plain_host(host) {
            return Err(bad("the host is not valid"));
        }
        let port = match port {
            None => 22,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        // The path reaches a shell on the upstream (`git-upload-pack '<path>'`) and a URL in the
        // agent's git config: printable, no quotes, no spaces.
        let path_ok = path.len() >= 2
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"'\"\\`$".contains(&b));
        if !path_ok {
            return Err(bad(
                "the repository path is empty or contains spaces, quotes or control characters",
            ));
        }
        Ok(GitUpstream {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// `host:port` (an IPv6 host in brackets), as the preflight shows where the gate dials.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name OpenSSH's `known_hosts` uses for this host: `host` on port 22, `[host]:port`
    /// otherwise.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl FromStr for GitUpstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GitUpstream::parse(s)
    }
}

impl serde::Serialize for GitUpstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for GitUpstream {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        GitUpstream::parse(&raw).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Host keys

/// The SSH host key types a `KnownHostKey` may have.
pub const HOST_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Check a `KnownHostKey`: `<type> <base64> [comment]` with a known type. The error is
/// `(message, hint)`.
pub fn validate_known_host_key(raw: &str) -> Result<(), (String, String)> {
    let mut fields = raw.split_whitespace();
    let kind = fields.next().unwrap_or("");
    let key = fields.next().unwrap_or("");
    let base64 = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    // One line: it becomes one line of a known_hosts file.
    if HOST_KEY_TYPES.contains(&kind) && base64 && !raw.contains(['\n', '\r']) {
        return Ok(());
    }
    let hint = if HOST_KEY_TYPES.contains(&key) {
        "give only the key type and the key, without the host name in front (as `ssh-keyscan` prints it after the host)"
    } else {
        "write the key type and the base64 key, e.g. `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA…`"
    };
    Err((
        "`KnownHostKey` is not an SSH public key".to_owned(),
        hint.to_owned(),
    ))
}

/// The key type and key of a valid `KnownHostKey`, without its comment: what a `known_hosts`
/// line holds after the host name.
pub fn host_key_without_comment(raw: &str) -> String {
    raw.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Ref patterns

/// A `PushRefs` pattern: a full ref name (`refs/…`) in which each `*` matches any run of
/// characters, `/` included — the meaning `*` has in git's refspecs, so `refs/heads/agent/*`
/// covers `refs/heads/agent/fix` and `refs/heads/agent/team/fix`. Every other character matches
/// itself; there is no `?`, `[…]` or `**`. A pattern without `*` matches exactly one ref.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefPattern(String);

impl RefPattern {
    /// Parse a pattern. It must start with `refs/` and, with each `*` replaced by a letter, be
    /// a valid ref name (`git check-ref-format`): no spaces, control characters, `~^:?[\`,
    /// `..`, `//`, `@{`, and no component starting with `.` or ending with `.lock`.
    pub fn parse(raw: &str) -> Result<RefPattern, String> {
        let bad = |why: &str| format!("`{}` is not a ref pattern: {why}", escape(raw));
        if !raw.starts_with("refs/") {
            return Err(bad(
                "write the full ref name, e.g. `refs/heads/agent/*` for branches under `agent/`",
            ));
        }
        if raw.len() > 255 {
            return Err(bad("it is longer than 255 characters"));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || "~^:?[\\".contains(*c))
        {
            return Err(bad(&format!(
                "`{}` cannot appear in a ref name",
                crate::escape::escape(c.encode_utf8(&mut [0; 4]))
            )));
        }
        if raw.contains("..") || raw.contains("//") || raw.contains("@{") {
            return Err(bad("`..`, `//` and `@{` cannot appear in a ref name"));
        }
        let components_ok = raw.split('/').all(|c| {
            !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock") && !c.ends_with('.')
        });
        if !components_ok {
            return Err(bad(
                "a part between `/` is empty, starts with `.`, or ends with `.` or `.lock`",
            ));
        }
        // `refs/x` is not a ref git would create; `refs/*` (everything) is the one exception.
        if raw != "refs/*" && raw.split('/').count() < 3 {
            return Err(bad(
                "a ref lives below `refs/<kind>/`, e.g. `refs/heads/main`",
            ));
        }
        Ok(RefPattern(raw.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `refname` (a full ref name) matches.
    pub fn matches(&self, refname: &str) -> bool {
        glob_match(self.0.as_bytes(), refname.as_bytes())
    }

    /// Whether every ref this pattern matches is a tag (it starts with `refs/tags/`).
    pub fn only_tags(&self) -> bool {
        self.0.starts_with(TAGS_PREFIX)
    }
}

/// `*` matches any run of bytes; everything else matches itself. Linear backtracking on the
/// last `*`, so the cost stays `O(len(pattern) × len(text))` at worst.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

impl fmt::Display for RefPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RefPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefPattern::parse(s)
    }
}

impl serde::Serialize for RefPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RefPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RefPattern::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl GitEntry {
    /// An entry with the default policy (every branch, no force, no delete, no tags) and no
    /// `ExtraHosts`; set the public fields for more.
    pub fn new(
        name: impl Into<String>,
        upstream: GitUpstream,
        identity_file: impl Into<std::path::PathBuf>,
        known_host_key: impl Into<String>,
    ) -> GitEntry {
        GitEntry {
            name: name.into(),
            upstream,
            identity_file: identity_file.into(),
            known_host_key: known_host_key.into(),
            extra_hosts: BTreeMap::new(),
            push_refs: None,
            allow_force: false,
            allow_delete: false,
            allow_tags: false,
        }
    }

    /// The refs a push may touch: `PushRefs`, or when it is absent every branch
    /// (`refs/heads/*`), and every tag (`refs/tags/*`) when `AllowTags` is on. `PushRefs: []`
    /// makes the entry fetch-only.
    pub fn effective_push_refs(&self) -> Vec<RefPattern> {
        match &self.push_refs {
            Some(patterns) => patterns.clone(),
            None => {
                let mut refs: Vec<RefPattern> = DEFAULT_PUSH_REFS
                    .iter()
                    .map(|p| RefPattern((*p).to_owned()))
                    .collect();
                if self.allow_tags {
                    refs.push(RefPattern(format!("{TAGS_PREFIX}*")));
                }
                refs
            }
        }
    }

    /// The entry's ref policy in one line, for a preflight: `push refs/heads/agent/*; no force,
    /// no delete, no tags`, or `fetch only` for `PushRefs: []`.
    pub fn policy_summary(&self) -> String {
        let refs = self.effective_push_refs();
        if refs.is_empty() {
            return "fetch only".to_owned();
        }
        let refs: Vec<&str> = refs.iter().map(RefPattern::as_str).collect();
        let allowed = |on: bool, what: &str| {
            if on {
                format!("{what} allowed")
            } else {
                format!("no {what}")
            }
        };
        format!(
            "push {}; {}, {}, {}",
            refs.join(" "),
            allowed(self.allow_force, "force"),
            allowed(self.allow_delete, "delete"),
            allowed(self.allow_tags, "tags")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The agent's git identity

/// `git_user:` in a bottle: the `user.name` and `user.email` the agent's git config gets. What
/// is not given is not set (git then refuses to commit until the agent sets it). The upstream
/// sees these as the author of the agent's commits: claimed by the manifest, not vouched for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitUser {
    /// `user.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `user.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl GitUser {
    /// Whether neither field is set.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none()
    }
}

/// Check a `git_user` value (`what` is `name` or `email`): one line, no `<` or `>` (git's
/// ident delimiters), at most 256 characters, not blank.
pub fn validate_user_value(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("`git_user.{what}` is empty"));
    }
    if value.chars().count() > 256 {
        return Err(format!("`git_user.{what}` is longer than 256 characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err(format!(
            "`git_user.{what}` `{}` contains a control character, `<` or `>`, which git cannot store in an author line",
            escape(value)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rules over typed entries

/// Which part of a git entry a [`GitProblem`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GitField {
    /// `Name`.
    Name,
    /// `KnownHostKey`.
    KnownHostKey,
    /// The `ExtraHosts` entry of this host.
    ExtraHost(String),
    /// The `PushRefs` pattern at this index.
    PushRef(usize),
}

/// A broken rule: which entry (its index in the list checked), which field, what is wrong (one
/// sentence) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitProblem {
    /// The entry's index in the slice given to [`check_entries`].
    pub entry: usize,
    /// The field.
    pub field: GitField,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Whether `name` can name a git entry: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters.
/// It becomes a folder (the gate's bare repository) and a URL path (`/<name>.git`).
pub fn is_valid_entry_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Every rule over typed entries: valid names, unique names, valid host keys, `ExtraHosts`
/// naming the upstream's host with one address per host across entries, and no `PushRefs`
/// pattern that only matches tags while `AllowTags` is off.
pub fn check_entries(entries: &[GitEntry]) -> Vec<GitProblem> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut addresses: BTreeMap<&str, IpAddr> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let mut problem = |field: GitField, message: String, hint: Option<String>| {
            problems.push(GitProblem {
                entry: i,
                field,
                message,
                hint,
            });
        };
        if !is_valid_entry_name(&entry.name) {
            problem(
                GitField::Name,
                format!("`{}` is not a valid git entry name", escape(&entry.name)),
                Some("use letters, digits, `.`, `_` and `-` (at most 64)".to_owned()),
            );
        } else if !names.insert(entry.name.as_str()) {
            problem(
                GitField::Name,
                format!("git entry `{}` is declared twice", entry.name),
                Some("each `Name` must be unique within a bottle".to_owned()),
            );
        }
        if let Err((message, hint)) = validate_known_host_key(&entry.known_host_key) {
            problem(GitField::KnownHostKey, message, Some(hint));
        }
        for (host, addr) in &entry.extra_hosts {
            let field = GitField::ExtraHost(host.clone());
            if !is_plain_host(host) {
                problem(
                    field,
                    format!("`{}` is not a host name", escape(host)),
                    None,
                );
            } else if *host != entry.upstream.host {
                problem(
                    field,
                    format!(
                        "`ExtraHosts` maps `{host}`, but the upstream's host is `{}`",
                        entry.upstream.host
                    ),
                    Some(
                        "`ExtraHosts` gives the address the gate dials for the upstream's host; map that name"
                            .to_owned(),
                    ),
                );
            } else if let Some(previous) = addresses.insert(host.as_str(), *addr)
                && previous != *addr
            {
                problem(
                    field,
                    format!("`{host}` is mapped to both {previous} and {addr}"),
                    Some("a host can have only one address in `ExtraHosts`".to_owned()),
                );
            }
        }
        if !entry.allow_tags {
            for (j, pattern) in entry.push_refs.iter().flatten().enumerate() {
                if pattern.only_tags() {
                    problem(
                        GitField::PushRef(j),
                        format!(
                            "`PushRefs` lists `{pattern}`, but `AllowTags` is off, so no push could use it"
                        ),
                        Some("add `AllowTags: true` to let the agent push tags, or remove the pattern".to_owned()),
                    );
                }
            }
        }
    }
    problems
}

/// A host name or IP literal, as a route's `host` would accept it, but no wildcard: the one
/// host grammar, shared with the routes.
fn is_plain_host(host: &str) -> bool {
    host.parse::<route::HostPattern>()
        .is_ok_and(|h| !h.is_wildcard())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        let m = |p: &str, r: &str| RefPattern::parse(p).unwrap().matches(r);
        assert!(m("refs/heads/main", "refs/heads/main"));
        assert!(!m("refs/heads/main", "refs/heads/main2"));
        assert!(!m("refs/heads/main", "refs/heads/mai"));
        assert!(m("refs/heads/*", "refs/heads/a/b/c"));
        assert!(m("refs/heads/agent-*", "refs/heads/agent-1"));
        assert!(!m("refs/heads/agent-*", "refs/heads/agent"));
        assert!(m("refs/heads/agent*", "refs/heads/agent"));
        assert!(m("refs/heads/*/wip", "refs/heads/a/b/wip"));
        assert!(!m("refs/heads/*/wip", "refs/heads/a/b/wipx"));
        assert!(m("refs/*", "refs/tags/v1"));
        assert!(m("refs/heads/*-*-*", "refs/heads/a-b-c"));
        assert!(!m("refs/heads/*-*-*", "refs/heads/a-b"));
        assert!(!m("refs/tags/*", "refs/heads/tags/x"));
    }

    #[test]
    fn pattern_validation() {
        for ok in [
            "refs/heads/*",
            "refs/*",
            "refs/heads/agent/*",
            "refs/tags/v*",
            "refs/for/main",
        ] {
            assert!(RefPattern::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "heads/main",
            "agent/*",
            "refs/heads/a b",
            "refs/heads/a..b",
            "refs/heads//a",
            "refs/heads/a.lock",
            "refs/heads/.a",
            "refs/heads/a?",
            "refs/heads/[ab]",
            "refs/heads/a:b",
            "refs/heads/",
            "refs/x",
            "refs/heads/a\n",
        ] {
            assert!(RefPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn upstream_round_trips_through_display() {
        for raw in [
            "ssh://git@github.com/org/repo.git",
            "ssh://git@gitea.example.com:30009/me/app.git",
            "ssh://git@[2001:db8::1]/lib.git",
            "ssh://git@[2001:db8::1]:2222/lib.git",
        ] {
            let u = GitUpstream::parse(raw).unwrap();
            assert_eq!(u.to_string(), raw);
            assert_eq!(GitUpstream::parse(&u.to_string()).unwrap(), u);
        }
        assert_eq!(
            GitUpstream::parse("ssh://git@h:2222/r.git")
                .unwrap()
                .known_hosts_name(),
            "[h]:2222"
        );
        assert_eq!(
            GitUpstream::parse("ssh://git@h/r.git")
                .unwrap()
                .known_hosts_name(),
            "h"
        );
        assert!(GitUpstream::parse("ssh://git@[::1]x/r.git").is_err());
        assert!(GitUpstream::parse("ssh://git@h/r'; rm -rf /'").is_err());
    }

    #[test]
    fn user_values() {
        assert!(validate_user_value("name", "Ada Lovelace").is_ok());
        assert!(validate_user_value("email", "ada@example.com").is_ok());
        assert!(validate_user_value("name", " ").is_err());
        assert!(validate_user_value("name", "a\nb").is_err());
        assert!(validate_user_value("email", "<ada@example.com>").is_err());
    }
}
