//! One manifest file: front matter split, the serde shapes, and validation into the parts the
//! index folds together. Pure: text in, values or diagnostics out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use crate::error::Diagnostic;
use crate::escape::escape;
use crate::git::{self, GitField, GitUser, RefPattern};
use crate::layout::Layout;
use crate::model::{
    AgentImage, EnvValue, EnvVar, GitEntry, GitUpstream, Literal, PermissionMode, RepositoryAgents,
};
use crate::route::{self, LogMode, RawRoute, Route, RouteKey};
use crate::yaml::{self, YamlError, YamlErrorKind};

/// A position in the file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// The text of a file and where it is, to point diagnostics at it.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

/// The text holds literal env values: keep it out of `Debug` output.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("bytes", &self.text.len())
            .finish()
    }
}

impl Source {
    pub(crate) fn diag(
        &self,
        pos: Pos,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut d = Diagnostic::at(&self.path, &self.text, pos.line, pos.column, message, hint);
        if let Some(masked) = mask_env_value(&self.text, d.line) {
            d.source_line = Some(masked);
        }
        d
    }
}

/// If line `line` (1-based) of a front matter holds `env:` values, the line with the values
/// replaced by `…`: a diagnostic shows the offending line, but env values are never printed.
/// Line-based on purpose, so it also works when the YAML does not parse.
pub(crate) fn mask_env_value(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let target = *lines.get(line.checked_sub(1)?)?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_env_key = |l: &str| indent(l) == 0 && l.trim_end().starts_with("env:");
    if is_env_key(target) {
        let rest = target["env:".len()..].trim();
        return (!rest.is_empty() && !rest.starts_with('#')).then(|| "env: …".to_owned());
    }
    if indent(target) == 0 || target.trim().is_empty() {
        return None;
    }
    // Walk up to the enclosing top-level key.
    let top = lines[..line - 1]
        .iter()
        .rev()
        .find(|l| indent(l) == 0 && !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    if !is_env_key(top) {
        return None;
    }
    Some(match target.find(':') {
        Some(cut) => format!("{}: …", &target[..cut]),
        // A continuation line of a multi-line value: all of it is value.
        None => format!("{}…", &target[..indent(target)]),
    })
}

/// A parsed agent file.
#[derive(Debug, Clone)]
pub(crate) struct AgentFile {
    pub(crate) bottle: String,
    pub(crate) bottle_pos: Pos,
    pub(crate) skills: Vec<String>,
    pub(crate) prompt: String,
    pub(crate) permission_mode: PermissionMode,
}

/// A parsed bottle file, before `extends` is folded.
#[derive(Debug, Clone, Default)]
pub(crate) struct BottleFile {
    pub(crate) extends: Vec<(String, Pos)>,
    pub(crate) env: Vec<EnvVar>,
    pub(crate) git: Vec<GitEntry>,
    pub(crate) git_user: GitUser,
    pub(crate) routes: Vec<Route>,
    pub(crate) log: Option<LogMode>,
    pub(crate) trust: Vec<PathBuf>,
    pub(crate) networks: Vec<String>,
    pub(crate) supervise: Option<bool>,
    pub(crate) image: AgentImage,
    pub(crate) repository_agents: RepositoryAgents,
}

/// Whether `name` is a valid agent or bottle name: `[a-z][a-z0-9-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A folder-name-safe identifier for skills, git entry names and Docker networks.
fn is_safe_component(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

// ---------------------------------------------------------------------------------------------
// Front matter

/// The front matter's YAML (with its first line's number in the file) and the body.
struct Split<'a> {
    yaml: &'a str,
    first_line: usize,
    body: &'a str,
}

fn split_front_matter<'a>(src: &Source, text: &'a str) -> Result<Split<'a>, Diagnostic> {
    let no_front = || {
        src.diag(
            Pos { line: 1, column: 1 },
            "the file does not start with a front-matter block",
            Some(
                "begin the file with a line `---`, the YAML keys, and another line `---`"
                    .to_owned(),
            ),
        )
    };
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().ok_or_else(no_front)?;
    if first.trim_end() != "---" {
        return Err(no_front());
    }
    let start = first.len();
    let mut offset = start;
    for (i, line) in lines.enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Ok(Split {
                yaml: &text[start..offset],
                first_line: 2,
                body: &text[offset + line.len()..],
            });
        }
        let _ = i;
        offset += line.len();
    }
    Err(src.diag(
        Pos { line: 1, column: 1 },
        "the front-matter block is not closed",
        Some("add a line `---` after the front-matter keys".to_owned()),
    ))
}

fn parse_front<T: serde::de::DeserializeOwned>(
    src: &Source,
    split: &Split<'_>,
) -> Result<T, Diagnostic> {
    let yaml = if split.yaml.trim().is_empty() {
        "{}"
    } else {
        split.yaml
    };
    yaml::parse(yaml).map_err(|e| yaml_diag(src, split.first_line, e))
}

/// Turn a YAML error into a diagnostic in file coordinates, rephrasing unknown keys.
fn yaml_diag(src: &Source, first_line: usize, e: YamlError) -> Diagnostic {
    let pos = Pos {
        line: e.line + first_line - 1,
        column: e.column,
    };
    match &e.kind {
        YamlErrorKind::UnknownKey { key, allowed } => {
            if let Some((message, hint)) = removed_key(key) {
                return src.diag(pos, message, Some(hint.to_owned()));
            }
            let mut hint = format!("allowed keys here: {}", allowed.join(", "));
            if let Some(best) = yaml::did_you_mean(key, allowed.iter().map(String::as_str)) {
                hint.push_str(&format!("; did you mean `{best}`?"));
            }
            src.diag(pos, format!("unknown key `{}`", escape(key)), Some(hint))
        }
        YamlErrorKind::Limit => src.diag(
            pos,
            e.message,
            Some(
                "manifests are small, plain YAML; remove the deep nesting, aliases or binary data"
                    .to_owned(),
            ),
        ),
        YamlErrorKind::DuplicateKey => src.diag(
            pos,
            e.message,
            Some("each key may appear once per mapping; merge the two entries".to_owned()),
        ),
        _ => {
            // The original tool wrote `egress.log` as a number.
            let hint = (e.message.contains("expected one of off, blocks, full")
                && ["`0`", "`1`", "`2`"]
                    .iter()
                    .any(|n| e.message.contains(&format!("unknown variant {n}"))))
            .then(|| {
                "the numeric levels are gone: 0 is `off`, 1 is `blocks`, 2 is `full`".to_owned()
            });
            src.diag(pos, e.message, hint)
        }
    }
}

/// Keys of the original tool that are gone, with what replaces them.
fn removed_key(key: &str) -> Option<(String, &'static str)> {
    let hint = match key {
        "egress_proxy" => "rename it to `egress`; the `routes` inside keep their shape",
        "cred_proxy" => {
            "declare each upstream as an `egress.routes` entry with `auth: {scheme: Bearer, token_ref: VAR}`; \
             the egress injects the credential and the agent dials the real host"
        }
        "ssh" => {
            "use `git` entries (Name, Upstream, IdentityFile, KnownHostKey): the git gate holds the key"
        }
        "runtime" => {
            "remove it: the agent runs under gVisor (runsc) automatically when the engine has it"
        }
        "allowlist" => "list each host as an `egress.routes` entry: `- host: example.com`",
        "dlp_action" => "remove it: the egress blocks what no route allows",
        "tokens" => "use an `egress.routes` entry with `auth` and `token_ref` for each credential",
        "agent_provider" => {
            "remove it: the api.anthropic.com credential comes from the host's CLAUDE_CODE_OAUTH_TOKEN \
             or ANTHROPIC_API_KEY and is injected by the egress"
        }
        "git-gate" | "git_gate" => {
            "use `git`: a list of entries with Name, Upstream, IdentityFile, KnownHostKey"
        }
        "prompt" => "write the system prompt as the agent file's body, after the front matter",
        "role" => "remove it: routes have no roles; the agent uses the real host names",
        "pipelock" => {
            "remove it: the egress replaced pipelock; use `allow_private` for private addresses"
        }
        "matches" => "use `path_allowlist` (path prefixes) and `methods` on the route",
        "path" | "upstream" | "auth_scheme" => {
            "cred_proxy routes are gone: write `host`, `path_allowlist` and `auth: {scheme, token_ref}`"
        }
        _ => return None,
    };
    Some((format!("`{key}` is no longer supported"), hint))
}

// ---------------------------------------------------------------------------------------------
// Agents

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    bottle: Option<Spanned<String>>,
    skills: Option<Spanned<Vec<Spanned<String>>>>,
    permission_mode: Option<Spanned<String>>,
    // Claude Code sub-agent fields, accepted and ignored so one file serves both tools.
    #[allow(dead_code)]
    name: Option<IgnoredAny>,
    #[allow(dead_code)]
    description: Option<IgnoredAny>,
    #[allow(dead_code)]
    model: Option<IgnoredAny>,
    #[allow(dead_code)]
    color: Option<IgnoredAny>,
    #[allow(dead_code)]
    tools: Option<IgnoredAny>,
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: usize::try_from(s.referenced.line()).unwrap_or(1).max(1),
        column: usize::try_from(s.referenced.column()).unwrap_or(1).max(1),
    }
}

fn shift(pos: Pos, first_line: usize) -> Pos {
    Pos {
        line: pos.line + first_line - 1,
        column: pos.column,
    }
}

pub(crate) fn parse_agent(src: &Source) -> Result<AgentFile, Vec<Diagnostic>> {
    let text = src.text.strip_prefix('\u{feff}').unwrap_or(&src.text);
    let split = split_front_matter(src, text).map_err(|d| vec![d])?;
    let raw: RawAgent = parse_front(src, &split).map_err(|d| vec![d])?;
    let at = |s: Pos| shift(s, split.first_line);
    let mut diags = Vec::new();

    let (bottle, bottle_pos) = match raw.bottle {
        Some(b) => {
            let pos = at(pos_of(&b));
            if !is_valid_name(&b.value) {
                diags.push(src.diag(
                    pos,
                    format!("`{}` is not a valid bottle name", escape(&b.value)),
                    Some("bottle names match [a-z][a-z0-9-]* (the file stem of $CLAUDE_BOTTLE_HOME/bottles/<name>.md)".to_owned()),
                ));
            }
            (b.value, pos)
        }
        None => {
            diags.push(src.diag(
                Pos { line: 1, column: 1 },
                "the agent has no `bottle`",
                Some(
                    "add `bottle: default` (or the name of a bottle in $CLAUDE_BOTTLE_HOME/bottles/) to the front matter"
                        .to_owned(),
                ),
            ));
            (String::new(), Pos::default())
        }
    };

    let mut skills = Vec::new();
    let mut seen = BTreeSet::new();
    for skill in raw.skills.map(|s| s.value).unwrap_or_default() {
        let pos = at(pos_of(&skill));
        if !is_safe_component(&skill.value) {
            diags.push(src.diag(
                pos,
                format!("`{}` is not a skill folder name", escape(&skill.value)),
                Some("give the name of a folder under ~/.claude/skills/, without `/`".to_owned()),
            ));
        } else if !seen.insert(skill.value.clone()) {
            diags.push(src.diag(
                pos,
                format!("skill `{}` is listed twice", skill.value),
                None,
            ));
        } else {
            skills.push(skill.value);
        }
    }

    let mut permission_mode = PermissionMode::default();
    if let Some(mode) = raw.permission_mode {
        match mode.value.parse() {
            Ok(parsed) => permission_mode = parsed,
            Err(()) => {
                let names = PermissionMode::ALL.map(PermissionMode::as_str);
                let mut hint = format!("use one of {}", names.join(", "));
                if let Some(best) = yaml::did_you_mean(&mode.value, names) {
                    hint.push_str(&format!("; did you mean `{best}`?"));
                }
                diags.push(src.diag(
                    at(pos_of(&mode)),
                    format!("`{}` is not a permission mode", escape(&mode.value)),
                    Some(hint),
                ));
            }
        }
    }

    if diags.is_empty() {
        Ok(AgentFile {
            bottle,
            bottle_pos,
            skills,
            permission_mode,
            prompt: split.body.trim_start_matches(['\n', '\r']).to_owned(),
        })
    } else {
        Err(diags)
    }
}

// ---------------------------------------------------------------------------------------------
// Bottles

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBottle {
    extends: Option<Spanned<Extends>>,
    env: Option<EnvMap>,
    git: Option<Vec<Spanned<RawGit>>>,
    git_user: Option<RawGitUser>,
    egress: Option<RawEgress>,
    supervise: Option<bool>,
    image: Option<RawImage>,
    repository_agents: Option<RepositoryAgents>,
}

/// `image:`: the agent image's base or a whole replacement Dockerfile.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Option<Spanned<String>>,
    dockerfile: Option<Spanned<String>>,
    claude_code_version: Option<Spanned<String>>,
}

/// `extends: name` or `extends: [a, b]`.
struct Extends(Vec<String>);

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Extends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bottle name or a list of bottle names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Extends, E> {
                Ok(Extends(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Extends, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Extends(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string-to-string mapping (`env:`, `ExtraHosts:`) in file order, keeping each key's and
/// value's position.
struct EnvMap(Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EnvMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of variable names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EnvMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, Spanned<String>>()? {
                    entries.push(entry);
                }
                Ok(EnvMap(entries))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGit {
    #[serde(rename = "Name")]
    name: Spanned<String>,
    #[serde(rename = "Upstream")]
    upstream: Spanned<String>,
    #[serde(rename = "IdentityFile")]
    identity_file: Spanned<String>,
    #[serde(rename = "KnownHostKey")]
    known_host_key: Option<Spanned<String>>,
    #[serde(rename = "ExtraHosts")]
    extra_hosts: Option<EnvMap>,
    #[serde(rename = "PushRefs")]
    push_refs: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "AllowForce")]
    allow_force: Option<bool>,
    #[serde(rename = "AllowDelete")]
    allow_delete: Option<bool>,
    #[serde(rename = "AllowTags")]
    allow_tags: Option<bool>,
}

/// `git_user:` with positions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitUser {
    name: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgress {
    /// The one route shape, shared with the egress config (see [`RawRoute`]).
    routes: Option<Vec<RawRoute>>,
    log: Option<LogMode>,
    trust: Option<Vec<Spanned<String>>>,
    networks: Option<Vec<Spanned<String>>>,
}

pub(crate) fn parse_bottle(src: &Source, layout: &Layout) -> Result<BottleFile, Vec<Diagnostic>> {
    let text = src.text.strip_prefix('\u{feff}').unwrap_or(&src.text);
    let split = split_front_matter(src, text).map_err(|d| vec![d])?;
    let raw: RawBottle = parse_front(src, &split).map_err(|d| vec![d])?;
    let at = |p: Pos| shift(p, split.first_line);
    let mut diags = Vec::new();
    let mut out = BottleFile {
        supervise: raw.supervise,
        repository_agents: raw.repository_agents.unwrap_or_default(),
        ..BottleFile::default()
    };

    if let Some(extends) = raw.extends {
        let pos = at(pos_of(&extends));
        for name in extends.value.0 {
            if is_valid_name(&name) {
                out.extends.push((name, pos));
            } else {
                diags.push(src.diag(
                    pos,
                    format!("`{}` is not a valid bottle name", escape(&name)),
                    Some("bottle names match [a-z][a-z0-9-]*".to_owned()),
                ));
            }
        }
    }

    for (name, value) in raw.env.map(|e| e.0).unwrap_or_default() {
        let name_pos = at(pos_of(&name));
        if !route::is_env_name(&name.value) {
            diags.push(src.diag(
                name_pos,
                format!(
                    "`{}` is not an environment variable name",
                    escape(&name.value)
                ),
                Some("use letters, digits and `_`, not starting with a digit".to_owned()),
            ));
            continue;
        }
        if crate::agent_env::is_reserved(&name.value) {
            diags.push(
                src.diag(
                    name_pos,
                    format!(
                        "`{}` is set by claude-bottle and cannot be set in a manifest",
                        name.value
                    ),
                    Some(
                        "the agent's proxy, CA, home, Claude credential and Claude Code traffic \
                     variables are managed for it; to give a credential to a host, use an \
                     `egress.routes` entry with `auth`"
                            .to_owned(),
                    ),
                ),
            );
            continue;
        }
        let v = value.value;
        let value = if let Some(message) = v.strip_prefix('?') {
            EnvValue::Prompt {
                message: (!message.is_empty()).then(|| message.to_owned()),
            }
        } else if let Some(var) = v
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .filter(|r| route::is_env_name(r))
        {
            EnvValue::Host {
                var: var.to_owned(),
            }
        } else {
            EnvValue::Literal(Literal::new(v))
        };
        out.env.push(EnvVar {
            name: name.value,
            value,
        });
    }
    out.env.sort_by(|a, b| a.name.cmp(&b.name));

    // Each value is parsed where it stands (so an error points at it), then the typed entries
    // go through the rules the gate's own config uses too (`git::check_entries`).
    let mut candidates: Vec<(GitEntry, Spanned<RawGit>)> = Vec::new();
    for entry in raw.git.unwrap_or_default() {
        let entry_pos = at(pos_of(&entry));
        let g = &entry.value;
        let mut ok = true;
        let mut fail = |pos: Pos, message: String, hint: Option<String>| {
            diags.push(src.diag(pos, message, hint));
            ok = false;
        };
        let upstream = match GitUpstream::parse(&g.upstream.value) {
            Ok(u) => Some(u),
            Err(m) => {
                fail(
                    at(pos_of(&g.upstream)),
                    m,
                    Some("write it as ssh://user@host[:port]/path.git".to_owned()),
                );
                None
            }
        };
        let identity_file = match absolute_path(layout, &g.identity_file.value) {
            Ok(p) => Some(p),
            Err(m) => {
                fail(at(pos_of(&g.identity_file)), m, None);
                None
            }
        };
        if g.known_host_key.is_none() {
            fail(
                entry_pos,
                format!(
                    "git entry `{}` has no `KnownHostKey`",
                    escape(&g.name.value)
                ),
                Some(
                    "the gate refuses to connect without the upstream's host key; \
                     copy it from `ssh-keyscan HOST` (the `ssh-ed25519 AAAA…` part)"
                        .to_owned(),
                ),
            );
        }
        let mut extra_hosts = BTreeMap::new();
        for (host, ip) in g.extra_hosts.iter().flat_map(|m| &m.0) {
            match ip.value.parse::<IpAddr>() {
                Ok(addr) => {
                    extra_hosts.insert(host.value.clone(), addr);
                }
                Err(_) => fail(
                    at(pos_of(ip)),
                    format!("`{}` is not an IP address", escape(&ip.value)),
                    None,
                ),
            }
        }
        let push_refs = g.push_refs.as_ref().map(|patterns| {
            patterns
                .value
                .iter()
                .filter_map(|p| match RefPattern::parse(&p.value) {
                    Ok(pattern) => Some(pattern),
                    Err(m) => {
                        fail(
                            at(pos_of(p)),
                            m,
                            Some("patterns are full ref names; each `*` matches any run of characters, `/` included".to_owned()),
                        );
                        None
                    }
                })
                .collect()
        });
        if let (true, Some(upstream), Some(identity_file), Some(known_host_key)) =
            (ok, upstream, identity_file, g.known_host_key.as_ref())
        {
            candidates.push((
                GitEntry {
                    name: g.name.value.clone(),
                    upstream,
                    identity_file,
                    known_host_key: known_host_key.value.trim().to_owned(),
                    extra_hosts,
                    push_refs,
                    allow_force: g.allow_force.unwrap_or(false),
                    allow_delete: g.allow_delete.unwrap_or(false),
                    allow_tags: g.allow_tags.unwrap_or(false),
                },
                entry,
            ));
        }
    }
    let typed: Vec<GitEntry> = candidates.iter().map(|(e, _)| e.clone()).collect();
    let problems = git::check_entries(&typed);
    for problem in &problems {
        let raw = &candidates[problem.entry].1;
        let pos = match &problem.field {
            GitField::Name => pos_of(&raw.value.name),
            GitField::KnownHostKey => raw
                .value
                .known_host_key
                .as_ref()
                .map_or_else(|| pos_of(raw), pos_of),
            GitField::ExtraHost(host) => raw
                .value
                .extra_hosts
                .iter()
                .flat_map(|m| &m.0)
                .find(|(h, _)| h.value == *host)
                .map_or_else(|| pos_of(raw), |(h, _)| pos_of(h)),
            GitField::PushRef(j) => raw
                .value
                .push_refs
                .as_ref()
                .and_then(|p| p.value.get(*j))
                .map_or_else(|| pos_of(raw), pos_of),
        };
        diags.push(src.diag(at(pos), problem.message.clone(), problem.hint.clone()));
    }
    if problems.is_empty() {
        out.git = typed;
    }
    out.git.sort_by(|a, b| a.name.cmp(&b.name));

    if let Some(user) = raw.git_user {
        for (what, value, slot) in [
            ("name", user.name, &mut out.git_user.name),
            ("email", user.email, &mut out.git_user.email),
        ] {
            if let Some(value) = value {
                match git::validate_user_value(what, &value.value) {
                    Ok(()) => *slot = Some(value.value),
                    Err(m) => diags.push(src.diag(at(pos_of(&value)), m, None)),
                }
            }
        }
    }

    if let Some(egress) = raw.egress {
        out.log = egress.log;
        let position = |p: Option<route::Position>| {
            at(p.map_or(Pos::default(), |p| Pos {
                line: p.line,
                column: p.column,
            }))
        };
        // Valid routes with the position of their host, for the duplicate check.
        let mut routes: Vec<(Route, Pos)> = Vec::new();
        for raw in egress.routes.unwrap_or_default() {
            let mut route = match raw.check() {
                Ok(route) => route,
                Err(issues) => {
                    for issue in issues {
                        diags.push(src.diag(
                            position(issue.position),
                            issue.error.to_string(),
                            None,
                        ));
                    }
                    continue;
                }
            };
            // `trust` paths are host paths: absolute, or `~/…`.
            let mut trusted = true;
            for (i, (text, at)) in raw.trust_entries().enumerate() {
                match absolute_path(layout, text) {
                    Ok(p) => route.trust[i] = p,
                    Err(m) => {
                        diags.push(src.diag(position(at), m, None));
                        trusted = false;
                    }
                }
            }
            if trusted {
                routes.push((route, position(raw.position(RouteKey::Host))));
            }
        }
        let duplicates = route::duplicate_hosts(routes.iter().map(|(r, _)| &r.host));
        for (i, error) in &duplicates {
            diags.push(src.diag(routes[*i].1, error.to_string(), None));
        }
        out.routes = routes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !duplicates.iter().any(|(d, _)| d == i))
            .map(|(_, (route, _))| route)
            .collect();
        for t in egress.trust.unwrap_or_default() {
            match absolute_path(layout, &t.value) {
                Ok(p) => out.trust.push(p),
                Err(m) => diags.push(src.diag(at(pos_of(&t)), m, None)),
            }
        }
        for n in egress.networks.unwrap_or_default() {
            if is_safe_component(&n.value) {
                out.networks.push(n.value);
            } else {
                diags.push(src.diag(
                    at(pos_of(&n)),
                    format!("`{}` is not a Docker network name", escape(&n.value)),
                    Some("use the name shown by `docker network ls`".to_owned()),
                ));
            }
        }
    }

    if let Some(image) = raw.image {
        if let Some(base) = image.base {
            if is_image_reference(&base.value) {
                out.image.base = Some(base.value);
            } else {
                diags.push(src.diag(
                    at(pos_of(&base)),
                    format!("`{}` is not an image reference", escape(&base.value)),
                    Some("write it as `name[:tag]` or `name@sha256:…`, e.g. `debian:bookworm-slim`".to_owned()),
                ));
            }
        }
        if let Some(dockerfile) = image.dockerfile {
            match absolute_path(layout, &dockerfile.value) {
                Ok(p) => out.image.dockerfile = Some(p),
                Err(m) => diags.push(src.diag(at(pos_of(&dockerfile)), m, None)),
            }
        }
        if let Some(version) = image.claude_code_version {
            if is_npm_version(&version.value) {
                out.image.claude_code_version = Some(version.value);
            } else {
                diags.push(
                    src.diag(
                        at(pos_of(&version)),
                        format!("`{}` is not an npm version", escape(&version.value)),
                        Some(
                            "write a version of @anthropic-ai/claude-code, e.g. `2.1.332`; a \
                         dist-tag such as `latest` moves and would not rebuild the image"
                                .to_owned(),
                        ),
                    ),
                );
            }
        }
    }

    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// Whether `raw` looks like a Docker image reference (`[registry/]name[:tag][@digest]`): no
/// spaces, no option-like leading `-`, only the characters references use.
fn is_image_reference(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 255
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
}

/// Whether `raw` is an exact npm version (`2.1.332`, `2.2.0-beta.1`): pinned, so the image's
/// content-hash tag changes exactly when it does.
fn is_npm_version(raw: &str) -> bool {
    let (core, pre) = raw.split_once('-').unwrap_or((raw, ""));
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
        && raw.len() <= 64
        && pre
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !(raw.contains('-') && pre.is_empty())
}

/// An absolute host path, `~` expanded.
fn absolute_path(layout: &Layout, raw: &str) -> Result<PathBuf, String> {
    let expanded = layout
        .expand_tilde(raw)
        .ok_or_else(|| format!("cannot expand `{}`: HOME is not set", escape(raw)))?;
    if expanded.is_absolute() && !raw.contains('\0') {
        Ok(expanded)
    } else {
        Err(format!(
            "`{}` is not an absolute path; write `/…` or `~/…`",
            escape(raw)
        ))
    }
}

/// Read a manifest file's bytes as text, with file-level diagnostics.
pub(crate) fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        // Everything before the bad byte is valid, so the position is exact.
        let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or("");
        let (line, column) = crate::yaml::position_of(prefix, prefix.len());
        let mut d = Diagnostic::file(
            path,
            "the file is not valid UTF-8 text",
            Some("manifests must be UTF-8 Markdown; re-save the file as UTF-8".to_owned()),
        );
        d.line = line;
        d.column = column;
        d
    })?;
    if let Some(offset) = text.find('\0') {
        let (line, column) = crate::yaml::position_of(&text, offset);
        return Err(Diagnostic::at(
            path,
            &text,
            line,
            column,
            "the file contains a NUL character",
            Some("manifests are plain text; remove the binary data".to_owned()),
        ));
    }
    Ok(text)
}
