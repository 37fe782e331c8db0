//! Secret values: env entries and injected credentials. They are held in memory only, never
//! printed (`Debug` redacts), never serialised, and only handed to a backend at launch.

use std::fmt;

use crate::error::{BoxError, Error, Result};
use crate::host::HostContext;
use crate::plan::PreparedSpec;
use crate::spec::EnvSource;

/// A string that must not be shown: `Debug` prints `<redacted>`, there is no `Display` and no
/// `Serialize`. Read it with [`SecretString::expose`] at the one place that hands it on.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The value. Call it only where the value leaves for the bottle or the egress.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        SecretString(value.to_owned())
    }
}

/// A `?` env entry waiting for a value: what the CLI asks on the terminal.
#[derive(Debug, Clone, Copy)]
pub struct SecretPrompt<'a> {
    /// The env entry's name.
    pub name: &'a str,
    /// The manifest's message (`?message`), if any.
    pub message: Option<&'a str>,
}

/// The resolved secret inputs of one launch: every env entry's value and every credential an
/// egress route injects. Built after the y/N question, handed to `launch`, dropped after it.
#[derive(Clone, Default)]
pub struct Secrets {
    env: Vec<(String, SecretString)>,
    tokens: Vec<(String, SecretString)>,
}

impl Secrets {
    /// No secrets (an agent whose bottle has no env and no credentials).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Resolves the plan's env entries (literal, `${HOST}` from `host`, `?` through `ask`), then
    /// appends the bottle's placeholder variables, and resolves each route's `token_ref` from
    /// `host`. `ask` is called once per `?` entry in manifest order;
    /// the CLI implements it with a hidden terminal prompt.
    pub fn resolve(
        prepared: &PreparedSpec,
        host: &HostContext,
        mut ask: impl FnMut(SecretPrompt<'_>) -> Result<SecretString, BoxError>,
    ) -> Result<Self> {
        let mut env = Vec::with_capacity(prepared.agent.bottle.env.len());
        for entry in &prepared.agent.bottle.env {
            let value = match &entry.source {
                EnvSource::Literal(value) => value.clone(),
                EnvSource::Host(var) => match host.var(var) {
                    Some(value) => SecretString::new(value),
                    None => {
                        return Err(Error::HostEnvMissing {
                            name: entry.name.clone(),
                            var: var.clone(),
                        });
                    }
                },
                EnvSource::Prompt(message) => ask(SecretPrompt {
                    name: &entry.name,
                    message: message.as_deref(),
                })
                .map_err(|source| Error::Prompt {
                    name: entry.name.clone(),
                    source,
                })?,
            };
            env.push((entry.name.clone(), value));
        }
        for (name, value) in &prepared.agent.bottle.placeholder_env {
            // A manifest entry of the same name is the user's deliberate choice: it wins.
            if !env.iter().any(|(n, _)| n == name) {
                env.push((name.clone(), SecretString::new(value.as_str())));
            }
        }
        let mut tokens: Vec<(String, SecretString)> = Vec::new();
        for route in &prepared.agent.bottle.egress.routes {
            let Some(auth) = &route.auth else { continue };
            let token_ref = auth.token_ref();
            if tokens.iter().any(|(name, _)| name == token_ref) {
                continue;
            }
            let value = host.var(token_ref).ok_or_else(|| Error::TokenRefMissing {
                host: route.host.to_string(),
                token_ref: token_ref.to_owned(),
            })?;
            tokens.push((token_ref.to_owned(), SecretString::new(value)));
        }
        Ok(Secrets { env, tokens })
    }

    /// Adds an env value (for backends' tests and embedders that resolve values themselves).
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds a credential for a `token_ref`.
    pub fn with_token(
        mut self,
        token_ref: impl Into<String>,
        value: impl Into<SecretString>,
    ) -> Self {
        self.tokens.push((token_ref.into(), value.into()));
        self
    }

    /// The bottle's environment: manifest entries in order, then placeholders.
    pub fn env(&self) -> impl ExactSizeIterator<Item = (&str, &SecretString)> {
        self.env.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The credential for `token_ref`, for the egress.
    pub fn token(&self, token_ref: &str) -> Option<&SecretString> {
        self.tokens
            .iter()
            .find(|(name, _)| name == token_ref)
            .map(|(_, value)| value)
    }

    /// Every credential, by `token_ref`.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = (&str, &SecretString)> {
        self.tokens
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: a `{:?}` in a log line must not leak a value.
        f.debug_struct("Secrets")
            .field("env", &self.env.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field(
                "tokens",
                &self.tokens.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
