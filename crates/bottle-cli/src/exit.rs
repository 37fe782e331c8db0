//! Exit codes: defined once here, listed in `--help`, and relied on by scripts.

use std::process::ExitCode;

/// Why `claude-bottle` exits. The numbers are part of the interface: never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Everything went as asked.
    Ok = 0,
    /// An unexpected failure (a bug, or an I/O error we did not anticipate).
    Failure = 1,
    /// The command line is wrong (clap uses this code for its own usage errors), or a question
    /// must be asked and there is no terminal to ask it on.
    Usage = 2,
    /// A manifest is invalid, names an agent or bottle that does not exist, or needs something
    /// the host does not have (a host variable, a key file, a Claude credential).
    Manifest = 3,
    /// The Docker engine (or the selected backend) cannot be reached.
    Engine = 4,
    /// A bottle failed to start, or failed while running.
    Bottle = 5,
    /// The user declined the launch question.
    Declined = 6,
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

impl Exit {
    /// Every code with its meaning, for `--help`.
    pub(crate) const ALL: &[(Exit, &'static str)] = &[
        (Exit::Ok, "success"),
        (Exit::Failure, "unexpected failure"),
        (
            Exit::Usage,
            "usage error: bad command line, no terminal to confirm on (--yes), an unimplemented grant",
        ),
        (
            Exit::Manifest,
            "manifest error: invalid file, unknown agent or bottle, missing host variable or \
             credential",
        ),
        (Exit::Engine, "the Docker engine cannot be reached"),
        (
            Exit::Bottle,
            "the bottle failed to start or failed while running",
        ),
        (Exit::Declined, "the launch was declined"),
        (Exit::Interrupted, "interrupted (Ctrl-C)"),
    ];

    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The text of the "Exit codes" section of `--help`.
pub(crate) fn help_section() -> String {
    let mut out = String::from("Exit codes:\n");
    for (exit, meaning) in Exit::ALL {
        out.push_str(&format!("  {:>3}  {meaning}\n", exit.code()));
    }
    out
}
