//! The lifecycle driver: [`run_bottle`] launches, provisions, runs the session and then — on a
//! clean exit, a failure in any step, or Ctrl-C / SIGTERM / SIGHUP — tears down whatever launch
//! created, and keeps or removes the resume state.
//!
//! Signals come in through [`ShutdownSignal`], a future: [`ShutdownSignal::os`] listens to the
//! real signals, tests inject their own. Installing the OS handlers replaces the default "die at
//! once" action, which is what makes teardown possible; a second signal during teardown is
//! therefore absorbed, not fatal. Only SIGKILL (or dropping the `run_bottle` future) skips
//! teardown, and the labels let `cleanup` find what is left.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::Serialize;
use time::OffsetDateTime;

use crate::agent;
use crate::backend::{Bottle, BottleBackend, LaunchContext};
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Step};
use crate::identity::Identity;
use crate::labels;
use crate::plan::BottlePlan;
use crate::resume::{self, SaveProblem, SaveReport, SavedSession};
use crate::secret::Secrets;
use crate::state::{BottleState, StateStore};

/// A signal that ends a session and triggers teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// SIGTERM.
    #[serde(rename = "SIGTERM")]
    Terminate,
    /// SIGHUP (the terminal went away).
    #[serde(rename = "SIGHUP")]
    Hangup,
}

impl Signal {
    /// The POSIX signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
            Signal::Hangup => 1,
        }
    }

    /// The conventional exit code of a process ended by this signal (128 + number).
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The future that ends a session early.
pub struct ShutdownSignal {
    future: Pin<Box<dyn Future<Output = Signal> + Send>>,
}

impl ShutdownSignal {
    /// Listens for Ctrl-C, SIGTERM and SIGHUP (Ctrl-C only off Unix). The handlers are
    /// installed *now*, so call this before launching: a signal that arrives between here and
    /// the first await is kept, not lost. Must be called inside a tokio runtime.
    pub fn os() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| signal(kind).map_err(|source| Error::Signals { source });
            let mut interrupt = install(SignalKind::interrupt())?;
            let mut terminate = install(SignalKind::terminate())?;
            let mut hangup = install(SignalKind::hangup())?;
            Ok(Self::from_future(async move {
                tokio::select! {
                    _ = interrupt.recv() => Signal::Interrupt,
                    _ = terminate.recv() => Signal::Terminate,
                    _ = hangup.recv() => Signal::Hangup,
                }
            }))
        }
        #[cfg(not(unix))]
        {
            Ok(Self::from_future(async {
                match tokio::signal::ctrl_c().await {
                    Ok(()) => Signal::Interrupt,
                    // Without a handler there is no signal to wait for.
                    Err(_) => std::future::pending().await,
                }
            }))
        }
    }

    /// A shutdown triggered by `future` (tests, or an embedder's own cancellation).
    pub fn from_future(future: impl Future<Output = Signal> + Send + 'static) -> Self {
        ShutdownSignal {
            future: Box::pin(future),
        }
    }

    /// A shutdown that never comes.
    pub fn never() -> Self {
        Self::from_future(std::future::pending())
    }
}

impl fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownSignal")
    }
}

/// What runs in the bottle once it is provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// Claude Code with these extra arguments (the prompt and remote-control flags are added).
    Claude {
        /// Arguments after `claude`, from the user.
        args: Vec<String>,
        /// Attach a terminal.
        tty: bool,
    },
    /// A shell command (`--exec 'CMD'`), run with `sh -c`.
    Script {
        /// The command.
        script: String,
        /// Attach a terminal.
        tty: bool,
    },
}

/// The environment of one [`run_bottle`] call.
#[derive(Debug)]
pub struct RunOptions<'a> {
    /// Where resume state lives.
    pub state: &'a StateStore,
    /// Where progress goes.
    pub events: &'a dyn EventSink,
    /// What ends the session early.
    pub shutdown: ShutdownSignal,
}

/// How a session ended.
#[derive(Debug)]
pub enum Ended {
    /// The session's command exited.
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// A signal arrived first.
    Signalled {
        /// The signal.
        signal: Signal,
    },
    /// A step failed.
    Failed {
        /// The step.
        step: Step,
        /// Why.
        error: Error,
    },
}

/// What happened to the resume state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDisposition {
    /// Clean exit: the state was removed.
    Removed,
    /// The state was kept for `resume <identity>` at `dir`.
    Kept {
        /// The state folder.
        dir: PathBuf,
    },
}

/// The result of [`run_bottle`] once everything is torn down.
#[derive(Debug)]
pub struct Outcome {
    /// The bottle.
    pub identity: Identity,
    /// How the session ended.
    pub ended: Ended,
    /// Errors from teardown (resources that may be left: `cleanup` finds them).
    pub teardown_errors: Vec<Error>,
    /// What happened to the resume state.
    pub state: StateDisposition,
    /// What was saved before teardown ([`crate::resume::save`]): `Some` when the state was
    /// kept after the session had started, with what could not be kept.
    pub saved: Option<SaveReport>,
}

impl Outcome {
    /// The exit code the CLI should end with: the session's own, 128 + signal, or 1 for a
    /// failed step.
    pub fn exit_code(&self) -> i32 {
        match &self.ended {
            Ended::Exited { code } => *code,
            Ended::Signalled { signal } => signal.exit_code(),
            Ended::Failed { .. } => 1,
        }
    }

    /// The identity to show in `claude-bottle resume <identity>`, when state was kept.
    pub fn resume_identity(&self) -> Option<&Identity> {
        match self.state {
            StateDisposition::Kept { .. } => Some(&self.identity),
            StateDisposition::Removed => None,
        }
    }
}

/// Runs one bottle from a prepared plan to teardown.
///
/// 0. Refuses a bottle whose backend lacks one of its grants, unless allowed
///    ([`PreparedSpec::check_implemented`](crate::PreparedSpec::check_implemented)).
/// 1. Writes resume state (an error here returns `Err` and nothing was created).
/// 2. Launches, provisions, restores what an earlier run of this bottle saved (when resuming,
///    [`crate::resume::restore`]) and runs `session`, racing `opts.shutdown`.
/// 3. When the state will be kept (non-zero exit, signal, failure) and the session had
///    started: saves the workspace and Claude Code's conversations into the state folder
///    ([`crate::resume::save`]). A save never stops teardown; its problems are in the
///    [`Outcome`]. Before the session started the agent changed nothing, so an earlier save
///    is left as it is.
/// 4. Always: closes the bottle handle (if launch returned one) and calls
///    [`BottleBackend::teardown`], which removes whatever launch created even if it failed
///    half way.
/// 5. Removes the state (with what was saved) after an exit code of 0; keeps it otherwise
///    (non-zero exit, failed step, signal) so the bottle can be resumed.
///
/// Every failure after step 1 is reported in the [`Outcome`], never as `Err`, so the caller
/// always learns the identity and whether state was kept.
pub async fn run_bottle<B: BottleBackend>(
    backend: &B,
    plan: &B::Plan,
    secrets: &Secrets,
    session: Session,
    opts: RunOptions<'_>,
) -> Result<Outcome> {
    let RunOptions {
        state,
        events,
        mut shutdown,
    } = opts;
    let prepared = plan.prepared();
    prepared.check_implemented()?;
    let identity = prepared.identity.clone();
    let started = OffsetDateTime::now_utc();

    // Written before anything exists: after a SIGKILL the state still names the bottle.
    let dir = state.write(&BottleState {
        identity: identity.clone(),
        agent: prepared.agent.name.clone(),
        cwd: prepared.user_cwd.clone(),
        copy_cwd: prepared.copy_cwd,
        backend: backend.name().to_owned(),
        started,
        image: plan.image(),
        remote_control: prepared.remote_control,
    })?;
    events.emit(Event::StateWritten {
        identity: identity.clone(),
        dir: dir.clone(),
    });
    let saved = if prepared.resuming {
        state.saved(&identity)?
    } else {
        None
    };

    let ctx = LaunchContext {
        secrets,
        events,
        started,
        labels: labels::for_bottle(&identity, backend.name(), started),
    };
    let mut bottle: Option<B::Bottle> = None;
    let mut session_started = false;
    let ended = {
        let restore = saved.as_ref().map(|saved| Restore {
            store: state,
            identity: &identity,
            saved,
        });
        let work = drive(
            backend,
            plan,
            &ctx,
            &session,
            restore,
            &mut bottle,
            &mut session_started,
        );
        tokio::select! {
            // A signal wins over a step that finishes in the same poll: the user asked to stop.
            biased;
            signal = &mut shutdown.future => {
                events.emit(Event::SignalReceived { signal });
                Ended::Signalled { signal }
            }
            ended = work => ended,
        }
    };

    // Save what the agent would lose, while the bottle still exists: only when the state is
    // kept, and only once the agent has run.
    let keep = !matches!(ended, Ended::Exited { code: 0 });
    let mut save_report = None;
    if keep
        && session_started
        && let Some(bottle) = &bottle
    {
        events.emit(Event::StepStarted { step: Step::Save });
        let report = resume::save(bottle, state, &identity).await;
        match report
            .problems
            .iter()
            .find(|p| matches!(p, SaveProblem::Failed { .. }))
        {
            None => events.emit(Event::StepFinished { step: Step::Save }),
            Some(problem) => events.emit(Event::StepFailed {
                step: Step::Save,
                message: problem.to_string(),
            }),
        }
        save_report = Some(report);
    }

    // Teardown: reached on every path above, because `work` is only ever dropped, never
    // abandoned mid-way by an early return.
    events.emit(Event::StepStarted {
        step: Step::Teardown,
    });
    let mut teardown_errors = Vec::new();
    if let Some(bottle) = &bottle
        && let Err(error) = bottle.close().await
    {
        teardown_errors.push(error);
    }
    if let Err(error) = backend.teardown(plan, events).await {
        teardown_errors.push(error);
    }
    match teardown_errors.first() {
        None => events.emit(Event::StepFinished {
            step: Step::Teardown,
        }),
        Some(error) => events.emit(Event::StepFailed {
            step: Step::Teardown,
            message: error.to_string(),
        }),
    }

    let state_disposition = match ended {
        Ended::Exited { code: 0 } => match state.remove(&identity) {
            Ok(()) => StateDisposition::Removed,
            Err(error) => {
                teardown_errors.push(error);
                StateDisposition::Kept { dir }
            }
        },
        _ => StateDisposition::Kept { dir },
    };

    Ok(Outcome {
        identity,
        ended,
        teardown_errors,
        state: state_disposition,
        saved: save_report,
    })
}

/// What to put back before the session of a resumed bottle.
struct Restore<'a> {
    store: &'a StateStore,
    identity: &'a Identity,
    saved: &'a SavedSession,
}

/// Launch → provision → session. The bottle goes into `slot` as soon as it exists so that the
/// caller can close it whatever happens next.
async fn drive<B: BottleBackend>(
    backend: &B,
    plan: &B::Plan,
    ctx: &LaunchContext<'_>,
    session: &Session,
    restore: Option<Restore<'_>>,
    slot: &mut Option<B::Bottle>,
    session_started: &mut bool,
) -> Ended {
    let events = ctx.events;
    let failed = |step: Step, error: Error| {
        events.emit(Event::StepFailed {
            step,
            message: error.to_string(),
        });
        Ended::Failed { step, error }
    };

    events.emit(Event::StepStarted { step: Step::Launch });
    let bottle = match backend.launch(plan, ctx).await {
        Ok(bottle) => &*slot.insert(bottle),
        Err(error) => return failed(Step::Launch, error),
    };
    events.emit(Event::StepFinished { step: Step::Launch });

    let provisioned = match backend.provision(plan, bottle, ctx).await {
        Ok(provisioned) => provisioned,
        // The provided `provision` already reported the failing step.
        Err(Error::Step { step, source }) => {
            return Ended::Failed {
                step,
                error: *source,
            };
        }
        Err(error) => return failed(Step::Provision, error),
    };

    if let Some(Restore {
        store,
        identity,
        saved,
    }) = restore
    {
        events.emit(Event::StepStarted {
            step: Step::Restore,
        });
        if let Err(error) = resume::restore(bottle, store, identity, saved).await {
            return failed(Step::Restore, error);
        }
        events.emit(Event::StepFinished {
            step: Step::Restore,
        });
    }

    events.emit(Event::StepStarted {
        step: Step::Session,
    });
    *session_started = true;
    let result = match session {
        Session::Claude { args, tty } => {
            let argv = agent::claude_argv(&provisioned, plan.prepared().remote_control, args);
            bottle.exec_claude(&argv, *tty).await
        }
        Session::Script { script, tty } => bottle.exec_attached(script, *tty).await,
    };
    match result {
        Ok(code) => {
            events.emit(Event::StepFinished {
                step: Step::Session,
            });
            Ended::Exited { code }
        }
        Err(error) => failed(Step::Session, error),
    }
}
