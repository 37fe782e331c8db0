//! One module per command. Each returns its [`Output`] as data; `main` writes it, so every
//! command is testable without a terminal and only `main` touches stdout/stderr.

mod active;
pub(crate) mod bottle;
mod check;
mod cleanup;
mod completions;
mod info;
mod list;
mod resume;
mod start;

use crate::cli::Command;
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;

/// What a command prints and how it exits.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) exit: Exit,
}

impl Output {
    pub(crate) fn ok(stdout: String, stderr: String) -> Self {
        Output {
            stdout,
            stderr,
            exit: Exit::Ok,
        }
    }
}

pub(crate) fn run(ctx: &Context, command: Command) -> Result<Output, CliError> {
    match command {
        Command::Check(args) => check::run(ctx, &args),
        Command::List(args) => list::run(ctx, &args),
        Command::Info(args) => info::run(ctx, &args),
        // `main` hands these to `bottle::run`, which streams instead of returning data.
        Command::Start(_) | Command::Resume(_) | Command::Cleanup(_) | Command::Completions(_) => {
            unreachable!("the bottle commands are run by commands::bottle")
        }
    }
}
