//! `claude-bottle`: the command people start bottles with.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod backends;
mod cli;
mod commands;
mod context;
mod error;
mod exit;
mod render;
mod ui;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ui::logging::init(cli.global.verbose);
    // The commands that run bottles stream to the terminal; the rest return their output.
    let command = match commands::bottle::run(cli.global, cli.command) {
        Ok(code) => return code,
        Err(command) => command,
    };
    let result = context::Context::from_env().and_then(|ctx| commands::run(&ctx, command));
    match result {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`claude-bottle list | head -1`) is not an error worth a message.
            let _ = stdout.write_all(output.stdout.as_bytes());
            let _ = stdout.flush();
            if !cli.global.quiet {
                eprint!("{}", output.stderr);
            }
            output.exit.into()
        }
        Err(err) => {
            eprint!("{}", err.render());
            err.exit.into()
        }
    }
}
