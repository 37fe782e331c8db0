//! Progress of a launch, a teardown or a cleanup, rendered from core's [`Event`]s: a spinner (or
//! a bar when a step reports counts, as image builds do) on a terminal, one plain line per
//! event otherwise, nothing with `--quiet`. Nothing is drawn while a session is attached: the
//! terminal belongs to Claude Code (or the `--exec` command) then.

use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bottle_core::{Event, EventSink, Step};
use bottle_manifest::escape;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ui::{Paint, Ui};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Plain,
    Live,
}

#[derive(Debug, Default)]
struct State {
    bar: Option<ProgressBar>,
    step: Option<(Step, Instant)>,
    attached: bool,
}

/// An [`EventSink`] that shows progress on stderr.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: Mode,
    paint: Paint,
    state: Mutex<State>,
}

impl Progress {
    pub(crate) fn new(ui: &Ui) -> Progress {
        let mode = if ui.quiet {
            Mode::Quiet
        } else if ui.stderr_terminal {
            Mode::Live
        } else {
            Mode::Plain
        };
        Progress {
            mode,
            paint: ui.paint,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clears any spinner (before printing a final report).
    pub(crate) fn finish(&self) {
        if let Some(bar) = self.state().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn line(&self, state: &State, text: &str) {
        match (&state.bar, self.mode) {
            (_, Mode::Quiet) => {}
            (Some(bar), Mode::Live) => bar.println(text),
            _ => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    fn spinner(&self, message: String) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    fn started(&self, state: &mut State, step: Step) {
        state.step = Some((step, Instant::now()));
        if step == Step::Session {
            // The session owns the terminal from here on.
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
            state.attached = true;
            return;
        }
        state.attached = false;
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => self.line(state, &format!("{} {}…", self.paint.dim("·"), doing(step))),
            Mode::Live => {
                if let Some(bar) = state.bar.take() {
                    bar.finish_and_clear();
                }
                state.bar = Some(self.spinner(format!("{}…", doing(step))));
            }
        }
    }

    fn ended(&self, state: &mut State, step: Step, failure: Option<&str>) {
        if step == Step::Session {
            state.attached = false;
            return;
        }
        let elapsed = match state.step {
            Some((current, since)) if current == step && self.mode == Mode::Live => {
                format!(
                    " {}",
                    self.paint
                        .dim(&format!("({:.1}s)", since.elapsed().as_secs_f64()))
                )
            }
            _ => String::new(),
        };
        if let Some(bar) = state.bar.take() {
            bar.finish_and_clear();
        }
        let text = match failure {
            None => format!("{} {}{elapsed}", self.paint.good("✓"), done(step)),
            Some(message) => format!(
                "{} {} failed: {}",
                self.paint.bad("✗"),
                doing(step),
                escape(message)
            ),
        };
        self.line(state, &text);
    }
}

impl EventSink for Progress {
    fn emit(&self, event: Event) {
        tracing::debug!(?event, "bottle event");
        if self.mode == Mode::Quiet {
            return;
        }
        let mut state = self.state();
        match event {
            Event::StepStarted { step } => self.started(&mut state, step),
            Event::StepFinished { step } => self.ended(&mut state, step, None),
            Event::StepFailed { step, message } => self.ended(&mut state, step, Some(&message)),
            Event::Progress {
                message,
                current,
                total,
                ..
            } => {
                if state.attached {
                    return;
                }
                match (&state.bar, self.mode) {
                    (Some(bar), Mode::Live) => {
                        if let (Some(current), Some(total)) = (current, total) {
                            bar.set_length(total);
                            bar.set_position(current);
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "{spinner} {msg} [{bar:24}] {pos}/{len} {elapsed}",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                            );
                        }
                        bar.set_message(escape(&message).into_owned());
                    }
                    _ => {
                        let count = match (current, total) {
                            (Some(c), Some(t)) => format!(" ({c}/{t})"),
                            _ => String::new(),
                        };
                        self.line(&state, &format!("  {}{count}", escape(&message)));
                    }
                }
            }
            Event::SignalReceived { signal } => {
                if let Some(bar) = state.bar.take() {
                    bar.finish_and_clear();
                }
                state.attached = false;
                self.line(
                    &state,
                    &format!(
                        "{} received {signal}: tearing the bottle down",
                        self.paint.warn("!")
                    ),
                );
            }
            Event::Removed { kind, name } if !state.attached => {
                self.line(&state, &format!("  removed {kind} {}", escape(&name)));
            }
            Event::Refused {
                host,
                count,
                reasons,
            } => {
                if let Some(bar) = state.bar.take() {
                    bar.finish_and_clear();
                }
                self.line(&state, &refusal_line(&self.paint, &host, count, &reasons));
            }
            Event::Warning { message } => {
                self.line(
                    &state,
                    &format!("{} {}", self.paint.warn("warning:"), escape(&message)),
                );
            }
            // State paths are for `-v`; the resume command is printed at the end.
            Event::StateWritten { .. } => {}
            _ => {}
        }
    }
}

/// `refused: 3 × example.org (host_not_allowed) — add an egress route for it to the bottle`:
/// the hint says what would allow it, when a route could.
fn refusal_line(paint: &Paint, host: &str, count: u64, reasons: &[String]) -> String {
    let is = |codes: &[&str]| reasons.iter().any(|r| codes.contains(&r.as_str()));
    let hint = if is(&["host_not_allowed", "ip_literal", "port_not_allowed"]) {
        " — add an egress route for it to the bottle"
    } else if is(&["path_not_allowed", "method_not_allowed"]) {
        " — widen its route's path_allowlist or methods"
    } else {
        ""
    };
    format!(
        "{} {count} × {} ({}){hint}",
        paint.warn("refused:"),
        escape(host),
        escape(&reasons.join(", "))
    )
}

fn doing(step: Step) -> &'static str {
    match step {
        Step::Launch => "launching the bottle",
        Step::ProvisionCa => "installing the bottle's CA",
        Step::ConfigureClaudeCode => "configuring Claude Code",
        Step::ProvisionPrompt => "copying the system prompt",
        Step::ProvisionSkills => "copying skills",
        Step::CopyWorkdir => "copying the working tree",
        Step::ProvisionGit => "pointing git at the git gate",
        Step::ProvisionSupervise => "registering supervise",
        Step::Provision => "provisioning",
        Step::Restore => "restoring the saved workspace and conversation",
        Step::Session => "session",
        Step::Save => "saving the workspace and conversation",
        Step::Teardown => "tearing down",
    }
}

fn done(step: Step) -> &'static str {
    match step {
        Step::Launch => "launched",
        Step::ProvisionCa => "CA installed",
        Step::ConfigureClaudeCode => "Claude Code configured",
        Step::ProvisionPrompt => "system prompt copied",
        Step::ProvisionSkills => "skills copied",
        Step::CopyWorkdir => "working tree copied",
        Step::ProvisionGit => "git points at the git gate",
        Step::ProvisionSupervise => "supervise registered",
        Step::Provision => "provisioned",
        Step::Restore => "saved workspace and conversation restored",
        Step::Session => "session ended",
        Step::Save => "workspace and conversation saved",
        Step::Teardown => "torn down",
    }
}
