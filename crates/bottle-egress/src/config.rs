//! The egress configuration: the YAML file's shape, loading, and validation with positions.
//!
//! Routes are read by bottle-manifest's [`RawRoute`], the same code that reads a bottle
//! manifest's `egress.routes`, so the two accept and refuse the same routes with the same
//! messages.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use bottle_manifest::route::{self, HostKind, HostPattern, Position, RawRoute, RouteKey, TokenRef};
use bottle_manifest::{LogMode, Route};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{ConfigError, ConfigIssue};
use bottle_manifest::Cidr;

/// The default listening address: loopback, so a standalone run exposes nothing by accident.
/// A container sets `listen: 0.0.0.0:9099`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9099";

/// The egress configuration; the YAML file has exactly this shape.
///
/// ```yaml
/// listen: 0.0.0.0:9099
/// ca: { cert: ca.crt, key: ca.key }   # relative paths are relative to the config file
/// log: blocks                         # off | blocks | full
/// trust: [extra-root.pem]             # extra upstream roots for routes without `auth`
/// clients: [172.18.0.0/16]            # who may connect (default: anyone who reaches `listen`)
/// proxy_auth: { user: bottle, token_ref: BOTTLE_EGRESS_PROXY_TOKEN }  # required credential
/// resolve: { internal.example: [10.0.0.7] }   # fixed addresses, like curl --resolve
/// routes:                             # the shape of a bottle manifest's `egress.routes`
///   - host: api.anthropic.com
///     auth: { scheme: Bearer, token_ref: ANTHROPIC_TOKEN }
///   - host: "*.githubusercontent.com"
///     methods: [GET]
///   - host: internal.example
///     ports: [8443]
///     allow_private: true
///     trust: [internal-ca.pem]        # roots for this route only
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct EgressConfig {
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// The interception CA. Optional only for embedders that pass a
    /// [`CertificateAuthority`](crate::CertificateAuthority) to the builder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaFiles>,
    /// What the audit log records.
    pub log: LogMode,
    /// Extra root certificates (PEM files) trusted for the upstreams of routes **without**
    /// `auth`, on top of the Mozilla roots; a route with `auth` trusts only its own `trust`, so
    /// a test or company CA listed here can never intercept a credential. Verification cannot
    /// be turned off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust: Vec<PathBuf>,
    /// Who may use the proxy: when set, a connection from a source address outside every
    /// listed network is closed before a byte is read (and audited as `client_not_allowed`).
    /// `None` (the default) serves anyone who can reach `listen`, which is right for loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<Cidr>>,
    /// A credential every client must present: when set, each request to the proxy itself
    /// (`CONNECT`, absolute-form `http://`, introspection) must carry
    /// `Proxy-Authorization: Basic base64(user:token)`, else it gets `407`. The token is read
    /// from the egress's environment by `token_ref`, like route credentials, and is never
    /// forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_auth: Option<ProxyAuth>,
    /// Fixed addresses for names, used instead of DNS (like curl's `--resolve`). They count as
    /// addresses the route names: with `allow_private`, a route reaches them even when they
    /// are loopback or link-local. Read at start; a reload keeps the first ones.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve: BTreeMap<HostPattern, Vec<IpAddr>>,
    /// Variables holding the bottle's secrets (its env secrets), which DLP looks for —
    /// raw and encoded — in every request of a route whose `dlp` is on. Each must be set, 8
    /// to 4096 bytes long. Route credentials (`auth.token_ref`) are looked for too, without
    /// being listed. Names only: the values are read from the egress's environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known_secrets: Vec<TokenRef>,
    /// The routes: the same shape as a bottle manifest's `egress.routes`.
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

/// The credential clients present to the proxy (`proxy_auth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyAuth {
    /// The user name (any printable ASCII but `:`), e.g. `bottle`.
    pub user: String,
    /// The variable holding the token, e.g. `BOTTLE_EGRESS_PROXY_TOKEN`.
    pub token_ref: TokenRef,
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
            proxy_auth: None,
            resolve: BTreeMap::new(),
            known_secrets: Vec::new(),
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
    ProxyAuthUser,
    ProxyAuthTokenRef,
    Resolve,
    Route(usize, RouteKey),
}

impl ConfigField {
    fn path(self) -> String {
        match self {
            ConfigField::CaCert => "ca.cert".to_owned(),
            ConfigField::CaKey => "ca.key".to_owned(),
            ConfigField::Trust(i) => format!("trust[{i}]"),
            ConfigField::Clients => "clients".to_owned(),
            ConfigField::ProxyAuthUser => "proxy_auth.user".to_owned(),
            ConfigField::ProxyAuthTokenRef => "proxy_auth.token_ref".to_owned(),
            ConfigField::Resolve => "resolve".to_owned(),
            ConfigField::Route(i, key) => format!("routes[{i}].{key}"),
        }
    }
}

/// A problem found by validation, before positions are attached.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) field: ConfigField,
    pub(crate) message: String,
}

impl Problem {
    fn new(field: ConfigField, message: impl Into<String>) -> Self {
        Problem {
            field,
            message: message.into(),
        }
    }
}

/// The file as written, with positions: what [`EgressConfig`] is read through.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default)]
    ca: Option<RawCa>,
    #[serde(default)]
    log: LogMode,
    #[serde(default)]
    trust: Vec<Spanned<PathBuf>>,
    #[serde(default)]
    clients: Option<Spanned<Vec<Cidr>>>,
    #[serde(default)]
    proxy_auth: Option<Spanned<RawProxyAuth>>,
    #[serde(default)]
    resolve: Option<Spanned<BTreeMap<String, Vec<IpAddr>>>>,
    #[serde(default)]
    known_secrets: Vec<TokenRef>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxyAuth {
    user: Spanned<String>,
    token_ref: Spanned<String>,
}

fn position_of<T>(s: &Spanned<T>) -> Option<(usize, usize)> {
    let line = usize::try_from(s.referenced.line()).ok()?;
    let column = usize::try_from(s.referenced.column()).ok()?;
    (line > 0).then_some((line, column.max(1)))
}

fn from_position(p: Option<Position>) -> Option<(usize, usize)> {
    p.map(|p| (p.line, p.column))
}

impl RawConfig {
    /// Where `field` was written.
    fn position(&self, field: ConfigField) -> Option<(usize, usize)> {
        match field {
            ConfigField::CaCert => self.ca.as_ref().and_then(|c| position_of(&c.cert)),
            ConfigField::CaKey => self.ca.as_ref().and_then(|c| position_of(&c.key)),
            ConfigField::Trust(i) => self.trust.get(i).and_then(position_of),
            ConfigField::Clients => self.clients.as_ref().and_then(position_of),
            ConfigField::ProxyAuthUser => self
                .proxy_auth
                .as_ref()
                .and_then(|p| position_of(&p.value.user)),
            ConfigField::ProxyAuthTokenRef => self
                .proxy_auth
                .as_ref()
                .and_then(|p| position_of(&p.value.token_ref)),
            ConfigField::Resolve => self.resolve.as_ref().and_then(position_of),
            ConfigField::Route(i, key) => self
                .routes
                .get(i)
                .and_then(|r| from_position(r.position(key))),
        }
    }

    /// The config with its valid routes, and every problem of its values and routes; the
    /// index in the file of each route kept.
    fn into_config(self) -> (EgressConfig, Self, Vec<usize>, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let mut routes = Vec::with_capacity(self.routes.len());
        let mut kept = Vec::with_capacity(self.routes.len());
        for (i, raw) in self.routes.iter().enumerate() {
            match raw.check() {
                Ok(r) => {
                    routes.push(r);
                    kept.push(i);
                }
                Err(problems) => issues.extend(problems.into_iter().map(|p| ConfigIssue {
                    position: from_position(p.position),
                    field: ConfigField::Route(i, p.key).path(),
                    message: p.error.to_string(),
                })),
            }
        }
        for (k, error) in route::duplicate_hosts(routes.iter().map(|r| &r.host)) {
            let field = ConfigField::Route(kept[k], RouteKey::Host);
            issues.push(ConfigIssue {
                position: self.position(field),
                field: field.path(),
                message: error.to_string(),
            });
        }
        let mut resolve = BTreeMap::new();
        for (name, addrs) in self
            .resolve
            .as_ref()
            .map(|r| r.value.clone())
            .unwrap_or_default()
        {
            match name.parse::<HostPattern>() {
                Ok(host) if matches!(host.kind(), HostKind::Exact(_)) && !addrs.is_empty() => {
                    resolve.insert(host, addrs);
                }
                Ok(_) | Err(_) => issues.push(ConfigIssue {
                    position: self.position(ConfigField::Resolve),
                    field: ConfigField::Resolve.path(),
                    message: format!(
                        "`{}` cannot be resolved to fixed addresses: give a host name (no wildcard, no IP) and at least one address, e.g. `internal.example: [10.0.0.7]`",
                        name.escape_debug()
                    ),
                }),
            }
        }
        let proxy_auth = match &self.proxy_auth {
            None => None,
            Some(p) => match p.value.token_ref.value.parse::<TokenRef>() {
                Ok(token_ref) => Some(ProxyAuth {
                    user: p.value.user.value.clone(),
                    token_ref,
                }),
                Err(e) => {
                    issues.push(ConfigIssue {
                        position: self.position(ConfigField::ProxyAuthTokenRef),
                        field: ConfigField::ProxyAuthTokenRef.path(),
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        let config = EgressConfig {
            listen: self.listen,
            ca: self.ca.as_ref().map(|c| CaFiles {
                cert: c.cert.value.clone(),
                key: c.key.value.clone(),
            }),
            log: self.log,
            trust: self.trust.iter().map(|t| t.value.clone()).collect(),
            clients: self.clients.as_ref().map(|c| c.value.clone()),
            proxy_auth,
            resolve,
            known_secrets: self.known_secrets.clone(),
            routes,
        };
        let settings = config.setting_problems();
        issues.extend(settings.into_iter().map(|p| self.locate(p, &kept)));
        (config, self, kept, issues)
    }

    /// `p` with its position; a route index of the config (`kept`) becomes the file's.
    fn locate(&self, p: Problem, kept: &[usize]) -> ConfigIssue {
        let field = match p.field {
            ConfigField::Route(k, key) => {
                ConfigField::Route(kept.get(k).copied().unwrap_or(k), key)
            }
            other => other,
        };
        ConfigIssue {
            position: self.position(field),
            field: field.path(),
            message: p.message,
        }
    }
}

/// For deserializers other than [`EgressConfig::from_yaml`] (which also anchors paths).
impl TryFrom<RawConfig> for EgressConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let (config, _, _, issues) = raw.into_config();
        if issues.is_empty() {
            return Ok(config);
        }
        Err(ConfigError { file: None, issues })
    }
}

impl EgressConfig {
    /// Parse a config from YAML text. `file` names it in errors and anchors relative paths.
    ///
    /// This checks the shape, every route and the settings; [`Egress`](crate::Egress)
    /// additionally checks that the files exist and that every `token_ref` is set (see
    /// [`EgressConfig::check`]).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose issues carry line and column.
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self, ConfigError> {
        let parsed = Self::parse(text, file)?;
        parsed.finish(file, Vec::new())
    }

    /// Parse and check the values; relative paths anchored at the file's directory.
    fn parse(text: &str, file: Option<&Path>) -> Result<Parsed, ConfigError> {
        let raw: RawConfig = bottle_manifest::yaml::parse(text).map_err(|e| ConfigError {
            file: file.map(Path::to_path_buf),
            issues: vec![ConfigIssue {
                position: Some((e.line, e.column)),
                field: String::new(),
                message: e.message,
            }],
        })?;
        let (mut config, raw, kept, issues) = raw.into_config();
        if let Some(dir) = file.and_then(Path::parent) {
            config.anchor_paths(dir);
        }
        Ok(Parsed {
            config,
            raw,
            kept,
            issues,
        })
    }

    /// Read and parse a config file (see [`from_yaml`](Self::from_yaml)).
    ///
    /// # Errors
    ///
    /// [`EgressError::Io`](crate::EgressError::Io) if the file cannot be read, or
    /// [`EgressError::Config`](crate::EgressError::Config).
    pub fn load(path: &Path) -> Result<Self, crate::EgressError> {
        let text = read(path)?;
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
        let text = read(path)?;
        let parsed = Self::parse(&text, Some(path))?;
        let mut problems = parsed.config.token_problems(tokens);
        problems.extend(parsed.config.file_problems());
        Ok(parsed.finish(Some(path), problems)?)
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
        for route in &mut self.routes {
            route.trust.iter_mut().for_each(anchor);
        }
    }

    /// What is wrong with the settings other than routes (`clients`, `proxy_auth`), without
    /// looking at files or the environment.
    pub(crate) fn setting_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.clients.as_ref().is_some_and(Vec::is_empty) {
            // Serving nobody is never what was meant; an empty list is usually a generator
            // that found no network, and must not silently mean "anyone".
            problems.push(Problem::new(
                ConfigField::Clients,
                "`clients` lists no network, so no one could connect; list the client \
                 networks (e.g. `[172.18.0.0/16]`) or remove `clients` to serve anyone \
                 who reaches `listen`",
            ));
        }
        if let Some(auth) = &self.proxy_auth {
            let printable = auth.user.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if auth.user.is_empty() || !printable {
                problems.push(Problem::new(
                    ConfigField::ProxyAuthUser,
                    format!(
                        "`{}` cannot be a proxy user name: use printable ASCII without spaces or `:`, e.g. `bottle`",
                        auth.user.escape_debug()
                    ),
                ));
            }
        }
        problems
    }

    /// Whether a connection from `peer` may use the proxy (see [`EgressConfig::clients`]).
    pub fn admits(&self, peer: IpAddr) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(peer)))
    }

    pub(crate) fn token_problems(&self, tokens: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        let unset = |field, name: &str| match tokens(name) {
            Some(v) if !v.is_empty() => None,
            _ => Some(Problem::new(
                field,
                format!(
                    "`{name}` is not set in the egress's environment; pass it to the egress process (e.g. `docker run -e {name}`)"
                ),
            )),
        };
        let routes = self.routes.iter().enumerate().filter_map(|(i, r)| {
            let auth = r.auth.as_ref()?;
            unset(
                ConfigField::Route(i, RouteKey::AuthTokenRef),
                auth.token_ref(),
            )
        });
        let proxy = self
            .proxy_auth
            .as_ref()
            .and_then(|p| unset(ConfigField::ProxyAuthTokenRef, p.token_ref.as_str()));
        routes.chain(proxy).collect()
    }

    pub(crate) fn file_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut missing = |field, path: &Path, hint: &str| {
            if let Err(e) = std::fs::metadata(path) {
                problems.push(Problem::new(
                    field,
                    format!("cannot read {}: {e}{hint}", path.display()),
                ));
            }
        };
        if let Some(ca) = &self.ca {
            let hint = "; create a CA with `bottle-egress mint-ca --out DIR`";
            missing(ConfigField::CaCert, &ca.cert, hint);
            missing(ConfigField::CaKey, &ca.key, hint);
        }
        for (i, path) in self.trust.iter().enumerate() {
            missing(ConfigField::Trust(i), path, "");
        }
        for (i, route) in self.routes.iter().enumerate() {
            for (j, path) in route.trust.iter().enumerate() {
                missing(ConfigField::Route(i, RouteKey::Trust(j)), path, "");
            }
        }
        problems
    }
}

/// A config as read, with every problem found so far.
struct Parsed {
    /// The config with its valid routes only.
    config: EgressConfig,
    raw: RawConfig,
    /// For each route of `config`, its index in the file.
    kept: Vec<usize>,
    issues: Vec<ConfigIssue>,
}

impl Parsed {
    /// The config, or all of its problems and `more` (of the config's routes) with positions,
    /// in file order.
    fn finish(self, file: Option<&Path>, more: Vec<Problem>) -> Result<EgressConfig, ConfigError> {
        let mut issues = self.issues;
        issues.extend(more.into_iter().map(|p| self.raw.locate(p, &self.kept)));
        if issues.is_empty() {
            return Ok(self.config);
        }
        issues.sort_by_key(|i| i.position.unwrap_or((usize::MAX, 0)));
        Err(ConfigError {
            file: file.map(Path::to_path_buf),
            issues,
        })
    }
}

fn read(path: &Path) -> Result<String, crate::EgressError> {
    std::fs::read_to_string(path).map_err(|source| crate::EgressError::Io {
        path: path.to_path_buf(),
        source,
    })
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

/// Problems of the route table (from [`Policy::new`](crate::Policy::new)) without positions.
pub(crate) fn route_problems(problems: Vec<crate::policy::RouteProblem>) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|p| Problem::new(ConfigField::Route(p.index, p.key), p.error.to_string()))
        .collect()
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
            "/etc/egress.yaml:3:11: `https://bad.example.com` is a URL; write only the host name, e.g. `api.example.com` (no scheme, port or path)\n\
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
