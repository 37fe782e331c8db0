//! The gate's configuration: the file's shape, loading, and validation with positions.
//!
//! The entries have exactly the shape (and keys) of a bottle manifest's `git:` entries and are
//! checked by the same rules ([`bottle_manifest::git::check_entries`]); only `IdentityFile`
//! means the key's path inside the gate.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bottle_manifest::git::{self, GitField};
use bottle_manifest::{Cidr, Diagnostic, GitEntry};
use bottle_secrets::{MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN, Scanner};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{ConfigError, ConfigProblem, GateError};

/// The port the gate listens on in a bottle (`http://git-gate:9419/<name>.git`).
pub const DEFAULT_PORT: u16 = bottle_manifest::gitconfig::GATE_PORT;

/// The default listening address: loopback, so a standalone run exposes nothing by accident.
/// In a bottle the config says `listen: 0.0.0.0:9419`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9419";

/// Where the gate keeps its bare repositories, hooks and `known_hosts` files by default.
pub const DEFAULT_STATE: &str = "/var/lib/bottle-git-gate";

/// The gate's configuration; the YAML (or JSON) file has exactly this shape.
///
/// ```yaml
/// listen: 0.0.0.0:9419
/// clients: [172.18.0.0/16, 127.0.0.0/8]  # who may connect; default: anyone who reaches `listen`
/// state: /var/lib/bottle-git-gate        # bare repositories, hooks, known_hosts files
/// known_secrets: [GH_TOKEN, ANTHROPIC_API_KEY]   # environment variables; values never here
/// entries:
///   - Name: app
///     Upstream: ssh://git@github.com/me/app.git
///     IdentityFile: /etc/bottle-git-gate/keys/app   # mode 0600 or 0400
///     KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
///     ExtraHosts: {github.com: 140.82.121.3}
///     PushRefs: [refs/heads/agent/*]
///     AllowForce: false
///     AllowDelete: false
///     AllowTags: false
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Where the smart-HTTP server listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The networks whose clients are served; a connection from anywhere else is closed
    /// unanswered. `None`: whoever reaches `listen`. In a bottle: the bottle's own internal
    /// network and loopback, never an `egress.networks` network the gate joins to reach an
    /// upstream (its other containers must not use the entries' keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<Cidr>>,
    /// The gate's own directory: one bare repository per entry, the pre-receive hook, the
    /// `known_hosts` file of each entry. Nothing under it is a key.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// Names of environment variables holding values that must never leave in a push (the
    /// bottle's credentials). Each must be set when the gate starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_secrets: Vec<String>,
    /// The upstreams, in the manifest's `git:` shape.
    pub entries: Vec<GitEntry>,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid literal"))
}

fn default_state() -> PathBuf {
    PathBuf::from(DEFAULT_STATE)
}

/// Where a problem is, as a key path; mapped to a line and column when the text is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    State,
    Entries,
    KnownSecret(usize),
    Entry(usize, GitField),
    IdentityFile(usize),
}

impl Field {
    fn path(&self) -> String {
        match self {
            Field::State => "state".to_owned(),
            Field::Entries => "entries".to_owned(),
            Field::KnownSecret(i) => format!("known_secrets[{i}]"),
            Field::IdentityFile(i) => format!("entries[{i}].IdentityFile"),
            Field::Entry(i, f) => match f {
                GitField::Name => format!("entries[{i}].Name"),
                GitField::KnownHostKey => format!("entries[{i}].KnownHostKey"),
                GitField::ExtraHost(h) => format!("entries[{i}].ExtraHosts.{h}"),
                GitField::PushRef(j) => format!("entries[{i}].PushRefs[{j}]"),
                _ => format!("entries[{i}]"),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Problem {
    field: Field,
    message: String,
    hint: Option<String>,
}

impl Problem {
    fn new(field: Field, message: impl Into<String>, hint: Option<&str>) -> Problem {
        Problem {
            field,
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }
}

impl GateConfig {
    /// A config serving `entries` from `state`, listening on loopback for anyone who reaches
    /// it, with no known secrets.
    pub fn new(state: impl Into<PathBuf>, entries: Vec<GitEntry>) -> GateConfig {
        GateConfig {
            listen: default_listen(),
            clients: None,
            state: state.into(),
            known_secrets: Vec::new(),
            entries,
        }
    }

    /// Parse a config from YAML (or JSON) text. `file` names it in errors and anchors relative
    /// paths. Checks the shape and every rule that needs neither files nor the environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every problem with its position.
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<GateConfig, ConfigError> {
        let config = Self::parse_shape(text, file)?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(locate(text, file, problems))
        }
    }

    /// Read and parse a config file (see [`from_yaml`](Self::from_yaml)).
    ///
    /// # Errors
    ///
    /// [`GateError::Io`] if the file cannot be read, or [`GateError::Config`].
    pub fn load(path: &Path) -> Result<GateConfig, GateError> {
        let text = read(path)?;
        Ok(Self::from_yaml(&text, Some(path))?)
    }

    /// Everything `bottle-git-gate run` would refuse, with positions: the shape, the rules,
    /// each `IdentityFile` (readable, a file, not readable by group or others — ssh refuses
    /// such a key), and each known secret (set in `env`, long enough to scan for).
    ///
    /// # Errors
    ///
    /// [`GateError::Io`] if the file cannot be read, or [`GateError::Config`] listing every
    /// problem.
    pub fn check(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GateConfig, GateError> {
        let text = read(path)?;
        let config = Self::parse_shape(&text, Some(path))?;
        let mut problems = config.problems();
        if problems.is_empty() {
            problems.extend(config.file_problems());
            problems.extend(config.secret_problems(env));
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(locate(&text, Some(path), problems).into())
        }
    }

    /// Every problem of a config built in code (no positions): the rules, the files and the
    /// known secrets in `env`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose problems name their key path.
    pub fn validate(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let mut problems = self.problems();
        if problems.is_empty() {
            problems.extend(self.file_problems());
            problems.extend(self.secret_problems(env));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: problems
                    .into_iter()
                    .map(|p| ConfigProblem::Field {
                        field: p.field.path(),
                        message: match p.hint {
                            Some(h) => format!("{}; {h}", p.message),
                            None => p.message,
                        },
                    })
                    .collect(),
            })
        }
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Option<&GitEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The scanner every push goes through: the built-in detectors, and each known secret
    /// read from `env` (named by its variable, never shown).
    ///
    /// # Errors
    ///
    /// [`GateError::Config`] when a known secret is unset, and [`GateError::Scanner`] when one
    /// cannot be scanned for (too short or too long).
    pub fn scanner(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Scanner, GateError> {
        let mut builder = Scanner::builder();
        for name in &self.known_secrets {
            match env(name).filter(|v| !v.is_empty()) {
                Some(value) => {
                    builder.known_secret(name.as_str(), value);
                }
                None => {
                    return Err(ConfigError {
                        problems: vec![ConfigProblem::Field {
                            field: "known_secrets".to_owned(),
                            message: unset_secret(name),
                        }],
                    }
                    .into());
                }
            }
        }
        Ok(builder.build()?)
    }

    fn parse_shape(text: &str, file: Option<&Path>) -> Result<GateConfig, ConfigError> {
        let mut config: GateConfig = bottle_manifest::yaml::parse(text).map_err(|e| {
            let message = e.message.clone();
            ConfigError {
                problems: vec![match file {
                    Some(path) => ConfigProblem::At(Diagnostic::at(
                        path, text, e.line, e.column, message, None,
                    )),
                    None => ConfigProblem::Field {
                        field: format!("{}:{}", e.line, e.column),
                        message,
                    },
                }],
            }
        })?;
        if let Some(dir) = file.and_then(Path::parent) {
            let anchor = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            anchor(&mut config.state);
            config
                .entries
                .iter_mut()
                .for_each(|e| anchor(&mut e.identity_file));
        }
        Ok(config)
    }

    /// The rules that need neither files nor the environment.
    fn problems(&self) -> Vec<Problem> {
        let mut problems: Vec<Problem> = git::check_entries(&self.entries)
            .into_iter()
            .map(|p| Problem {
                field: Field::Entry(p.entry, p.field),
                message: p.message,
                hint: p.hint,
            })
            .collect();
        if self.entries.is_empty() {
            problems.push(Problem::new(
                Field::Entries,
                "`entries` is empty, so the gate would serve nothing",
                Some("list at least one upstream (the bottle's `git:` entries)"),
            ));
        }
        if !self.state.is_absolute() {
            problems.push(Problem::new(
                Field::State,
                format!("`state` {} is not an absolute path", self.state.display()),
                Some("write `/…`, e.g. /var/lib/bottle-git-gate"),
            ));
        }
        for (i, entry) in self.entries.iter().enumerate() {
            if !entry.identity_file.is_absolute() {
                problems.push(Problem::new(
                    Field::IdentityFile(i),
                    format!(
                        "`IdentityFile` {} is not an absolute path",
                        entry.identity_file.display()
                    ),
                    None,
                ));
            } else if entry.identity_file.starts_with(&self.state) {
                // The state directory holds what the gate serves; a key there is one mistake
                // away from a client.
                problems.push(Problem::new(
                    Field::IdentityFile(i),
                    format!(
                        "`IdentityFile` {} is inside the gate's `state` directory {}",
                        entry.identity_file.display(),
                        self.state.display()
                    ),
                    Some("keep keys apart from what the gate serves, e.g. under /etc/bottle-git-gate/keys/"),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, name) in self.known_secrets.iter().enumerate() {
            if !bottle_manifest::route::is_env_name(name) {
                problems.push(Problem::new(
                    Field::KnownSecret(i),
                    format!(
                        "`{}` is not an environment variable name",
                        bottle_manifest::escape(name)
                    ),
                    Some("name the variable that holds the secret (letters, digits and `_`); the value never goes in this file"),
                ));
            } else if !names.insert(name.as_str()) {
                problems.push(Problem::new(
                    Field::KnownSecret(i),
                    format!("`{name}` is listed twice"),
                    None,
                ));
            }
        }
        problems
    }

    fn file_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let path = &entry.identity_file;
            let problem = match std::fs::metadata(path) {
                Err(e) => Some(format!("cannot read the key {}: {e}", path.display())),
                Ok(meta) if !meta.is_file() => {
                    Some(format!("the key {} is not a file", path.display()))
                }
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Some(format!(
                    "the key {} is readable by others (mode {:o}), and ssh refuses such a key; `chmod 600` it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                )),
                Ok(_) => match std::fs::File::open(path) {
                    Err(e) => Some(format!("cannot read the key {}: {e}", path.display())),
                    Ok(_) => None,
                },
            };
            if let Some(message) = problem {
                problems.push(Problem::new(Field::IdentityFile(i), message, None));
            }
        }
        problems
    }

    fn secret_problems(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, name) in self.known_secrets.iter().enumerate() {
            let message = match env(name).filter(|v| !v.is_empty()) {
                None => unset_secret(name),
                Some(v) if v.len() < MIN_KNOWN_SECRET_LEN => format!(
                    "`{name}` holds {} bytes; a known secret needs at least {MIN_KNOWN_SECRET_LEN} to be found without false alarms: leave it out, or use a longer secret",
                    v.len()
                ),
                Some(v) if v.len() > MAX_KNOWN_SECRET_LEN => format!(
                    "`{name}` holds {} bytes; at most {MAX_KNOWN_SECRET_LEN} can be scanned for: leave it out",
                    v.len()
                ),
                Some(_) => continue,
            };
            problems.push(Problem::new(Field::KnownSecret(i), message, None));
        }
        problems
    }
}

fn unset_secret(name: &str) -> String {
    format!(
        "`{name}` is not set in the gate's environment; pass it to the gate process (e.g. `docker run -e {name}`)"
    )
}

fn read(path: &Path) -> Result<String, GateError> {
    std::fs::read_to_string(path).map_err(|source| GateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Attach line and column to each problem by re-reading the text with spans.
fn locate(text: &str, file: Option<&Path>, problems: Vec<Problem>) -> ConfigError {
    let spans: Option<SpanDoc> = bottle_manifest::yaml::parse(text).ok();
    let mut located: Vec<(Option<(usize, usize)>, ConfigProblem)> = problems
        .into_iter()
        .map(|p| {
            let position = spans.as_ref().and_then(|s| s.position(&p.field));
            let problem = match (file, position) {
                (Some(path), Some((line, column))) => {
                    ConfigProblem::At(Diagnostic::at(path, text, line, column, p.message, p.hint))
                }
                _ => ConfigProblem::Field {
                    field: p.field.path(),
                    message: match p.hint {
                        Some(h) => format!("{}; {h}", p.message),
                        None => p.message,
                    },
                },
            };
            (position, problem)
        })
        .collect();
    located.sort_by_key(|(position, _)| position.unwrap_or((usize::MAX, 0)));
    ConfigError {
        problems: located.into_iter().map(|(_, p)| p).collect(),
    }
}

type At = Spanned<IgnoredAny>;

/// The config's shape with positions only; unknown keys were already refused by the first
/// parse, so this one ignores them.
#[derive(Deserialize)]
struct SpanDoc {
    state: Option<At>,
    entries: Option<Spanned<Vec<Spanned<EntrySpans>>>>,
    #[serde(default)]
    known_secrets: Vec<At>,
}

#[derive(Deserialize)]
struct EntrySpans {
    #[serde(rename = "Name")]
    name: Option<At>,
    #[serde(rename = "IdentityFile")]
    identity_file: Option<At>,
    #[serde(rename = "KnownHostKey")]
    known_host_key: Option<At>,
    #[serde(rename = "ExtraHosts")]
    extra_hosts: Option<At>,
    #[serde(rename = "PushRefs", default)]
    push_refs: Vec<At>,
}

impl SpanDoc {
    fn position(&self, field: &Field) -> Option<(usize, usize)> {
        let entry = |i: usize| self.entries.as_ref()?.value.get(i);
        let at: (u64, u64) = match field {
            Field::State => span(self.state.as_ref()?),
            Field::Entries => span(self.entries.as_ref()?),
            Field::KnownSecret(i) => span(self.known_secrets.get(*i)?),
            Field::IdentityFile(i) => {
                let e = entry(*i)?;
                e.value.identity_file.as_ref().map_or_else(|| span(e), span)
            }
            Field::Entry(i, f) => {
                let e = entry(*i)?;
                let own = match f {
                    GitField::Name => e.value.name.as_ref().map(span),
                    GitField::KnownHostKey => e.value.known_host_key.as_ref().map(span),
                    GitField::ExtraHost(_) => e.value.extra_hosts.as_ref().map(span),
                    GitField::PushRef(j) => e.value.push_refs.get(*j).map(span),
                    _ => None,
                };
                own.unwrap_or_else(|| span(e))
            }
        };
        let line = usize::try_from(at.0).ok()?;
        let column = usize::try_from(at.1).ok()?;
        (line > 0).then_some((line, column.max(1)))
    }
}

fn span<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "  - Name: app\n    Upstream: ssh://git@example.com/me/app.git\n    IdentityFile: /etc/bottle-git-gate/keys/app\n    KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n";

    #[test]
    fn a_minimal_config_gets_the_defaults() {
        let c = GateConfig::from_yaml(&format!("entries:\n{ENTRY}"), None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.state, Path::new(DEFAULT_STATE));
        assert_eq!(c.entries[0].name, "app");
        assert_eq!(c.entries[0].upstream.host, "example.com");
        assert!(c.known_secrets.is_empty());
    }

    #[test]
    fn json_is_accepted_too() {
        let c = GateConfig::from_yaml(
            r#"{"state": "/srv/gate", "entries": [{"Name": "app", "Upstream": "ssh://git@h:2222/r.git", "IdentityFile": "/k/app", "KnownHostKey": "ssh-ed25519 AAAA", "PushRefs": ["refs/heads/agent/*"]}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(c.entries[0].upstream.port, 2222);
        assert_eq!(
            c.entries[0].effective_push_refs()[0].as_str(),
            "refs/heads/agent/*"
        );
    }

    #[test]
    fn a_config_round_trips_through_serde() {
        let c = GateConfig::from_yaml(
            &format!("known_secrets: [GH_TOKEN]\nentries:\n{ENTRY}    ExtraHosts: {{example.com: 10.0.0.7}}\n    PushRefs: [refs/heads/agent/*]\n    AllowDelete: true\n"),
            None,
        )
        .unwrap();
        let json = serde_json_like(&c);
        assert_eq!(GateConfig::from_yaml(&json, None).unwrap(), c);
    }

    /// YAML written by hand from the serialised value (the crate has no serializer
    /// dependency): flow style, which JSON also is.
    fn serde_json_like(c: &GateConfig) -> String {
        let e = &c.entries[0];
        format!(
            "{{listen: \"{}\", state: \"{}\", known_secrets: [{}], entries: [{{Name: {}, Upstream: \"{}\", IdentityFile: \"{}\", KnownHostKey: \"{}\", ExtraHosts: {{{}}}, PushRefs: [{}], AllowDelete: {}}}]}}",
            c.listen,
            c.state.display(),
            c.known_secrets.join(", "),
            e.name,
            e.upstream,
            e.identity_file.display(),
            e.known_host_key,
            e.extra_hosts
                .iter()
                .map(|(h, ip)| format!("{h}: {ip}"))
                .collect::<Vec<_>>()
                .join(", "),
            e.push_refs
                .iter()
                .flatten()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", "),
            e.allow_delete
        )
    }

    #[test]
    fn problems_point_at_their_value() {
        let text = format!(
            "state: relative/state\nknown_secrets: [GH_TOKEN, 'not a name', GH_TOKEN]\nentries:\n{ENTRY}    ExtraHosts: {{other.example: 10.0.0.1}}\n    PushRefs: [refs/tags/*]\n"
        );
        let err = GateConfig::from_yaml(&text, None).unwrap_err();
        let fields: Vec<String> = err
            .problems
            .iter()
            .map(|p| match p {
                ConfigProblem::Field { field, .. } => field.clone(),
                ConfigProblem::At(d) => format!("{}:{}", d.line, d.column),
            })
            .collect();
        assert_eq!(
            fields,
            [
                "state",
                "known_secrets[1]",
                "known_secrets[2]",
                "entries[0].ExtraHosts.other.example",
                "entries[0].PushRefs[0]",
            ]
        );
        let err = GateConfig::from_yaml(&text, Some(Path::new("/etc/gate.yaml"))).unwrap_err();
        let positions: Vec<(usize, usize)> = err
            .problems
            .iter()
            .map(|p| match p {
                ConfigProblem::At(d) => (d.line, d.column),
                ConfigProblem::Field { field, .. } => panic!("{field} has no position"),
            })
            .collect();
        // `state` is anchored at the config's folder, so only the others remain.
        assert_eq!(positions, [(2, 27), (2, 41), (8, 17), (9, 16)]);
    }

    #[test]
    fn a_key_inside_the_state_directory_is_refused() {
        let text = "state: /srv/gate\nentries:\n  - Name: app\n    Upstream: ssh://git@h/r.git\n    IdentityFile: /srv/gate/repos/app.git/key\n    KnownHostKey: ssh-ed25519 AAAA\n";
        let err = GateConfig::from_yaml(text, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("inside the gate's `state` directory"),
            "{err}"
        );
    }

    #[test]
    fn shape_errors_come_with_positions() {
        let err = GateConfig::from_yaml(
            &format!("entries:\n{ENTRY}    AllowForse: true\n"),
            Some(Path::new("/etc/gate.yaml")),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/etc/gate.yaml:6:5: unknown key"),
            "{text}"
        );
        assert!(text.contains("did you mean `AllowForce`"), "{text}");
        let err = GateConfig::from_yaml(
            "entries:\n  - Name: a\n    Upstream: https://github.com/me/a.git\n    IdentityFile: /k\n    KnownHostKey: ssh-ed25519 AAAA\n",
            Some(Path::new("/etc/gate.yaml")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not an SSH upstream"), "{err}");
    }
}
