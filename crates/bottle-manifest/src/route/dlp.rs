//! [`Dlp`]: which of the egress's data-loss checks a route's requests go through.

use std::fmt;

use bottle_secrets::{Detector, Rule};
use serde::{Deserialize, Serialize};

use super::RouteError;

/// What the egress looks for in a route's requests (URL, header values, body) before they
/// leave: every detector and the bottle's known secrets unless the route says otherwise.
///
/// Written `dlp: off`, or a list of rule ids (`dlp: [github-token, known-secret]`); absent
/// means every rule. A route turns it off (or narrows it) only for a host that must receive a
/// secret, such as the service a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Dlp {
    /// Every built-in detector and every known secret (the default).
    #[default]
    All,
    /// Nothing is inspected (`dlp: off`).
    Off,
    /// Only these rules, each once, in the order written.
    Only(Vec<DlpRule>),
}

/// One rule a route's `dlp` list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlpRule {
    /// A built-in detector, by its rule id (`github-token`).
    Detector(Detector),
    /// The bottle's known secrets (`known-secret`): its env secrets and credentials, raw and
    /// encoded.
    KnownSecrets,
}

impl DlpRule {
    /// Every rule id a `dlp` list accepts.
    pub fn ids() -> impl Iterator<Item = &'static str> {
        Detector::ALL
            .into_iter()
            .map(Detector::id)
            .chain([Rule::KNOWN_SECRET_ID])
    }

    /// The rule id, as written in a manifest.
    pub fn id(self) -> &'static str {
        match self {
            DlpRule::Detector(d) => d.id(),
            DlpRule::KnownSecrets => Rule::KNOWN_SECRET_ID,
        }
    }
}

impl fmt::Display for DlpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for DlpRule {
    type Err = RouteError;

    fn from_str(id: &str) -> Result<Self, RouteError> {
        if id == Rule::KNOWN_SECRET_ID {
            return Ok(DlpRule::KnownSecrets);
        }
        Detector::from_id(id)
            .map(DlpRule::Detector)
            .ok_or_else(|| RouteError::DlpUnknownRule {
                rule: id.to_owned(),
                suggestion: crate::yaml::did_you_mean(id, DlpRule::ids()).map(str::to_owned),
            })
    }
}

impl Dlp {
    /// Whether this is the default (every rule).
    pub fn is_all(&self) -> bool {
        *self == Dlp::All
    }

    /// Whether the route's requests are inspected at all.
    pub fn is_on(&self) -> bool {
        *self != Dlp::Off
    }

    /// The detectors to run (every one by default).
    pub fn detectors(&self) -> Vec<Detector> {
        match self {
            Dlp::All => Detector::ALL.to_vec(),
            Dlp::Off => Vec::new(),
            Dlp::Only(rules) => rules
                .iter()
                .filter_map(|r| match r {
                    DlpRule::Detector(d) => Some(*d),
                    DlpRule::KnownSecrets => None,
                })
                .collect(),
        }
    }

    /// Whether the bottle's known secrets are looked for.
    pub fn known_secrets(&self) -> bool {
        match self {
            Dlp::All => true,
            Dlp::Off => false,
            Dlp::Only(rules) => rules.contains(&DlpRule::KnownSecrets),
        }
    }
}

/// `dlp` as written: a word or a list of rule ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDlp {
    /// `false` or `true`: refused, `off` says what it means.
    Flag(bool),
    /// `off`.
    Word(String),
    /// `[github-token, known-secret]`.
    List(Vec<String>),
    /// A mapping: the original tool's `dlp: {inbound_detectors: …}`, refused with the new shape.
    Map(std::collections::BTreeMap<String, serde::de::IgnoredAny>),
}

impl TryFrom<RawDlp> for Dlp {
    type Error = RouteError;

    fn try_from(raw: RawDlp) -> Result<Self, RouteError> {
        match raw {
            RawDlp::Flag(flag) => Err(RouteError::DlpWord {
                word: flag.to_string(),
            }),
            RawDlp::Word(word) if word == "off" => Ok(Dlp::Off),
            RawDlp::Word(word) => Err(RouteError::DlpWord { word }),
            RawDlp::Map(_) => Err(RouteError::DlpWord {
                word: "{…}".to_owned(),
            }),
            RawDlp::List(ids) if ids.is_empty() => Err(RouteError::DlpEmpty),
            RawDlp::List(ids) => {
                let mut rules: Vec<DlpRule> = Vec::with_capacity(ids.len());
                for id in &ids {
                    let rule: DlpRule = id.parse()?;
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
                Ok(Dlp::Only(rules))
            }
        }
    }
}

impl Serialize for Dlp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // Never written: `skip_serializing_if = "Dlp::is_all"`; a list of every rule if it is.
            Dlp::All => s.collect_seq(DlpRule::ids()),
            Dlp::Off => s.serialize_str("off"),
            Dlp::Only(rules) => s.collect_seq(rules.iter().map(|r| r.id())),
        }
    }
}

impl<'de> Deserialize<'de> for Dlp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Dlp::try_from(RawDlp::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dlp(yaml: &str) -> Result<Dlp, RouteError> {
        Dlp::try_from(crate::yaml::parse::<RawDlp>(yaml).unwrap())
    }

    #[test]
    fn off_a_list_of_rule_ids_or_an_explained_error() {
        assert_eq!(dlp("off").unwrap(), Dlp::Off);
        let only = dlp("[github-token, known-secret, github-token]").unwrap();
        assert_eq!(
            only,
            Dlp::Only(vec![
                DlpRule::Detector(Detector::GithubToken),
                DlpRule::KnownSecrets
            ])
        );
        assert_eq!(only.detectors(), [Detector::GithubToken]);
        assert!(only.known_secrets());
        assert!(!Dlp::Off.is_on());
        assert_eq!(Dlp::All.detectors(), Detector::ALL);
        assert_eq!(
            dlp("[github-tokens]").unwrap_err().to_string(),
            "`github-tokens` is not a DLP rule (did you mean `github-token`?); the rules are \
             aws-access-key-id, github-token, anthropic-api-key, anthropic-oauth-token, \
             openai-api-key, stripe-live-key, slack-token, slack-webhook-url, google-api-key, \
             private-key, jwt, known-secret"
        );
        assert_eq!(
            dlp("false").unwrap_err().to_string(),
            "`dlp: false` is not a setting; write `dlp: off`, or a list of the rules to run \
             such as `dlp: [known-secret]`"
        );
        assert!(matches!(dlp("[]").unwrap_err(), RouteError::DlpEmpty));
    }
}
