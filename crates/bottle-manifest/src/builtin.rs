//! What claude-bottle knows without any file: the hosts Claude Code needs, the host
//! credential it injects for api.anthropic.com, and the `default` agent and bottle.

use crate::route::{AuthScheme, Route, RouteAuth, TokenRef};

/// The Claude API host, whose route carries the host's Claude credential.
pub const ANTHROPIC_API_HOST: &str = "api.anthropic.com";

/// Hosts Claude Code itself needs, in route-table order. Every bottle's effective route table
/// starts with these (a bottle route for the same host replaces the built-in one).
///
/// `raw.githubusercontent.com`, which the original tool allowed, is left out on purpose: it
/// serves any public file on GitHub, and Claude Code works without it.
pub const CLAUDE_CODE_HOSTS: &[&str] = &[
    ANTHROPIC_API_HOST,
    "statsig.anthropic.com",
    "sentry.io",
    "claude.ai",
    "platform.claude.com",
    "downloads.claude.ai",
];

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

/// Claude Code's required routes: routes to [`CLAUDE_CODE_HOSTS`], the API route carrying
/// `auth` when a host credential is known. Every one strips the credentials the client sends
/// (`strip_client_credentials`), so that the agent cannot use these hosts with a credential of
/// its own, such as an account it was told to write to.
pub fn claude_code_routes(auth: Option<ClaudeAuth>) -> Vec<Route> {
    CLAUDE_CODE_HOSTS
        .iter()
        .map(|host| {
            let mut route = Route::host(host);
            route.strip_client_credentials = true;
            if *host == ANTHROPIC_API_HOST {
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
            }
        }
    }
}
