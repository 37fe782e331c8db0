//! The egress configuration: the YAML file's shape, loading, and validation with positions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bottle_manifest::{LogMode, Route};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::cidr::Cidr;
use crate::error::{ConfigError, ConfigIssue};
use crate::policy::{Policy, RouteField};

/// The default listening address: loopback, so a standalone run exposes nothing by accident.
/// A container sets `listen: 0.0.0.0:9099`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9099";

/// The egress configuration; the YAML file has exactly this shape.
///
/// ```yaml
/// listen: 0.0.0.0:9099
/// ca: { cert: ca.crt, key: ca.key }   # relative paths are relative to the config file
/// log: blocks                         # off | blocks | full
/// trust: [extra-root.pem]             # extra upstream roots, on top of the Mozilla roots
/// clients: [172.18.0.0/16]            # who may connect (default: anyone who reaches `listen`)
/// routes:
///   - host: api.anthropic.com
///     auth: { scheme: Bearer, token_ref: ANTHROPIC_TOKEN }
///   - host: "*.githubusercontent.com"
///     methods: [GET]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Where the proxy listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The interception CA. Optional only for embedders that pass a
    /// [`CertificateAuthority`](crate::CertificateAuthority) to the builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaFiles>,
    /// What the audit log records.
    #[serde(default)]
    pub log: LogMode,
    /// Extra root certificates (PEM files) trusted for upstream TLS, on top of the Mozilla
    /// roots. Verification cannot be turned off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust: Vec<PathBuf>,
    /// Who may use the proxy: when set, a connection from a source address outside every
    /// listed network is closed before a byte is read (and audited as `client_not_allowed`).
    /// `None` (the default) serves anyone who can reach `listen`, which is right for loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<Cidr>>,
    /// The routes: the same shape as a bottle manifest's `egress.routes`.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// The CA's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaFiles {
    /// The CA certificate, PEM.
    pub cert: PathBuf,
    /// The CA private key, PEM (PKCS#8); keep it mode 0600.
    pub key: PathBuf,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid literal"))
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            listen: default_listen(),
            ca: None,
            log: LogMode::default(),
            trust: Vec::new(),
            clients: None,
            routes: Vec::new(),
        }
    }
}

/// Where a problem is, as a key path; mapped to a line and column when the text is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigField {
    CaCert,
    CaKey,
    Trust(usize),
    Clients,
    Route(usize, RouteField),
}

impl ConfigField {
    fn path(self) -> String {
        match self {
            ConfigField::CaCert => "ca.cert".to_owned(),
            ConfigField::CaKey => "ca.key".to_owned(),
            ConfigField::Trust(i) => format!("trust[{i}]"),
            ConfigField::Clients => "clients".to_owned(),
            ConfigField::Route(i, f) => match f {
                RouteField::Host => format!("routes[{i}].host"),
                RouteField::Path(j) => format!("routes[{i}].path_allowlist[{j}]"),
                RouteField::Method(j) => format!("routes[{i}].methods[{j}]"),
                RouteField::AuthHeader => format!("routes[{i}].auth.header"),
                RouteField::TokenRef => format!("routes[{i}].auth.token_ref"),
            },
        }
    }
}

/// A problem found by validation, before positions are attached.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) field: ConfigField,
    pub(crate) message: String,
}

impl EgressConfig {
    /// Parse a config from YAML text. `file` names it in errors and anchors relative paths.
    ///
    /// This checks the shape and the routes; [`Egress`](crate::Egress) additionally checks
    /// that the files exist and that every `token_ref` is set (see [`EgressConfig::check`]).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose issues carry line and column.
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::parse_shape(text, file)?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file: file.map(Path::to_path_buf),
                issues: locate(text, problems),
            })
        }
    }

    /// Parse without the semantic checks; relative paths anchored at the file's directory.
    fn parse_shape(text: &str, file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: EgressConfig =
            bottle_manifest::yaml::parse(text).map_err(|e| ConfigError {
                file: file.map(Path::to_path_buf),
                issues: vec![ConfigIssue {
                    position: Some((e.line, e.column)),
                    field: String::new(),
                    message: e.message,
                }],
            })?;
        if let Some(dir) = file.and_then(Path::parent) {
            config.anchor_paths(dir);
        }
        Ok(config)
    }

    /// Read and parse a config file (see [`from_yaml`](Self::from_yaml)).
    ///
    /// # Errors
    ///
    /// [`EgressError::Io`](crate::EgressError::Io) if the file cannot be read, or
    /// [`EgressError::Config`](crate::EgressError::Config).
    pub fn load(path: &Path) -> Result<Self, crate::EgressError> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::EgressError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_yaml(&text, Some(path))?)
    }

    /// Everything `bottle-egress run` would refuse, with positions: the shape, the routes,
    /// the CA and trust files, and a `token_ref` missing from the environment `tokens` reads.
    ///
    /// # Errors
    ///
    /// [`EgressError::Io`](crate::EgressError::Io) if the file cannot be read, or
    /// [`EgressError::Config`](crate::EgressError::Config) listing every problem.
    pub fn check(
        path: &Path,
        tokens: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, crate::EgressError> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::EgressError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse_shape(&text, Some(path))?;
        let mut problems = config.problems();
        problems.extend(config.token_problems(tokens));
        problems.extend(config.file_problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file: Some(path.to_path_buf()),
                issues: locate(&text, problems),
            }
            .into())
        }
    }

    fn anchor_paths(&mut self, dir: &Path) {
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(ca) = &mut self.ca {
            anchor(&mut ca.cert);
            anchor(&mut ca.key);
        }
        self.trust.iter_mut().for_each(anchor);
    }

    /// What is wrong with the config itself (routes, clients), without looking at files or
    /// the environment.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut problems = match Policy::new(&self.routes) {
            Ok(_) => Vec::new(),
            Err(issues) => issues
                .into_iter()
                .map(|i| Problem {
                    field: ConfigField::Route(i.index, i.field),
                    message: i.message,
                })
                .collect(),
        };
        if self.clients.as_ref().is_some_and(Vec::is_empty) {
            // Serving nobody is never what was meant; an empty list is usually a generator
            // that found no network, and must not silently mean "anyone".
            problems.push(Problem {
                field: ConfigField::Clients,
                message: "`clients` lists no network, so no one could connect; list the client \
                          networks (e.g. `[172.18.0.0/16]`) or remove `clients` to serve anyone \
                          who reaches `listen`"
                    .to_owned(),
            });
        }
        problems
    }

    /// Whether a connection from `peer` may use the proxy (see [`EgressConfig::clients`]).
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(peer)))
    }

    pub(crate) fn token_problems(&self, tokens: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        self.routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let auth = r.auth.as_ref()?;
                let name = auth.token_ref();
                match tokens(name) {
                    Some(v) if !v.is_empty() => None,
                    _ => Some(Problem {
                        field: ConfigField::Route(i, RouteField::TokenRef),
                        message: format!(
                            "`{name}` is not set in the egress's environment; pass it to the egress process (e.g. `docker run -e {name}`)"
                        ),
                    }),
                }
            })
            .collect()
    }

    pub(crate) fn file_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(ca) = &self.ca {
            for (field, path) in [
                (ConfigField::CaCert, &ca.cert),
                (ConfigField::CaKey, &ca.key),
            ] {
                if let Err(e) = std::fs::metadata(path) {
                    problems.push(Problem {
                        field,
                        message: format!(
                            "cannot read {}: {e}; create a CA with `bottle-egress mint-ca --out DIR`",
                            path.display()
                        ),
                    });
                }
            }
        }
        for (i, path) in self.trust.iter().enumerate() {
            if let Err(e) = std::fs::metadata(path) {
                problems.push(Problem {
                    field: ConfigField::Trust(i),
                    message: format!("cannot read {}: {e}", path.display()),
                });
            }
        }
        problems
    }
}

/// Problems without text positions (a config built in code).
pub(crate) fn unlocated(problems: Vec<Problem>) -> ConfigError {
    ConfigError {
        file: None,
        issues: problems
            .into_iter()
            .map(|p| ConfigIssue {
                position: None,
                field: p.field.path(),
                message: p.message,
            })
            .collect(),
    }
}

/// Attach line and column to each problem by re-reading the text with spans.
fn locate(text: &str, problems: Vec<Problem>) -> Vec<ConfigIssue> {
    let spans: Option<SpanDoc> = bottle_manifest::yaml::parse(text).ok();
    let mut issues: Vec<ConfigIssue> = problems
        .into_iter()
        .map(|p| ConfigIssue {
            position: spans.as_ref().and_then(|s| s.position(p.field)),
            field: p.field.path(),
            message: p.message,
        })
        .collect();
    issues.sort_by_key(|i| i.position.unwrap_or((usize::MAX, 0)));
    issues
}

type At = Spanned<IgnoredAny>;

/// The config's shape with positions only; unknown keys were already refused by the first
/// parse, so this one ignores them.
#[derive(Deserialize)]
struct SpanDoc {
    #[serde(default)]
    ca: Option<CaSpans>,
    #[serde(default)]
    trust: Vec<At>,
    #[serde(default)]
    clients: Option<At>,
    #[serde(default)]
    routes: Vec<RouteSpans>,
}

#[derive(Deserialize)]
struct CaSpans {
    cert: Option<At>,
    key: Option<At>,
}

#[derive(Deserialize)]
struct RouteSpans {
    host: Option<At>,
    #[serde(default)]
    path_allowlist: Vec<At>,
    #[serde(default)]
    methods: Vec<At>,
    #[serde(default)]
    auth: Option<AuthSpans>,
}

#[derive(Deserialize)]
struct AuthSpans {
    header: Option<At>,
    token_ref: Option<At>,
}

impl SpanDoc {
    fn position(&self, field: ConfigField) -> Option<(usize, usize)> {
        let at = match field {
            ConfigField::CaCert => self.ca.as_ref()?.cert.as_ref(),
            ConfigField::CaKey => self.ca.as_ref()?.key.as_ref(),
            ConfigField::Trust(i) => self.trust.get(i),
            ConfigField::Clients => self.clients.as_ref(),
            ConfigField::Route(i, f) => {
                let r = self.routes.get(i)?;
                match f {
                    RouteField::Host => r.host.as_ref(),
                    RouteField::Path(j) => r.path_allowlist.get(j),
                    RouteField::Method(j) => r.methods.get(j),
                    RouteField::AuthHeader => r.auth.as_ref()?.header.as_ref(),
                    RouteField::TokenRef => r.auth.as_ref()?.token_ref.as_ref(),
                }
            }
        }?;
        let line = usize::try_from(at.referenced.line()).ok()?;
        let col = usize::try_from(at.referenced.column()).ok()?;
        (line > 0).then_some((line, col.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_problems_point_at_their_value() {
        let text = "routes:\n  - host: ok.example.com\n  - host: https://bad.example.com\n    methods: [GET, 'P UT']\n";
        let err = EgressConfig::from_yaml(text, Some(Path::new("/etc/egress.yaml"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/egress.yaml:3:11: `https://bad.example.com` is a URL; give the bare host name, without scheme\n\
             /etc/egress.yaml:4:20: `P UT` is not an HTTP method: write it in upper case, like `GET` or `POST`"
        );
    }

    #[test]
    fn shape_errors_come_with_positions() {
        let err = EgressConfig::from_yaml("log: loud\n", Some(Path::new("c.yaml"))).unwrap_err();
        assert!(err.to_string().starts_with("c.yaml:1:6: "), "{err}");
        let err = EgressConfig::from_yaml("routes:\n  - hots: x\n", Some(Path::new("c.yaml")))
            .unwrap_err();
        assert!(err.to_string().starts_with("c.yaml:2:5: "), "{err}");
    }

    #[test]
    fn relative_paths_are_anchored_at_the_config() {
        let c = EgressConfig::from_yaml(
            "ca: {cert: ca.crt, key: /abs/ca.key}\ntrust: [r.pem]\n",
            Some(Path::new("/etc/egress/config.yaml")),
        )
        .unwrap();
        let ca = c.ca.unwrap();
        assert_eq!(ca.cert, Path::new("/etc/egress/ca.crt"));
        assert_eq!(ca.key, Path::new("/abs/ca.key"));
        assert_eq!(c.trust, vec![PathBuf::from("/etc/egress/r.pem")]);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }
}
