//! [`RouteError`]: every way a route can be wrong, one message each.

use super::AddressClass;

/// Why a route, or one of its values, is not usable. Each kind has one message, which says
/// what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// `host` is empty.
    #[error("the host is empty; write a host name such as `api.example.com`")]
    HostEmpty,
    /// `host` is a URL.
    #[error(
        "`{host}` is a URL; write only the host name, e.g. `api.example.com` (no scheme, port or path)"
    )]
    HostIsUrl {
        /// The host as written.
        host: String,
    },
    /// `host` has a port, path or user.
    #[error(
        "`{host}` is not a host name: a route names a host without a port or path (list ports under `ports`)"
    )]
    HostHasPortOrPath {
        /// The host as written.
        host: String,
    },
    /// `host` has upper-case letters.
    #[error("`{host}` has upper-case letters; write host names in lower case: `{lower}`")]
    HostNotLowerCase {
        /// The host as written.
        host: String,
        /// The same in lower case.
        lower: String,
    },
    /// `host` ends with a dot.
    #[error("`{host}` ends with a dot; write it without: `{without}`")]
    HostTrailingDot {
        /// The host as written.
        host: String,
        /// Without the dot.
        without: String,
    },
    /// `host` is not a DNS name.
    #[error(
        "`{host}` is not a host name: use letters, digits, `-`, `_` and `.`, optionally starting with `*.`"
    )]
    HostInvalid {
        /// The host as written.
        host: String,
    },
    /// The last label of `host` is a number: an IP address in another notation.
    #[error(
        "`{host}` is neither a host name nor an IP address (its last label is a number); write an address in its usual form, such as `10.0.0.7`"
    )]
    HostNumeric {
        /// The host as written.
        host: String,
    },
    /// `*.` followed by a single label.
    #[error(
        "`{host}` would match every name of a top-level domain; name at least two labels after `*.`, e.g. `*.example.com`"
    )]
    WildcardTooBroad {
        /// The host as written.
        host: String,
    },
    /// A `*` anywhere but as the whole first label.
    #[error("`{host}`: a wildcard is allowed only as the whole first label, as in `*.example.com`")]
    WildcardMisplaced {
        /// The host as written.
        host: String,
    },
    /// The introspection host.
    #[error("`_egress.local` is the egress's own introspection host; no route can name it")]
    HostIsIntrospection,
    /// A path prefix not starting with `/`.
    #[error("`{path}` is not a path prefix: it must start with `/`")]
    PathNotAbsolute {
        /// The prefix as written.
        path: String,
    },
    /// A path prefix with a character requests never carry unencoded.
    #[error(
        "`{path}` is not a path prefix: write it in ASCII without spaces, control characters, `?`, `#` or `\\` (percent-encode what needs it)"
    )]
    PathInvalidChar {
        /// The prefix as written.
        path: String,
    },
    /// A path prefix with a `.`/`..` segment (or an encoded `/`), which no request may have.
    #[error(
        "`{path}` has a `.` or `..` segment (or an encoded `/`), which the egress refuses in every request; write the normalized prefix"
    )]
    PathDotSegment {
        /// The prefix as written.
        path: String,
    },
    /// A method that is not an upper-case token.
    #[error("`{method}` is not an HTTP method: write it in upper case, like `GET` or `POST`")]
    MethodInvalid {
        /// The method as written.
        method: String,
    },
    /// A WebDAV method.
    #[error(
        "`{method}` is a WebDAV method, which the egress never forwards (it can push to a git server); remove it"
    )]
    MethodWebDav {
        /// The method.
        method: String,
    },
    /// `ports: []`.
    #[error(
        "`ports` lists no port; remove it to allow the defaults (443, and 80 for plain http://)"
    )]
    PortsEmpty,
    /// A port out of range.
    #[error("`{port}` is not a port: write a number from 1 to 65535")]
    PortInvalid {
        /// The number as written.
        port: i64,
    },
    /// An auth header that is not an HTTP token.
    #[error("`{header}` is not a valid header name (letters, digits and `-`)")]
    HeaderInvalid {
        /// The header as written.
        header: String,
    },
    /// An auth header the egress manages itself.
    #[error(
        "the egress cannot inject `{header}`: it frames or routes the request, or belongs to the proxy; use another header"
    )]
    HeaderManaged {
        /// The header, lower case.
        header: String,
    },
    /// A `token_ref` that is not a variable name.
    #[error(
        "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
    )]
    TokenRefInvalid {
        /// The name as written.
        name: String,
    },
    /// An unknown `scheme`.
    #[error("`{scheme}` is not an auth scheme the egress knows; use `Bearer` or `token`")]
    AuthSchemeUnknown {
        /// The scheme as written.
        scheme: String,
    },
    /// `auth` without `token_ref`.
    #[error(
        "`auth` needs `token_ref`, the variable holding the credential; write `{{scheme: Bearer, token_ref: VAR}}` or `{{header: x-api-key, token_ref: VAR}}`"
    )]
    AuthNoTokenRef,
    /// `auth` with both `scheme` and `header`.
    #[error(
        "`auth` takes either `scheme` or `header`, not both; write `{{scheme: Bearer, token_ref: VAR}}` or `{{header: x-api-key, token_ref: VAR}}`"
    )]
    AuthBoth,
    /// `auth` with neither `scheme` nor `header`.
    #[error(
        "`auth` needs `scheme` or `header`; write `{{scheme: Bearer, token_ref: VAR}}` or `{{header: x-api-key, token_ref: VAR}}`"
    )]
    AuthNeither,
    /// `auth` on a wildcard route without the opt-in.
    #[error(
        "`auth` on `{host}` would send the credential to every sub-domain, including ones others may control; name the exact host, or set `auth_every_subdomain: true` if every sub-domain is yours"
    )]
    AuthOnWildcard {
        /// The wildcard.
        host: String,
    },
    /// `auth_every_subdomain` where it means nothing.
    #[error(
        "`auth_every_subdomain: true` applies only to a wildcard `host` with `auth`; remove it"
    )]
    EverySubdomainMisplaced,
    /// `strip_client_credentials: false` with `auth`.
    #[error(
        "a route with `auth` always strips the client's credentials; remove `strip_client_credentials: false`"
    )]
    StripFalseWithAuth,
    /// An IP-literal route to a non-public address without `allow_private`.
    #[error(
        "`{host}` is a {class} address, which the egress refuses unless the route sets `allow_private: true`"
    )]
    PrivateLiteral {
        /// The literal.
        host: String,
        /// Its class.
        class: AddressClass,
    },
    /// `websocket: true` on a route whose methods leave out `GET`.
    #[error("`websocket: true` needs `GET` in `methods`: a WebSocket opens with a GET")]
    WebsocketWithoutGet,
    /// An empty `trust` entry.
    #[error("a `trust` entry is empty; give the path of a PEM file")]
    TrustEmpty,
    /// A `dlp` list names a rule that does not exist.
    #[error(
        "`{rule}` is not a DLP rule{}; the rules are {}",
        did_you_mean(suggestion),
        dlp_rules()
    )]
    DlpUnknownRule {
        /// The id as written.
        rule: String,
        /// The closest rule id, if one is close.
        suggestion: Option<String>,
    },
    /// `dlp` is a word other than `off`.
    #[error(
        "`dlp: {word}` is not a setting; write `dlp: off`, or a list of the rules to run such as `dlp: [known-secret]`"
    )]
    DlpWord {
        /// The word as written.
        word: String,
    },
    /// `dlp: []`.
    #[error(
        "`dlp` lists no rule; write `dlp: off` to inspect nothing, or leave `dlp` out to run every rule"
    )]
    DlpEmpty,
    /// Two routes for one host.
    #[error("a route for `{host}` is declared twice; merge the two routes: one route per host")]
    DuplicateHost {
        /// The host.
        host: String,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn dlp_rules() -> String {
    super::DlpRule::ids().collect::<Vec<_>>().join(", ")
}
