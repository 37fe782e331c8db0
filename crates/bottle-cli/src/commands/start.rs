//! `claude-bottle start [AGENT] [-- CLAUDE_ARGS…]`: manifest → prepare → preflight → the y/N
//! question → secrets → launch, attach, guaranteed teardown → the resume command if state was
//! kept. `resume` shares everything from the preflight on ([`launch`]).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use bottle_core::{
    AnyPlan, BoxError, DynBackend, Ended, HostContext, PlanSummary, RunOptions, SecretPrompt,
    Secrets, Session, ShutdownSignal, StateStore, resume,
};
use bottle_core::{BottleSpec, ManifestSource};
use bottle_manifest::{ANTHROPIC_API_HOST, DEFAULT_NAME, Entry, Origin, escape};

use crate::backends;
use crate::cli::StartArgs;
use crate::commands::bottle::{Stage, core_error, host, no_terminal, show_path, show_warnings};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::ui::preflight::ClaudeLogin;
use crate::ui::progress::Progress;
use crate::ui::tty::Tty;
use crate::ui::{Paint, Ui, preflight};

/// The question every launch asks.
pub(crate) const QUESTION: &str = "launch this agent?";

pub(crate) async fn run(ctx: &Context, ui: &Ui, args: StartArgs) -> Result<u8, CliError> {
    // Without --yes the launch must be confirmed: with no terminal to ask on, refuse before
    // the backend is even contacted, so that nothing at all is created.
    let confirm_on = (!args.yes && !args.dry_run)
        .then(asking_terminal)
        .transpose()?;
    let index = ctx.load();
    show_warnings(ctx, ui, index.warnings());
    let agent = match args.agent {
        Some(agent) => agent,
        None => choose_agent(&index.agents())?,
    };
    let manifest: Arc<dyn ManifestSource> = Arc::new(index);

    let host = host(ctx);
    let registry = backends::registry(ctx);
    let backend = registry
        .select(args.backend.backend.as_deref(), &host)
        .map_err(|err| core_error(err, Stage::Engine))?;
    let mut spec = BottleSpec::new(manifest, agent, ctx.layout.cwd());
    spec.copy_cwd = args.cwd;
    spec.remote_control = args.remote_control;
    spec.allow_unimplemented = args.unimplemented.allow_unimplemented;
    let plan = backend
        .prepare(spec, &host)
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    let session = session(args.exec, args.claude_args);
    let login = claude_login(ctx, &plan.summary(), &session, args.login_in_bottle)?;

    if args.dry_run {
        let summary = plan.summary();
        let mut stdout = std::io::stdout().lock();
        let text = if args.json {
            serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)? + "\n"
        } else {
            preflight::render(
                &summary,
                &login,
                Paint::for_stream(&std::io::stdout()),
                &show_path(ctx),
            )
        };
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        ui.say("dry run: nothing was created\n");
        return Ok(Exit::Ok.code());
    }

    launch(
        ctx,
        ui,
        backend.as_ref(),
        plan.as_ref(),
        &host,
        Run { session, login },
        confirm_on,
    )
    .await
}

/// What a bottle runs, decided before the preflight shows it.
pub(crate) struct Run {
    /// Claude Code, or an `--exec` command.
    pub(crate) session: Session,
    /// How Claude Code in it gets a Claude credential.
    pub(crate) login: ClaudeLogin,
}

/// The terminal to ask `launch this agent? [y/N]` on, or the refusal.
pub(crate) fn asking_terminal() -> Result<Tty, CliError> {
    Tty::open().ok_or_else(|| no_terminal(QUESTION, "launched"))
}

/// The session to attach: `--exec` runs a shell command, otherwise Claude Code. Both get a
/// terminal only when we have one on both sides.
pub(crate) fn session(exec: Option<String>, claude_args: Vec<String>) -> Session {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    match exec {
        Some(script) => Session::Script { script, tty },
        None => Session::Claude {
            args: claude_args,
            tty,
        },
    }
}

/// No AGENT: the only agent in the user's home, else `default` (theirs, or the built-in one
/// when they defined none), else a picker on the terminal over the home and built-in agents.
/// A repository agent is never chosen for the user: its prompt was written by the repository,
/// so it starts only when named.
fn choose_agent(agents: &[Entry]) -> Result<String, CliError> {
    let mine: Vec<&Entry> = agents.iter().filter(|a| a.origin != Origin::Repo).collect();
    let defined: Vec<&&Entry> = mine.iter().filter(|a| a.origin == Origin::Home).collect();
    match defined.as_slice() {
        [] => return Ok(DEFAULT_NAME.to_owned()),
        [only] => return Ok(only.name.clone()),
        _ if defined.iter().any(|a| a.name == DEFAULT_NAME) => return Ok(DEFAULT_NAME.to_owned()),
        _ => {}
    }
    let names: Vec<String> = mine.iter().map(|a| a.name.clone()).collect();
    let Some(mut tty) = Tty::open() else {
        return Err(CliError::new(
            Exit::Usage,
            "several agents are defined, none of them `default`, and there is no terminal to pick one",
        )
        .with_hint(format!("name one: claude-bottle start AGENT ({})", names.join(", "))));
    };
    match tty.pick("which agent?", &names)? {
        Some(i) => Ok(names[i].clone()),
        None => Err(CliError::new(
            Exit::Declined,
            "no agent picked; nothing was launched",
        )),
    }
}

/// How Claude Code in the bottle gets a Claude credential — or the refusal, before anything is
/// created. The credential is the host's, injected by the egress; without one, Claude Code
/// would ask to log in inside the bottle and the agent would hold the user's login itself,
/// which happens only when asked for with `--login-in-bottle`. An `--exec` session runs no
/// Claude Code and needs none.
pub(crate) fn claude_login(
    ctx: &Context,
    summary: &PlanSummary,
    session: &Session,
    login_in_bottle: bool,
) -> Result<ClaudeLogin, CliError> {
    if let Some(var) = &summary.claude_credential {
        if login_in_bottle {
            // Claude Code would use the injected credential and never log in.
            return Err(CliError::new(
                Exit::Usage,
                format!(
                    "--login-in-bottle is for a host without a Claude credential, and the \
                     egress injects {var} for this bottle"
                ),
            )
            .with_hint(format!(
                "leave out --login-in-bottle, or unset {var} to log in inside the bottle"
            )));
        }
        return Ok(ClaudeLogin::Injected { var: var.clone() });
    }
    if matches!(session, Session::Script { .. }) {
        return Ok(ClaudeLogin::NotRun);
    }
    if login_in_bottle {
        return Ok(ClaudeLogin::InBottle);
    }
    let opt_in = "--login-in-bottle logs in inside the bottle instead, and the agent then holds \
                  that login";
    Err(match ctx.claude_auth {
        None => CliError::new(
            Exit::Manifest,
            "Claude Code needs a Claude credential on the host, and neither \
             CLAUDE_CODE_OAUTH_TOKEN nor ANTHROPIC_API_KEY is set",
        )
        .with_hint(format!(
            "run `claude setup-token` and export the token it prints as \
             CLAUDE_CODE_OAUTH_TOKEN (or export ANTHROPIC_API_KEY): the egress injects it and the \
             agent never holds it; {opt_in}"
        )),
        Some(auth) => CliError::new(
            Exit::Manifest,
            format!(
                "bottle `{}` replaces the {ANTHROPIC_API_HOST} route with one that injects no \
                 credential, so Claude Code would have none",
                summary.bottle
            ),
        )
        .with_hint(format!(
            "give that route `auth` with `token_ref: {}`, or remove it to use the built-in \
             route; {opt_in}",
            auth.host_var()
        )),
    })
}

/// Preflight, the question (on `confirm_on`; `None` with --yes), secrets, run, report.
/// Returns the exit code.
pub(crate) async fn launch(
    ctx: &Context,
    ui: &Ui,
    backend: &dyn DynBackend,
    plan: &dyn AnyPlan,
    host: &HostContext,
    Run { session, login }: Run,
    confirm_on: Option<Tty>,
) -> Result<u8, CliError> {
    // A save limit that is not a size is refused before anything is asked or created.
    let save_limit = resume::save_limit(host).map_err(|err| core_error(err, Stage::Engine))?;
    ui.say(&preflight::render(
        &plan.summary(),
        &login,
        ui.paint,
        &show_path(ctx),
    ));
    // Before the question: nobody confirms a bottle that would then be refused.
    plan.prepared()
        .check_implemented()
        .map_err(|err| core_error(err, Stage::Engine))?;

    let mut tty = None;
    if let Some(mut terminal) = confirm_on {
        if !terminal.confirm(QUESTION)? {
            ui.say("not launched\n");
            return Ok(Exit::Declined.code());
        }
        tty = Some(terminal);
    }

    // After the question, so that nobody types a secret for a bottle they then decline.
    let secrets = Secrets::resolve(plan.prepared(), host, |prompt: SecretPrompt<'_>| {
        if tty.is_none() {
            tty = Tty::open();
        }
        let terminal = tty.as_mut().ok_or_else(|| -> BoxError {
            "there is no terminal to ask for it; run claude-bottle from a terminal, or take the \
             value from the host with `\"${VAR}\"`"
                .into()
        })?;
        let text = match prompt.message {
            Some(message) => format!("{message} ({}, hidden): ", prompt.name),
            None => format!("value for {} (hidden): ", prompt.name),
        };
        terminal
            .read_secret(&text)
            .map_err(|e| Box::new(e) as BoxError)
    })
    .map_err(|err| core_error(err, Stage::Engine))?;
    drop(tty);

    // Installed before anything exists: from here on Ctrl-C, SIGTERM and SIGHUP tear down.
    let shutdown = ShutdownSignal::os().map_err(|err| core_error(err, Stage::Bottle))?;
    let state = StateStore::new(&host.bottle_home).with_save_limit(save_limit);
    let progress = Progress::new(ui);
    let outcome = backend
        .run(
            plan,
            &secrets,
            session,
            RunOptions {
                state: &state,
                events: &progress,
                shutdown,
            },
        )
        .await;
    drop(secrets);
    progress.finish();
    let outcome = outcome.map_err(|err| core_error(err, Stage::Bottle))?;

    let paint = ui.paint;
    let code = match &outcome.ended {
        Ended::Exited { code } => {
            if *code != 0 {
                ui.say(&format!("the session exited with code {code}\n"));
            }
            u8::try_from(*code).unwrap_or(Exit::Failure.code())
        }
        Ended::Signalled { signal } => {
            ui.say(&format!(
                "interrupted by {signal}; the bottle was torn down\n"
            ));
            u8::try_from(signal.exit_code()).unwrap_or(Exit::Interrupted.code())
        }
        Ended::Failed { step, error } => {
            // Errors show even with --quiet.
            let err = CliError::new(
                Exit::Bottle,
                format!("the bottle failed at `{step}`: {error}"),
            )
            .with_hint("what it had created was removed; run again with -v to see each step");
            let _ = std::io::stderr().lock().write_all(err.render().as_bytes());
            Exit::Bottle.code()
        }
    };
    for error in &outcome.teardown_errors {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} teardown incomplete: {}\nhint: `claude-bottle cleanup` removes what is left",
            paint.warn("warning:"),
            escape(&error.to_string())
        );
    }
    if let Some(report) = &outcome.saved {
        for problem in &report.problems {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} {}",
                paint.warn("warning:"),
                escape(&problem.to_string())
            );
        }
        if !report.saved.is_empty() {
            let what: Vec<String> = report.saved.iter().map(ToString::to_string).collect();
            ui.say(&format!(
                "saved {} ({})\n",
                what.join(" and "),
                resume::human_bytes(report.bytes)
            ));
        }
    }
    if let Some(identity) = outcome.resume_identity() {
        ui.say(&format!(
            "state kept; continue this bottle with: {}\n",
            paint.bold(&format!("claude-bottle resume {identity}"))
        ));
    }
    Ok(code)
}
