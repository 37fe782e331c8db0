//! The clap types of the commands that run bottles: `start`, `resume`, `cleanup`,
//! `completions`, and the flags every command takes.

use clap::{ArgAction, Args};

/// Flags accepted by every command.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct GlobalArgs {
    /// Show debug logs on stderr (`-vv`: trace); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 900)]
    pub(crate) verbose: u8,
    /// Show no progress, preflight or hints on stderr; errors only
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 901
    )]
    pub(crate) quiet: bool,
}

/// Which backend runs the bottle.
#[derive(Debug, Clone, Args)]
pub(crate) struct BackendArg {
    /// The backend [default: $CLAUDE_BOTTLE_BACKEND, else docker]
    #[arg(long, value_name = "NAME")]
    pub(crate) backend: Option<String>,
}

/// Consent to a smaller bottle than the manifest describes.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct AllowUnimplemented {
    /// Launch even though the backend does not implement some of the bottle's grants (the
    /// preflight marks them, e.g. `git:` remotes on the docker backend): the agent runs
    /// without them
    #[arg(long)]
    pub(crate) allow_unimplemented: bool,
}

/// `start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The agent [default: the only one in your home, else `default`, else a picker];
    /// repository agents start only when named
    #[arg(value_name = "AGENT")]
    pub(crate) agent: Option<String>,
    /// Launch without asking `launch this agent? [y/N]` (needed without a terminal)
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Copy the working directory (with its .git) into the bottle
    #[arg(long)]
    pub(crate) cwd: bool,
    /// Print the plan and exit, before anything is created
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// With --dry-run: print the plan as JSON
    #[arg(long, requires = "dry_run")]
    pub(crate) json: bool,
    /// Run CMD with `sh -c` in the bottle instead of Claude Code, and exit with its code
    #[arg(long, value_name = "CMD", conflicts_with_all = ["claude_args", "remote_control"])]
    pub(crate) exec: Option<String>,
    /// Pass --remote-control to Claude Code
    #[arg(long)]
    pub(crate) remote_control: bool,
    /// With no Claude credential on the host, let Claude Code log in inside the bottle (the
    /// agent then holds that login itself)
    #[arg(long, conflicts_with = "exec")]
    pub(crate) login_in_bottle: bool,
    #[command(flatten)]
    pub(crate) unimplemented: AllowUnimplemented,
    #[command(flatten)]
    pub(crate) backend: BackendArg,
    /// Arguments for Claude Code, after `--`
    #[arg(last = true, value_name = "CLAUDE_ARGS")]
    pub(crate) claude_args: Vec<String>,
}

/// `resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The bottle to continue, as shown by `list active` or after a crash (`researcher-m3hxd`)
    #[arg(value_name = "IDENTITY")]
    pub(crate) identity: String,
    /// Launch without asking `launch this agent? [y/N]`
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Start a new conversation instead of continuing the saved one (the saved files are
    /// still put back)
    #[arg(long, conflicts_with = "exec")]
    pub(crate) fresh: bool,
    /// Run CMD with `sh -c` in the bottle instead of Claude Code, and exit with its code
    #[arg(long, value_name = "CMD", conflicts_with = "claude_args")]
    pub(crate) exec: Option<String>,
    /// With no Claude credential on the host, let Claude Code log in inside the bottle (the
    /// agent then holds that login itself)
    #[arg(long, conflicts_with = "exec")]
    pub(crate) login_in_bottle: bool,
    #[command(flatten)]
    pub(crate) unimplemented: AllowUnimplemented,
    /// Arguments for Claude Code, after `--`
    #[arg(last = true, value_name = "CLAUDE_ARGS")]
    pub(crate) claude_args: Vec<String>,
}

/// `cleanup`.
#[derive(Debug, Args)]
pub(crate) struct CleanupArgs {
    /// Remove without asking
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Show what would be removed, and remove nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// With --dry-run: print the list as JSON
    #[arg(long, requires = "dry_run")]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) backend: BackendArg,
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

pub(crate) const START_AFTER_HELP: &str = "\
Examples:
  claude-bottle start                       the only agent in your home, or `default`
  claude-bottle start reviewer --cwd        with the working directory copied in
  claude-bottle start reviewer --dry-run    show the plan; create nothing
  claude-bottle start reviewer --yes -- -p \"summarise the repo\"
  claude-bottle start reviewer --yes --exec 'curl -sI https://api.github.com'

Shows the preflight (what the bottle is granted, where the agent comes from and how its
prompt starts), asks `launch this agent? [y/N]` on the terminal, launches, attaches Claude
Code, and removes everything when it exits. If the session fails or is interrupted, the
bottle's state is kept: `claude-bottle resume IDENTITY`.

Claude Code needs CLAUDE_CODE_OAUTH_TOKEN (from `claude setup-token`) or ANTHROPIC_API_KEY on
the host: the egress injects it, and the agent holds only a placeholder. Without one, start
refuses; --login-in-bottle logs in inside the bottle instead, and the agent holds that login.

Agents from ./.claude-bottle/agents/ were written by the repository: they start only when
named, never replace your own agents, and run only in the built-in bottle or in one of yours
that says `repository_agents: allow`. --cwd refuses a folder holding your home, ~/.ssh,
~/.claude or $CLAUDE_BOTTLE_HOME, and the preflight warns about tokens in the copied
.git/config.

A grant the backend does not implement yet (the preflight marks it) is refused unless you
pass --allow-unimplemented; a missing convenience (supervise) is only shown.";

pub(crate) const RESUME_AFTER_HELP: &str = "\
Examples:
  claude-bottle resume reviewer-m3hxd
  claude-bottle resume reviewer-m3hxd --fresh
  claude-bottle resume reviewer-m3hxd --yes -- -p 'carry on'

Starts the bottle again with the identity, agent, working directory and backend recorded
when it was started; `claude-bottle list active` shows the bottles that can be resumed and
what each saved. When a bottle's state is kept (non-zero exit, Ctrl-C, a failure), its
workspace and Claude Code's conversation are saved first; resume puts both back and Claude
Code continues that conversation (--fresh starts a new one, with the files kept). Each saved
part is at most CLAUDE_BOTTLE_SAVE_LIMIT (default 512MiB). Like start, it needs a Claude
credential on the host unless --exec or --login-in-bottle.";

pub(crate) const CLEANUP_AFTER_HELP: &str = "\
Examples:
  claude-bottle cleanup --dry-run
  claude-bottle cleanup --yes

Finds every container, network and volume left by a bottle that is no longer running (for
example after the launching process was killed), shows them, and removes them after one
question. Running bottles are never touched.";

pub(crate) const COMPLETIONS_AFTER_HELP: &str = "\
Examples:
  claude-bottle completions bash > ~/.local/share/bash-completion/completions/claude-bottle
  claude-bottle completions zsh > \"${fpath[1]}/_claude-bottle\"
  claude-bottle completions fish > ~/.config/fish/completions/claude-bottle.fish";
