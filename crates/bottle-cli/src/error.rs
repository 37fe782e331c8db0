//! The CLI's error: one clear sentence, optional details, a hint, and an exit code.

use bottle_manifest::{ManifestError, escape};

use crate::exit::Exit;

/// A failure to report to the user.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) exit: Exit,
    /// One sentence, without a trailing period.
    pub(crate) message: String,
    /// Multi-line details (diagnostics), printed after the message.
    pub(crate) details: Option<String>,
    /// How to fix it.
    pub(crate) hint: Option<String>,
}

impl CliError {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The text printed on stderr. The message and the hint are one line each and shown
    /// [`escape`]d, whatever they quote; details are multi-line diagnostics, which escape what
    /// they quote themselves.
    pub(crate) fn render(&self) -> String {
        let mut out = format!("error: {}\n", escape(&self.message));
        if let Some(details) = &self.details {
            out.push_str(details);
            if !details.ends_with('\n') {
                out.push('\n');
            }
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {}\n", escape(hint)));
        }
        out
    }
}

impl From<ManifestError> for CliError {
    fn from(err: ManifestError) -> Self {
        let hint = err.hint();
        let mut out = match &err {
            ManifestError::Invalid { agent, diagnostics } => {
                let details: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                CliError::new(
                    Exit::Manifest,
                    format!(
                        "agent `{agent}` cannot be used: {} error{} in its manifest",
                        diagnostics.len(),
                        if diagnostics.len() == 1 { "" } else { "s" }
                    ),
                )
                .with_details(details.join("\n\n"))
            }
            _ => CliError::new(Exit::Manifest, err.to_string()),
        };
        out.hint = hint;
        out
    }
}

impl From<anyhow::Error> for CliError {
    fn from(err: anyhow::Error) -> Self {
        CliError::new(Exit::Failure, format!("{err:#}")).with_hint(
            "this is unexpected; please report it at https://github.com/claude-bottle/claude-bottle/issues",
        )
    }
}
