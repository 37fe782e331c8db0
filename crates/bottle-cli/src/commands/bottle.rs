//! The commands that run bottles (`start`, `resume`, `cleanup`, `list active`,
//! `completions`). Unlike the manifest-only commands they talk to a backend, ask questions on
//! the terminal, show live progress and hand the terminal to a session, so they write as they
//! go instead of returning their output as data; what they show is still rendered by pure
//! functions in `ui`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use bottle_core::HostContext;
use bottle_manifest::ManifestError;

use crate::cli::{Command, GlobalArgs, ListKind};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::ui::{Ui, tty::TtyError};
use crate::{backends, ui};

use super::{active, cleanup, completions, resume, start};

/// Runs `command` if it is one of these; gives it back otherwise.
pub(crate) fn run(global: GlobalArgs, command: Command) -> Result<ExitCode, Command> {
    let live = match &command {
        Command::Start(_) | Command::Resume(_) | Command::Cleanup(_) | Command::Completions(_) => {
            true
        }
        Command::List(args) => args.what == Some(ListKind::Active),
        _ => false,
    };
    if !live {
        return Err(command);
    }
    let ui = Ui::from_process(global.quiet);
    let code = match execute(&ui, command) {
        Ok(code) => code,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(err.render().as_bytes());
            err.exit.code()
        }
    };
    backends::finish();
    Ok(ExitCode::from(code))
}

fn execute(ui: &Ui, command: Command) -> Result<u8, CliError> {
    if let Command::Completions(args) = &command {
        return completions::run(args);
    }
    let ctx = Context::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| anyhow::Error::new(err).context("cannot start the async runtime"))?;
    let result = runtime.block_on(async {
        match command {
            Command::Start(args) => start::run(&ctx, ui, args).await,
            Command::Resume(args) => resume::run(&ctx, ui, args).await,
            Command::Cleanup(args) => cleanup::run(&ctx, ui, args).await,
            Command::List(args) => active::run(&ctx, ui, &args).await,
            _ => unreachable!("`run` only passes the commands of this module"),
        }
    });
    // An attached session reads our stdin on a blocking thread that no one can interrupt;
    // waiting for it would hang the exit until the user pressed a key. Everything that
    // matters (teardown included) has finished by now.
    runtime.shutdown_background();
    result
}

/// The host as core sees it, with the claude-bottle home the manifest was read from.
pub(crate) fn host(ctx: &Context) -> HostContext {
    let mut host = HostContext::from_process();
    host.bottle_home = ctx.layout.home().to_path_buf();
    host
}

/// Where a core error came from: the same backend error means "the engine cannot be reached"
/// while preparing or listing, and "the bottle failed" once it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Choosing a backend, preparing a plan, listing, planning a cleanup.
    Engine,
    /// Launching, running, removing.
    Bottle,
}

/// A core error as the user sees it: one sentence (core's messages already name the fix), the
/// exit code of its kind.
pub(crate) fn core_error(err: bottle_core::Error, stage: Stage) -> CliError {
    use bottle_core::Error as E;
    let err = match err {
        // bottle-manifest's own error renders with file, line, column and the offending line.
        E::Manifest { agent, source } => {
            return match source.downcast::<ManifestError>() {
                Ok(manifest) => CliError::from(*manifest),
                Err(source) => CliError::new(
                    Exit::Manifest,
                    format!("the manifest for agent `{agent}` is invalid: {source}"),
                )
                .with_hint("run `claude-bottle check` to see every problem"),
            };
        }
        other => other,
    };
    let exit = match &err {
        E::Prompt { source, .. }
            if source
                .downcast_ref::<TtyError>()
                .is_some_and(|e| matches!(e, TtyError::Cancelled)) =>
        {
            return CliError::new(Exit::Interrupted, "cancelled; nothing was launched");
        }
        E::UnknownAgent { .. }
        | E::InvalidSkillName { .. }
        | E::SkillNotFound { .. }
        | E::GitIdentityFileMissing { .. }
        | E::TrustFileMissing { .. }
        | E::HostEnvMissing { .. }
        | E::TokenRefMissing { .. } => Exit::Manifest,
        E::Unimplemented { .. } => {
            return CliError::new(Exit::Usage, err.to_string()).with_hint(
                "pass --allow-unimplemented to launch without them, or remove them from the \
                 bottle",
            );
        }
        E::Prompt { .. }
        | E::CwdHoldsSecrets { .. }
        | E::InvalidIdentity { .. }
        | E::InvalidAgentName { .. }
        | E::StateNotFound { .. }
        | E::SaveLimit { .. }
        | E::UnknownBackend { .. } => Exit::Usage,
        E::Backend { .. } | E::Step { .. } => match stage {
            Stage::Engine => Exit::Engine,
            Stage::Bottle => Exit::Bottle,
        },
        _ => Exit::Failure,
    };
    // An engine that cannot be used: the Docker backend's sentence, and its fix as the hint.
    if let E::Backend { source, .. } = &err
        && let Some((sentence, fix)) = source
            .downcast_ref::<bottle_docker::DockerError>()
            .and_then(bottle_docker::DockerError::engine_fix)
    {
        return CliError::new(exit, sentence).with_hint(fix);
    }
    let text = err.to_string();
    let mut out = CliError::new(exit, text.trim_end_matches('.'));
    // The Docker backend's own message already says how to start the engine.
    if exit == Exit::Engine && !text.contains("DOCKER_HOST") {
        out = out.with_hint(
            "is the Docker engine running and reachable? `docker info` tells; DOCKER_HOST selects another",
        );
    }
    out
}

/// Without a terminal nothing can be confirmed: refuse, having created nothing.
pub(crate) fn no_terminal(question: &str, what: &str) -> CliError {
    CliError::new(
        Exit::Usage,
        format!("no terminal to ask `{question} [y/N]`, so nothing was {what}"),
    )
    .with_hint("run it from a terminal, or pass --yes to go ahead without asking")
}

/// A path for humans (`./…`, `~/…`).
pub(crate) fn show_path(ctx: &Context) -> impl Fn(&Path) -> String + '_ {
    move |path| ctx.show_path(path)
}

/// Shows the manifest's warnings (shadowed agents, ignored repository bottles).
pub(crate) fn show_warnings(ctx: &Context, ui: &Ui, warnings: &[bottle_manifest::Warning]) {
    ui.say(&crate::render::warnings(ctx, warnings));
}

impl From<ui::tty::TtyError> for CliError {
    fn from(err: ui::tty::TtyError) -> Self {
        match err {
            TtyError::Cancelled => CliError::new(Exit::Interrupted, "cancelled at the terminal"),
            TtyError::Io(err) => {
                CliError::new(Exit::Failure, format!("could not use the terminal: {err}"))
            }
        }
    }
}
