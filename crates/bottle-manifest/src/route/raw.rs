//! [`RawRoute`]: a route as written, with positions; checked into a [`Route`].

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{
    AuthHeader, AuthScheme, Dlp, HostPattern, Method, PathPrefix, Port, RawDlp, Route, RouteAuth,
    RouteError, RouteKey, TokenRef,
};

/// A 1-based line and column in the text a [`RawRoute`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One problem of a [`RawRoute`]: which key, where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteIssue {
    /// The key at fault.
    pub key: RouteKey,
    /// Where it was written, when the route was read from YAML.
    pub position: Option<Position>,
    /// What is wrong.
    pub error: RouteError,
}

/// A value as written: valid or not, parsing goes on, so that every problem of a file is
/// reported at once. `R` is the written type.
struct Lenient<T, R = String>(Result<T, RouteError>, PhantomData<fn() -> R>);

impl<T: fmt::Debug, R> fmt::Debug for Lenient<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, T, R> Deserialize<'de> for Lenient<T, R>
where
    R: Deserialize<'de>,
    T: TryFrom<R, Error = RouteError>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lenient(T::try_from(R::deserialize(d)?), PhantomData))
    }
}

/// The valid values of a list; each problem recorded under `key(index)`.
fn take_all<T: Clone, R>(
    issues: &mut Vec<RouteIssue>,
    list: &[Spanned<Lenient<T, R>>],
    key: fn(usize) -> RouteKey,
) -> Vec<T> {
    list.iter()
        .enumerate()
        .filter_map(|(i, v)| take(issues, key(i), position_of(v), &v.value.0))
        .collect()
}

/// The value if valid; otherwise `None`, and the problem recorded.
fn take<T: Clone>(
    issues: &mut Vec<RouteIssue>,
    key: RouteKey,
    position: Option<Position>,
    value: &Result<T, RouteError>,
) -> Option<T> {
    match value {
        Ok(v) => Some(v.clone()),
        Err(error) => {
            issues.push(RouteIssue {
                key,
                position,
                error: error.clone(),
            });
            None
        }
    }
}

fn position_of<T>(s: &Spanned<T>) -> Option<Position> {
    let line = usize::try_from(s.referenced.line()).ok()?;
    let column = usize::try_from(s.referenced.column()).ok()?;
    (line > 0).then_some(Position {
        line,
        column: column.max(1),
    })
}

/// A `ports` entry as written (a number, maybe out of range).
type WrittenPort = Spanned<Lenient<Port, i64>>;

/// A route as written, not yet checked: the one wire shape of a route, with the position of
/// every value. [`RawRoute::check`] turns it into a [`Route`] or lists every problem.
///
/// Wrong YAML types (`allow_private: yes`, a mapping for `host`) and unknown keys fail the
/// parse itself; invalid values do not, so that they can all be reported together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    host: Spanned<Lenient<HostPattern>>,
    #[serde(default)]
    ports: Option<Spanned<Vec<WrittenPort>>>,
    #[serde(default)]
    path_allowlist: Vec<Spanned<Lenient<PathPrefix>>>,
    #[serde(default)]
    methods: Vec<Spanned<Lenient<Method>>>,
    #[serde(default)]
    auth: Option<Spanned<RawAuth>>,
    #[serde(default)]
    auth_every_subdomain: Option<Spanned<bool>>,
    #[serde(default)]
    strip_client_credentials: Option<Spanned<bool>>,
    #[serde(default)]
    websocket: Option<Spanned<bool>>,
    #[serde(default)]
    allow_private: Option<Spanned<bool>>,
    #[serde(default)]
    trust: Vec<Spanned<String>>,
    #[serde(default)]
    dlp: Option<Spanned<Lenient<Dlp, RawDlp>>>,
}

/// `auth` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    scheme: Option<Spanned<Lenient<AuthScheme>>>,
    header: Option<Spanned<Lenient<AuthHeader>>>,
    token_ref: Option<Spanned<Lenient<TokenRef>>>,
}

impl RawRoute {
    /// Check every value and the rules between them.
    ///
    /// # Errors
    ///
    /// Every problem, each with its key and position.
    pub fn check(&self) -> Result<Route, Vec<RouteIssue>> {
        let mut issues = Vec::new();
        let host = take(
            &mut issues,
            RouteKey::Host,
            position_of(&self.host),
            &self.host.value.0,
        );
        let mut ports = Vec::new();
        if let Some(list) = &self.ports {
            if list.value.is_empty() {
                issues.push(RouteIssue {
                    key: RouteKey::Ports,
                    position: position_of(list),
                    error: RouteError::PortsEmpty,
                });
            }
            ports = take_all(&mut issues, &list.value, RouteKey::Port);
        }
        let path_allowlist = take_all(&mut issues, &self.path_allowlist, RouteKey::Path);
        let methods = take_all(&mut issues, &self.methods, RouteKey::Method);
        let auth = match &self.auth {
            None => None,
            Some(auth) => match auth.value.check(position_of(auth)) {
                Ok(a) => Some(a),
                Err(mut more) => {
                    issues.append(&mut more);
                    None
                }
            },
        };
        let flag = |f: &Option<Spanned<bool>>| f.as_ref().map(|s| s.value);
        if flag(&self.strip_client_credentials) == Some(false) && self.auth.is_some() {
            issues.push(RouteIssue {
                key: RouteKey::StripClientCredentials,
                position: self.position(RouteKey::StripClientCredentials),
                error: RouteError::StripFalseWithAuth,
            });
        }
        let mut trust = Vec::new();
        for (i, t) in self.trust.iter().enumerate() {
            if t.value.is_empty() {
                issues.push(RouteIssue {
                    key: RouteKey::Trust(i),
                    position: position_of(t),
                    error: RouteError::TrustEmpty,
                });
            }
            trust.push(PathBuf::from(&t.value));
        }
        let dlp = match &self.dlp {
            None => Some(Dlp::All),
            Some(d) => take(&mut issues, RouteKey::Dlp, position_of(d), &d.value.0),
        };
        let (Some(host), Some(dlp), true) = (host, dlp, issues.is_empty()) else {
            return Err(issues);
        };
        let route = Route {
            host,
            ports,
            path_allowlist,
            methods,
            auth,
            auth_every_subdomain: flag(&self.auth_every_subdomain).unwrap_or(false),
            strip_client_credentials: flag(&self.strip_client_credentials).unwrap_or(false),
            websocket: flag(&self.websocket),
            allow_private: flag(&self.allow_private).unwrap_or(false),
            trust,
            dlp,
        };
        let problems = route.check();
        if problems.is_empty() {
            return Ok(route);
        }
        Err(problems
            .into_iter()
            .map(|(key, error)| RouteIssue {
                key,
                position: self.position(key),
                error,
            })
            .collect())
    }

    /// Where `key` was written (the route's `host` when the key is absent).
    pub fn position(&self, key: RouteKey) -> Option<Position> {
        let auth = self.auth.as_ref();
        let flag = |f: &Option<Spanned<bool>>| f.as_ref().and_then(position_of);
        let at = match key {
            RouteKey::Host => None,
            RouteKey::Ports => self.ports.as_ref().and_then(position_of),
            RouteKey::Port(i) => self
                .ports
                .as_ref()
                .and_then(|l| l.value.get(i))
                .and_then(position_of),
            RouteKey::Path(i) => self.path_allowlist.get(i).and_then(position_of),
            RouteKey::Method(i) => self.methods.get(i).and_then(position_of),
            RouteKey::Auth => auth.and_then(position_of),
            RouteKey::AuthScheme => auth
                .and_then(|a| a.value.scheme.as_ref())
                .and_then(position_of),
            RouteKey::AuthHeader => auth
                .and_then(|a| a.value.header.as_ref())
                .and_then(position_of),
            RouteKey::AuthTokenRef => auth
                .and_then(|a| a.value.token_ref.as_ref())
                .and_then(position_of),
            RouteKey::AuthEverySubdomain => flag(&self.auth_every_subdomain),
            RouteKey::StripClientCredentials => flag(&self.strip_client_credentials),
            RouteKey::Websocket => flag(&self.websocket),
            RouteKey::AllowPrivate => flag(&self.allow_private),
            RouteKey::Trust(i) => self.trust.get(i).and_then(position_of),
            RouteKey::Dlp => self.dlp.as_ref().and_then(position_of),
        };
        at.or_else(|| position_of(&self.host))
    }

    /// Each `trust` entry as written, with its position (the manifest and the egress resolve
    /// relative paths differently).
    pub fn trust_entries(&self) -> impl Iterator<Item = (&str, Option<Position>)> {
        self.trust
            .iter()
            .map(|t| (t.value.as_str(), position_of(t)))
    }
}

impl RawAuth {
    fn check(&self, at: Option<Position>) -> Result<RouteAuth, Vec<RouteIssue>> {
        let mut issues = Vec::new();
        let scheme = (self.scheme.as_ref()).map(|s| {
            take(
                &mut issues,
                RouteKey::AuthScheme,
                position_of(s),
                &s.value.0,
            )
        });
        let header = (self.header.as_ref()).map(|s| {
            take(
                &mut issues,
                RouteKey::AuthHeader,
                position_of(s),
                &s.value.0,
            )
        });
        let token_ref = (self.token_ref.as_ref()).map(|s| {
            take(
                &mut issues,
                RouteKey::AuthTokenRef,
                position_of(s),
                &s.value.0,
            )
        });
        let shape = match (&scheme, &header, &token_ref) {
            (_, _, None) => Some(RouteError::AuthNoTokenRef),
            (Some(_), Some(_), _) => Some(RouteError::AuthBoth),
            (None, None, _) => Some(RouteError::AuthNeither),
            _ => None,
        };
        if let Some(error) = shape {
            issues.push(RouteIssue {
                key: RouteKey::Auth,
                position: at,
                error,
            });
        }
        match (scheme, header, token_ref) {
            (Some(Some(scheme)), None, Some(Some(token_ref))) if issues.is_empty() => {
                Ok(RouteAuth::Scheme { scheme, token_ref })
            }
            (None, Some(Some(header)), Some(Some(token_ref))) if issues.is_empty() => {
                Ok(RouteAuth::Header { header, token_ref })
            }
            _ => Err(issues),
        }
    }
}

impl TryFrom<RawRoute> for Route {
    type Error = RouteError;

    fn try_from(raw: RawRoute) -> Result<Self, RouteError> {
        raw.check().map_err(|mut issues| issues.remove(0).error)
    }
}

impl TryFrom<RawAuth> for RouteAuth {
    type Error = RouteError;

    fn try_from(raw: RawAuth) -> Result<Self, RouteError> {
        raw.check(None).map_err(|mut issues| issues.remove(0).error)
    }
}
