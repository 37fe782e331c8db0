//! What claude-bottle knows without any file: the hosts Claude Code needs, the host
//! credential it injects for api.anthropic.com, and the `default` agent and bottle.

use crate::route::{AuthScheme, Route, RouteAuth, TokenRef};

/// The Claude API host, whose route carries the host's Claude credential.
pub const ANTHROPIC_API_HOST: &str = "api.anthropic.com";

/// One route of Claude Code's own table: a host, pinned to the methods and path prefixes the
/// measured Claude Code version needs, and why it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinRoute {
    /// The host.
    pub host: &'static str,
    /// The methods allowed on every listed path (a route has one method list).
    pub methods: &'static [&'static str],
    /// The path prefixes allowed (at a segment boundary; the query is not part of the path).
    pub paths: &'static [&'static str],
    /// Why Claude Code needs it, for the docs and the tests.
    pub why: &'static str,
}

/// The hosts, methods and paths Claude Code needs in a bottle, in route-table order: exactly
/// what Claude Code 2.1.332 contacts once onboarding is pre-written
/// ([`crate::agent_env`]'s traffic switches set, see `bottle_core::provision`), measured against
/// a fake of every host (`/work/notes/claude-code-observations.md` §1). Every bottle's
/// effective route table starts with these; a bottle route for the same host replaces the
/// built-in one.
///
/// A route has one `methods` list for all its paths, and one route per host, so the
/// api.anthropic.com route allows GET and POST on each of its prefixes: GET
/// `/v1/messages/batches` (the account's message batches) is reachable with the injected
/// credential too. That is the same account the agent already spends through
/// `POST /v1/messages`, reached through the same credential, and nothing of it leaves for
/// another host; a finer shape (methods per path) is not in the route vocabulary.
///
/// Left out on purpose (never contacted by 2.1.332, or not needed with the switches set):
/// `statsig.anthropic.com`, `sentry.io` and `claude.ai` (never contacted), `downloads.claude.ai`
/// (the native updater, the plugin marketplace and the model catalog),
/// `raw.githubusercontent.com` (the changelog; it serves any public file on GitHub),
/// `registry.npmjs.org` (the updater's version check) and `github.com` (the marketplace's git
/// clone).
pub const CLAUDE_CODE_ROUTES: &[BuiltinRoute] = &[
    BuiltinRoute {
        host: ANTHROPIC_API_HOST,
        methods: &["GET", "POST"],
        paths: &[
            // The turn: `POST /v1/messages?beta=true`; `/v1/messages/count_tokens` too.
            "/v1/messages",
            // The organisation's policy and remote managed settings, fetched at every start;
            // refused, Claude Code warns on screen and drops its default permission mode.
            "/api/claude_code/policy_limits",
            "/api/claude_code/settings",
            // WebFetch's preflight, `GET /api/web/domain_info?domain=…`, before every fetch.
            "/api/web/domain_info",
            // The onboarding connectivity check, made only while onboarding is not done
            // (provisioning pre-writes it); refused then, Claude Code exits 1.
            "/api/hello",
        ],
        why: "the Messages API, org policy and settings, WebFetch's preflight; the host \
              credential is injected here",
    },
    BuiltinRoute {
        host: "platform.claude.com",
        methods: &["GET"],
        paths: &["/v1/oauth/hello"],
        why: "the other half of the onboarding connectivity check, made before an interactive \
              session opens while onboarding is not done (with an API key too); refused then, \
              Claude Code exits 1",
    },
];

/// The hosts of [`CLAUDE_CODE_ROUTES`], in order.
pub const CLAUDE_CODE_HOSTS: &[&str] = &[ANTHROPIC_API_HOST, "platform.claude.com"];

/// The name of the built-in agent and bottle.
pub const DEFAULT_NAME: &str = "default";

/// The value the agent holds instead of the real credential. Claude Code needs *some* value to
/// send requests; the egress replaces it on the way out.
pub const PLACEHOLDER: &str = "claude-bottle-placeholder-the-egress-injects-the-real-credential";

/// Which host credential the `api.anthropic.com` route injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaudeAuth {
    /// `CLAUDE_CODE_OAUTH_TOKEN` (from `claude setup-token`), as `Authorization: Bearer`.
    OAuthToken,
    /// `ANTHROPIC_API_KEY`, as `x-api-key`.
    ApiKey,
}

impl ClaudeAuth {
    /// Choose by what is set on the host: the OAuth token if set, else the API key if set.
    /// `is_set` is given so that callers decide what counts as set (non-empty) and tests stay
    /// isolated from the real environment.
    pub fn detect(is_set: impl Fn(&str) -> bool) -> Option<Self> {
        if is_set(ClaudeAuth::OAuthToken.host_var()) {
            Some(ClaudeAuth::OAuthToken)
        } else if is_set(ClaudeAuth::ApiKey.host_var()) {
            Some(ClaudeAuth::ApiKey)
        } else {
            None
        }
    }

    /// The host variable holding the credential (also the variable the agent gets, holding
    /// only [`PLACEHOLDER`]).
    pub const fn host_var(self) -> &'static str {
        match self {
            ClaudeAuth::OAuthToken => "CLAUDE_CODE_OAUTH_TOKEN",
            ClaudeAuth::ApiKey => "ANTHROPIC_API_KEY",
        }
    }

    /// The `auth` of the built-in `api.anthropic.com` route.
    pub fn route_auth(self) -> RouteAuth {
        match self {
            ClaudeAuth::OAuthToken => RouteAuth::Scheme {
                scheme: AuthScheme::Bearer,
                token_ref: self.token_ref(),
            },
            ClaudeAuth::ApiKey => RouteAuth::Header {
                header: "x-api-key"
                    .parse()
                    .unwrap_or_else(|_| unreachable!("a valid header literal")),
                token_ref: self.token_ref(),
            },
        }
    }

    fn token_ref(self) -> TokenRef {
        self.host_var()
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid variable name"))
    }

    /// `(variable, placeholder)` for the agent's environment.
    pub fn placeholder_env(self) -> (&'static str, &'static str) {
        (self.host_var(), PLACEHOLDER)
    }
}

/// Claude Code's required routes: [`CLAUDE_CODE_ROUTES`] as routes, the API route carrying
/// `auth` when a host credential is known. Every one strips the credentials the client sends
/// (`strip_client_credentials`), so that the agent cannot use these hosts with a credential of
/// its own, such as an account it was told to write to, and has `dlp: off`.
pub fn claude_code_routes(auth: Option<ClaudeAuth>) -> Vec<Route> {
    CLAUDE_CODE_ROUTES
        .iter()
        .map(|builtin| {
            let mut route = Route::host(builtin.host);
            route.strip_client_credentials = true;
            // No DLP: every request carries the whole conversation, so one token-shaped string
            // the agent read (or a secret it printed) would refuse every later turn and end
            // the session; and what reaches these hosts reaches the user's own Anthropic
            // account, which is no place an attacker reads.
            route.dlp = crate::route::Dlp::Off;
            route.methods = builtin
                .methods
                .iter()
                .map(|m| {
                    m.parse()
                        .unwrap_or_else(|_| unreachable!("a valid method literal"))
                })
                .collect();
            route.path_allowlist = builtin
                .paths
                .iter()
                .map(|p| {
                    p.parse()
                        .unwrap_or_else(|_| unreachable!("a valid path literal"))
                })
                .collect();
            if builtin.host == ANTHROPIC_API_HOST {
                route.auth = auth.map(ClaudeAuth::route_auth);
            }
            route
        })
        .collect()
}

/// The credential the `api.anthropic.com` route of a route table injects, if any: what Claude
/// Code in the bottle authenticates with. `None` means Claude Code would have no credential
/// but the one it logs in for inside the bottle. The one lookup the manifest, the plan and
/// the CLI share.
pub fn claude_route_auth<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Option<&'a RouteAuth> {
    routes
        .into_iter()
        .find(|r| r.host == ANTHROPIC_API_HOST)?
        .auth
        .as_ref()
}

/// The built-in `default` agent's system prompt.
pub(crate) const DEFAULT_PROMPT: &str = "You are running inside a claude-bottle: a disposable, \
isolated container. Network access goes through an egress proxy that allows only the hosts \
Claude Code needs; other hosts are refused with HTTP 403. Nothing you change here outlives the \
session unless it is pushed through a configured git remote.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_route_strips_the_clients_credentials() {
        for auth in [None, Some(ClaudeAuth::OAuthToken), Some(ClaudeAuth::ApiKey)] {
            let routes = claude_code_routes(auth);
            let hosts: Vec<String> = routes.iter().map(|r| r.host.to_string()).collect();
            assert_eq!(hosts, CLAUDE_CODE_HOSTS);
            for route in &routes {
                assert!(route.strips_client_credentials(), "{}", route.host);
                assert!(route.check().is_empty(), "{}", route.host);
                assert!(route.limits_requests(), "{} is pinned", route.host);
            }
        }
    }

    #[test]
    fn the_table_is_exactly_what_claude_code_needs() {
        let routes = claude_code_routes(Some(ClaudeAuth::ApiKey));
        let shape: Vec<(String, Vec<String>, Vec<String>, bool)> = routes
            .iter()
            .map(|r| {
                (
                    r.host.to_string(),
                    r.methods.iter().map(ToString::to_string).collect(),
                    r.path_allowlist.iter().map(ToString::to_string).collect(),
                    r.auth.is_some(),
                )
            })
            .collect();
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            shape,
            [
                (
                    "api.anthropic.com".to_owned(),
                    owned(&["GET", "POST"]),
                    owned(&[
                        "/v1/messages",
                        "/api/claude_code/policy_limits",
                        "/api/claude_code/settings",
                        "/api/web/domain_info",
                        "/api/hello",
                    ]),
                    true,
                ),
                (
                    "platform.claude.com".to_owned(),
                    owned(&["GET"]),
                    owned(&["/v1/oauth/hello"]),
                    false,
                ),
            ]
        );
        let api = &routes[0];
        for path in ["/v1/messages", "/v1/messages/count_tokens"] {
            assert!(api.path_allowlist.iter().any(|p| p.allows(path)), "{path}");
        }
        for path in ["/api/hello/x/../../v1", "/api/eval/sdk-x", "/v1/files"] {
            let allowed = api.path_allowlist.iter().any(|p| p.allows(path))
                && crate::route::path_problem(path).is_none();
            assert!(!allowed, "{path} is outside the table");
        }
    }
}
