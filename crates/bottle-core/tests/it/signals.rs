//! Teardown on a signal: injected deterministically at every step through the shutdown future,
//! and for real (SIGINT, SIGTERM, SIGHUP delivered to a child test process).

use bottle_core::testing::{Call, FakeBackend};
use bottle_core::{
    Ended, Event, EventLog, RunOptions, Session, ShutdownSignal, Signal, StateDisposition, Step,
    run_bottle,
};

use crate::support::{self, Host};

/// A signal arrives while the fake hangs in `step`: teardown runs, the state is kept.
async fn signal_tears_down(step: Step, signal: Signal) {
    let host = Host::new();
    let fake = FakeBackend::new().hang_at(step);
    let plan = support::prepare_copying(&fake, &host).await;
    let secrets = support::secrets(&plan, &host);
    let events = EventLog::new();
    // The signal fires exactly when the fake has entered the step.
    let watcher = fake.clone();
    let shutdown = ShutdownSignal::from_future(async move {
        watcher.reached().await;
        signal
    });
    let outcome = run_bottle(
        &fake,
        &plan,
        &secrets,
        Session::Claude {
            args: vec![],
            tty: true,
        },
        RunOptions {
            state: &host.state(),
            events: &events,
            shutdown,
        },
    )
    .await
    .unwrap();

    assert!(
        matches!(outcome.ended, Ended::Signalled { signal: s } if s == signal),
        "{:?}",
        outcome.ended
    );
    assert_eq!(outcome.exit_code(), signal.exit_code());
    assert!(fake.resources().is_empty(), "left {:?}", fake.resources());
    assert!(
        matches!(fake.calls().last(), Some(Call::Teardown { .. })),
        "teardown is the last call"
    );
    assert!(events.events().contains(&Event::SignalReceived { signal }));
    assert!(matches!(outcome.state, StateDisposition::Kept { .. }));
    assert!(host.state().exists(&outcome.identity));
}

/// One test per step the fake can hang in, with each of the three signals spread over them.
macro_rules! signal_in {
    ($($name:ident => $step:expr, $signal:expr);* $(;)?) => {
        mod signal_in {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    signal_tears_down($step, $signal).await;
                }
            )*
        }
    };
}

signal_in! {
    launch => Step::Launch, Signal::Interrupt;
    provision_ca => Step::ProvisionCa, Signal::Terminate;
    provision_prompt => Step::ProvisionPrompt, Signal::Hangup;
    provision_skills => Step::ProvisionSkills, Signal::Interrupt;
    copy_workdir => Step::CopyWorkdir, Signal::Terminate;
    provision_supervise => Step::ProvisionSupervise, Signal::Hangup;
    session_sigint => Step::Session, Signal::Interrupt;
    session_sigterm => Step::Session, Signal::Terminate;
    session_sighup => Step::Session, Signal::Hangup;
}

#[test]
fn signal_exit_codes_follow_the_shell_convention() {
    assert_eq!(Signal::Interrupt.exit_code(), 130);
    assert_eq!(Signal::Terminate.exit_code(), 143);
    assert_eq!(Signal::Hangup.exit_code(), 129);
}

/// The child half of the real-signal tests: runs a bottle whose session hangs, with the OS
/// signal handlers, and once the session runs sends itself the signal named by
/// `BOTTLE_CORE_TEST_SIGNAL` (default TERM) with `kill`. It asserts teardown itself and prints an
/// `OUTCOME ...` line for the parent. Ignored in the shared test process because the signal is
/// process-wide; `real_signals_tear_down` runs it alone in a child process.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "sends a real signal to its own process; run in a child by real_signals_tear_down"]
async fn real_signal_child() {
    use std::io::Write;

    let signal = std::env::var("BOTTLE_CORE_TEST_SIGNAL").unwrap_or_else(|_| "TERM".to_owned());
    // Also send the signal a second time while teardown is under way.
    let twice = std::env::var_os("BOTTLE_CORE_TEST_SIGNAL_TWICE").is_some();
    let host = Host::new();
    let fake = FakeBackend::new()
        .hang_at(Step::Session)
        .pause_at(Step::Teardown);
    let plan = support::prepare(&fake, &host).await;
    let secrets = support::secrets(&plan, &host);
    let shutdown = ShutdownSignal::os().expect("install signal handlers");
    let watcher = fake.clone();
    let sender = tokio::spawn(async move {
        let kill = || async {
            tokio::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(std::process::id().to_string())
                .status()
                .await
                .expect("run kill")
        };
        watcher.reached().await;
        let mut ok = kill().await.success();
        watcher.paused().await;
        if twice {
            ok &= kill().await.success();
            // Were the signal's default action back, the process would be gone by now.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        watcher.resume();
        ok
    });
    let state = host.state();
    let run = run_bottle(
        &fake,
        &plan,
        &secrets,
        Session::Claude {
            args: vec![],
            tty: true,
        },
        RunOptions {
            state: &state,
            events: &bottle_core::NoEvents,
            shutdown,
        },
    );
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the signal arrives within a minute")
        .unwrap();
    assert!(sender.await.unwrap(), "kill succeeded");
    assert!(matches!(outcome.ended, Ended::Signalled { .. }));
    assert!(matches!(fake.calls().last(), Some(Call::Teardown { .. })));
    assert!(fake.resources().is_empty());
    assert!(state.exists(&outcome.identity), "state kept for resume");
    let mut out = std::io::stdout();
    writeln!(
        out,
        "OUTCOME exit={} resources={} kept={}",
        outcome.exit_code(),
        fake.resources().len(),
        state.exists(&outcome.identity),
    )
    .unwrap();
}

#[cfg(unix)]
#[test]
fn real_signals_tear_down() {
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        assert_child_outcome(signal, false, code);
    }
}

/// The documented promise: once the handlers are installed, a second Ctrl-C (or SIGTERM)
/// while teardown runs is absorbed, and teardown finishes.
#[cfg(unix)]
#[test]
fn a_second_signal_during_teardown_is_absorbed() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        assert_child_outcome(signal, true, code);
    }
}

/// Runs `real_signal_child` in a child process with `signal` (sent once, or again during
/// teardown) and checks the outcome line it prints.
#[cfg(unix)]
fn assert_child_outcome(signal: &str, twice: bool, code: i32) {
    use std::process::Command;

    let mut child = Command::new(std::env::current_exe().unwrap());
    if twice {
        child.env("BOTTLE_CORE_TEST_SIGNAL_TWICE", "1");
    }
    let output = child
        .args([
            "signals::real_signal_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BOTTLE_CORE_TEST_SIGNAL", signal)
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SIG{signal}: child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // libtest may print `test <name> ... ` on the same line first.
    let outcome = stdout
        .lines()
        .find_map(|line| line.find("OUTCOME").map(|at| line[at..].trim_end()))
        .unwrap_or_else(|| panic!("SIG{signal}: the child reported no outcome: {stdout}"));
    assert_eq!(
        outcome,
        format!("OUTCOME exit={code} resources=0 kept=true"),
        "SIG{signal}"
    );
}
