//! `claude-bottle completions <SHELL>`: a completion script on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::CliError;
use crate::exit::Exit;

pub(crate) fn run(args: &CompletionsArgs) -> Result<u8, CliError> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(Exit::Ok.code())
}
