//! The command line, as clap types. Commands live in `commands/`, one module each; add a
//! variant to [`Command`] and a module there to add a command.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

mod bottle;
pub(crate) use bottle::*;

/// Run Claude Code in disposable, isolated Docker bottles.
#[derive(Debug, Parser)]
#[command(
    name = "claude-bottle",
    version,
    about = "Run Claude Code in disposable, isolated Docker bottles",
    long_about = "Run Claude Code in disposable, isolated Docker bottles: one per agent, each \
granted only what its manifest allows — its skills, env vars, git remotes and reachable hosts.\n\n\
Bottles are read from $CLAUDE_BOTTLE_HOME/bottles/ (default ~/.claude-bottle), agents from \
$CLAUDE_BOTTLE_HOME/agents/ and ./.claude-bottle/agents/.",
    after_help = root_after_help(),
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

fn root_after_help() -> String {
    format!(
        "Examples:\n  \
         claude-bottle check                 validate every manifest file\n  \
         claude-bottle list agents           the agents you can start\n  \
         claude-bottle info reviewer         what the `reviewer` agent is granted\n  \
         claude-bottle start reviewer        preflight, confirm, run it in a new bottle\n  \
         claude-bottle list active           the bottles running now, and resumable ones\n  \
         claude-bottle cleanup               remove what crashed bottles left behind\n\n\
         Environment:\n  \
         CLAUDE_BOTTLE_HOME                  where bottles/ and agents/ live (default ~/.claude-bottle)\n  \
         CLAUDE_CODE_OAUTH_TOKEN             Claude credential from `claude setup-token`\n  \
         ANTHROPIC_API_KEY                   used instead when no OAuth token is set\n  \
         CLAUDE_BOTTLE_BACKEND               the backend bottles run on (default docker)\n  \
         NO_COLOR                            no colour in any output\n\n{}",
        exit::help_section()
    )
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate every manifest file in the home and the working directory.
    #[command(
        after_help = "Examples:\n  claude-bottle check\n  CLAUDE_BOTTLE_HOME=./fixtures claude-bottle check\n\n\
Prints every error as file:line:col with the offending line, and exits with code 3 if there is any."
    )]
    Check(CheckArgs),
    /// List agents, bottles, or the bottles running now.
    #[command(
        after_help = "Examples:\n  claude-bottle list\n  claude-bottle list agents\n  claude-bottle list bottles --json\n  claude-bottle list active"
    )]
    List(ListArgs),
    /// Show what an agent is granted: bottle chain, env names, skills, routes, git remotes.
    #[command(
        after_help = "Examples:\n  claude-bottle info default\n  claude-bottle info reviewer --json\n\n\
Never shows an environment value, not even a literal one: only names and where values come from."
    )]
    Info(InfoArgs),
    /// Start an agent in a new bottle: preflight, confirm, launch, attach, tear down.
    #[command(after_help = START_AFTER_HELP)]
    Start(StartArgs),
    /// Continue a bottle whose state was kept (after a crash, a failure or Ctrl-C).
    #[command(after_help = RESUME_AFTER_HELP)]
    Resume(ResumeArgs),
    /// Remove what bottles that are no longer running left behind.
    #[command(after_help = CLEANUP_AFTER_HELP)]
    Cleanup(CleanupArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
}

/// `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {}

/// `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// What to list; both agents and bottles when omitted.
    #[arg(value_enum)]
    pub(crate) what: Option<ListKind>,
    /// Print JSON for tools instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// With `active`: the backend to ask [default: $CLAUDE_BOTTLE_BACKEND, else docker]
    #[arg(long, value_name = "NAME")]
    pub(crate) backend: Option<String>,
}

/// What `list` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListKind {
    /// Agents you can start.
    Agents,
    /// Bottles agents run in.
    Bottles,
    /// Bottles running now, and kept ones that can be resumed.
    Active,
}

/// `info`.
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The agent's name.
    #[arg(value_name = "AGENT")]
    pub(crate) agent: String,
    /// Print JSON for tools instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}
