//! Secret detection for claude-bottle: credentials recognised by their shape (AWS, GitHub,
//! Anthropic, OpenAI, Stripe, Slack, Google keys, private keys, JWTs) and values the caller
//! knows are secret (a bottle's env values, injected tokens) in their raw, hex, base64,
//! base64url and percent-encoded forms.
//!
//! Two ways in, one set of rules: [`Scanner::scan`] for a buffer in memory, and
//! [`Stream`] for bytes that arrive in chunks — a git gate scanning every blob of a push, an
//! egress proxy scanning request bodies as it forwards them. A [`Match`] names its rule
//! ([`Rule::id`] is stable), its byte range and the caller's context; it never holds the
//! secret, so it can be logged, displayed and debugged as is.
//!
//! Every match starts at a literal (a detector's keyword such as `ghp_`, or a form of a known
//! secret) and is at most [`Scanner::max_match_len`] bytes long, so a stream keeps at most
//! [`Scanner::max_retained`] bytes between chunks and holds back at most
//! [`Scanner::max_held_back`] (8 KiB with the built-in detectors, whose longest shape is a
//! JWT; more only when a known secret's forms are longer).
//!
//! ```
//! use bottle_secrets::{Encoding, Rule, Scanner};
//!
//! // Built once, with the values this bottle must never let out.
//! let scanner = Scanner::builder()
//!     .known_secret("UPSTREAM_TOKEN", "tok-5e9f1c2a7b3d")
//!     .build()?;
//!
//! // A git gate: each blob of a push, with its commit and path as the context.
//! let blob = b"[auth]\nkey = AKIAZ3MHQ4VX7NB2KDLT\n";
//! let mut gate = scanner.stream_with(("4f2a9c1", "deploy/config.ini"));
//! let mut found = Vec::new();
//! for chunk in blob.chunks(7) {
//!     found.extend(gate.feed(chunk).into_matches());
//! }
//! found.extend(gate.finish());
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].id(), "aws-access-key-id");
//! assert_eq!(found[0].range(), 13..33);
//! assert_eq!(found[0].context().1, "deploy/config.ini");
//! assert_eq!(found[0].to_string(), "aws-access-key-id at bytes 13..33");
//!
//! // An egress: forward what is safe, hold back the rest, stop at a match.
//! let mut body = scanner.stream_with("POST /upload");
//! let mut forwarded = Vec::new();
//! let mut held = Vec::new();
//! let mut blocked = None;
//! for chunk in [&b"data=dG9rLTVlOW"[..], b"YxYzJhN2IzZA%3D%3D"] {
//!     held.extend_from_slice(chunk);
//!     let feed = body.feed(chunk);
//!     if let Some(m) = feed.matches().first() {
//!         blocked = Some(m.clone());
//!         break;
//!     }
//!     forwarded.extend(held.drain(..held.len() - feed.held_back()));
//! }
//! let blocked = blocked.expect("the base64 of the token is found");
//! assert_eq!(
//!     blocked.rule(),
//!     &Rule::KnownSecret { name: "UPSTREAM_TOKEN".into(), encoding: Encoding::Base64 },
//! );
//! // Nothing of the secret's encoding left before the match was known.
//! assert!(forwarded.len() as u64 <= blocked.range().start);
//! # Ok::<(), bottle_secrets::Error>(())
//! ```
//!
//! The rules, what each matches, why and where the facts come from, are in the crate's
//! README.

#![forbid(unsafe_code)]

mod error;
mod known;
mod pattern;
mod rule;
mod scanner;
mod stream;

pub use error::Error;
pub use known::{MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN};
pub use rule::{Detector, Encoding, Rule};
pub use scanner::{Match, Scanner, ScannerBuilder};
pub use stream::{Feed, Stream};
