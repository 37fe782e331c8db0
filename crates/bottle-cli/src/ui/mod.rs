//! Everything the bottle commands show a person: colour, the preflight, progress, and the
//! questions asked on the terminal. Renderers are pure (values in, strings out) so that tests
//! snapshot exactly what a user reads; only [`Ui`] and [`tty`] touch the terminal.

pub(crate) mod logging;
pub(crate) mod preflight;
pub(crate) mod progress;
pub(crate) mod terminal;
pub(crate) mod tty;

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};

/// Colour on or off for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paint {
    enabled: bool,
}

impl Paint {
    /// Colour for `stream` as anstream decides it: off for non-terminals, with `NO_COLOR` set
    /// or `TERM=dumb`; on with `CLICOLOR_FORCE`.
    pub(crate) fn for_stream(stream: &impl anstream::stream::RawStream) -> Paint {
        let choice = anstream::AutoStream::choice(stream);
        Paint {
            enabled: !matches!(choice, anstream::ColorChoice::Never),
        }
    }

    /// Whether colour is on.
    pub(crate) fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, style: Style, text: &str) -> String {
        if self.enabled {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    /// Success marks.
    pub(crate) fn good(self, text: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), text)
    }

    /// Failure marks and error labels.
    pub(crate) fn bad(self, text: &str) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), text)
    }

    /// Warnings.
    pub(crate) fn warn(self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default().bold(), text)
    }

    /// Labels and secondary text.
    pub(crate) fn dim(self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    /// Names that matter (agent, identity, commands to run).
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
}

/// How much to show on stderr, and whether it is a terminal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    /// `--quiet`: errors only.
    pub(crate) quiet: bool,
    /// stderr is a terminal: spinners and bars instead of plain lines.
    pub(crate) stderr_terminal: bool,
    /// Colour on stderr.
    pub(crate) paint: Paint,
}

impl Ui {
    pub(crate) fn from_process(quiet: bool) -> Ui {
        let stderr = std::io::stderr();
        Ui {
            quiet,
            stderr_terminal: stderr.is_terminal(),
            paint: Paint::for_stream(&stderr),
        }
    }

    /// Writes `text` to stderr unless `--quiet`. Status and preflight go to stderr so that
    /// `--exec` output on stdout stays clean for pipes.
    pub(crate) fn say(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }
}
