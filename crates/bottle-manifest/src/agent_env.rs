//! The agent's fixed environment: the variables every backend sets in the agent itself, and so
//! the names a manifest may not set.
//!
//! One table for both sides. The manifest refuses these names (a manifest value would send the
//! agent past the egress, break its trust in the per-bottle CA, or put a real Claude credential
//! into the bottle); bottle-core's agent contract (`bottle_core::agent`) sets them, turning each
//! [`FixedValue`] into the path or URL of its own contract. The table lives here, not in core,
//! because the manifest is the lower crate and refuses the names first.

use crate::builtin::ClaudeAuth;

/// What a fixed variable holds; bottle-core's agent contract supplies the value.
///
/// Not `#[non_exhaustive]` on purpose: a new kind must fail to compile where its value is
/// decided, instead of reaching the agent unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedValue {
    /// The egress's proxy URL with the bottle's proxy credential
    /// (`http://bottle:<token>@egress:9099`): a secret minted at launch, never in a plan.
    ProxyUrl,
    /// The hosts that skip the proxy: loopback only.
    NoProxy,
    /// `1`: Node's built-in `fetch` honours the proxy variables.
    Enabled,
    /// The per-bottle CA certificate on its own.
    CaFile,
    /// The system CA bundle, which holds the per-bottle CA after provisioning.
    CaBundle,
    /// The agent user's home.
    Home,
    /// `1`, except in a session with Remote Control, which needs the feature flags this
    /// switch turns off: the agent then does not get the variable at all (Claude Code reads
    /// `0` as set too).
    OnUnlessRemoteControl,
}

/// Every variable the agent gets from claude-bottle itself, in the order it is set.
pub const FIXED_ENV: &[(&str, FixedValue)] = &[
    ("HTTP_PROXY", FixedValue::ProxyUrl),
    ("HTTPS_PROXY", FixedValue::ProxyUrl),
    ("http_proxy", FixedValue::ProxyUrl),
    ("https_proxy", FixedValue::ProxyUrl),
    ("NO_PROXY", FixedValue::NoProxy),
    ("no_proxy", FixedValue::NoProxy),
    ("NODE_USE_ENV_PROXY", FixedValue::Enabled),
    ("NODE_EXTRA_CA_CERTS", FixedValue::CaFile),
    ("SSL_CERT_FILE", FixedValue::CaBundle),
    ("REQUESTS_CA_BUNDLE", FixedValue::CaBundle),
    ("CURL_CA_BUNDLE", FixedValue::CaBundle),
    ("GIT_SSL_CAINFO", FixedValue::CaBundle),
    ("HOME", FixedValue::Home),
    // Claude Code's traffic switches: with them (and onboarding pre-written) Claude Code
    // 2.1.332 contacts only what the built-in route table allows (see `builtin`). No
    // telemetry, feature flags, changelog or model catalog requests; no self-update (the
    // image pins the version); no plugin-marketplace download.
    (
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        FixedValue::OnUnlessRemoteControl,
    ),
    ("DISABLE_AUTOUPDATER", FixedValue::Enabled),
    (
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
        FixedValue::Enabled,
    ),
];

/// The Claude credentials the egress injects: the agent holds at most a placeholder, never a
/// value a manifest gives.
pub const INJECTED_CREDENTIALS: [&str; 2] = [
    ClaudeAuth::OAuthToken.host_var(),
    ClaudeAuth::ApiKey.host_var(),
];

/// Whether a manifest may not set `name`: a [fixed](FIXED_ENV) variable or an
/// [injected credential](INJECTED_CREDENTIALS).
pub fn is_reserved(name: &str) -> bool {
    FIXED_ENV.iter().any(|(fixed, _)| *fixed == name) || INJECTED_CREDENTIALS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_variables_and_credentials_are_reserved_and_nothing_else() {
        for (name, _) in FIXED_ENV {
            assert!(is_reserved(name), "{name}");
        }
        assert!(is_reserved("CLAUDE_CODE_OAUTH_TOKEN"));
        assert!(is_reserved("ANTHROPIC_API_KEY"));
        assert!(is_reserved("DISABLE_AUTOUPDATER"));
        assert!(is_reserved("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"));
        assert!(!is_reserved("GH_TOKEN"));
        assert!(
            !is_reserved("https_PROXY"),
            "names are case-sensitive, as the agent's env is"
        );
    }
}
