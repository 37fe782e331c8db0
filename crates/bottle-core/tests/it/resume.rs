//! Save and restore against the recording fake: what a kept bottle saves before teardown (on
//! every kept-state path once the session ran, never on a clean exit), that a failing save still
//! tears down, the limit's message, and what `resume` puts back before the session.

use bottle_core::agent::{CLAUDE_PROJECT_DIR, HOME, WORKDIR};
use bottle_core::resume::{
    CONVERSATIONS_ARCHIVE, NEWEST_CONVERSATION_SCRIPT, SAVED_FILE, WORKSPACE_ARCHIVE,
};
use bottle_core::testing::{Call, FakeBackend, FakePlan};
use bottle_core::{
    BottleBackend, Ended, Event, EventLog, ExecUser, Outcome, RunOptions, SaveProblem, Saved,
    Session, ShutdownSignal, Signal, StateDisposition, StateStore, Step, run_bottle,
};

use crate::support::{self, Host};

const SESSION_ID: &str = "0b6c4a8e-3f1d-4c2a-9e7b-5d8f1a2b3c4d";

fn claude() -> Session {
    Session::Claude {
        args: Vec::new(),
        tty: false,
    }
}

/// A fake whose bottle holds one conversation.
fn with_conversation() -> FakeBackend {
    FakeBackend::new().exec_prints(NEWEST_CONVERSATION_SCRIPT, &format!("{SESSION_ID}.jsonl\n"))
}

async fn run_with(
    fake: &FakeBackend,
    plan: &FakePlan,
    host: &Host,
    store: &StateStore,
    shutdown: ShutdownSignal,
    events: &EventLog,
) -> Outcome {
    let secrets = support::secrets(plan, host);
    run_bottle(
        fake,
        plan,
        &secrets,
        claude(),
        RunOptions {
            state: store,
            events,
            shutdown,
        },
    )
    .await
    .expect("state can be written")
}

async fn run(fake: &FakeBackend, host: &Host) -> Outcome {
    let plan = support::prepare_copying(fake, host).await;
    run_with(
        fake,
        &plan,
        host,
        &host.state(),
        ShutdownSignal::never(),
        &EventLog::new(),
    )
    .await
}

/// The save's calls: the conversation lookup, then each folder's copy.
fn save_calls(fake: &FakeBackend) -> Vec<Call> {
    fake.calls()
        .into_iter()
        .filter(|c| {
            matches!(c, Call::CpOut { .. })
                || matches!(c, Call::Exec { script, .. } if script == NEWEST_CONVERSATION_SCRIPT)
        })
        .collect()
}

fn expected_save(limit: u64) -> Vec<Call> {
    vec![
        Call::Exec {
            user: ExecUser::Agent,
            script: NEWEST_CONVERSATION_SCRIPT.to_owned(),
        },
        Call::CpOut {
            bottle_path: CLAUDE_PROJECT_DIR.to_owned(),
            limit,
        },
        Call::CpOut {
            bottle_path: WORKDIR.to_owned(),
            limit,
        },
    ]
}

/// The calls' positions: `a` strictly before `b`.
fn position(fake: &FakeBackend, what: impl Fn(&Call) -> bool) -> usize {
    fake.calls()
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("call missing: {:?}", fake.calls()))
}

#[tokio::test]
async fn a_non_zero_exit_saves_the_workspace_and_conversation_before_teardown() {
    let host = Host::new();
    let fake = with_conversation().exit_code(2);
    let outcome = run(&fake, &host).await;

    assert_eq!(save_calls(&fake), expected_save(512 << 20));
    let session = position(&fake, |c| matches!(c, Call::ExecClaude { .. }));
    let saved = position(&fake, |c| matches!(c, Call::CpOut { .. }));
    let teardown = position(&fake, |c| matches!(c, Call::Teardown { .. }));
    assert!(session < saved && saved < teardown, "{:?}", fake.calls());
    assert!(fake.resources().is_empty());

    let report = outcome.saved.expect("a save report");
    assert_eq!(report.saved, [Saved::Conversations, Saved::Workspace]);
    assert_eq!(report.conversation.as_deref(), Some(SESSION_ID));
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let store = host.state();
    let dir = store.dir(&outcome.identity);
    for (archive, folder) in [
        (WORKSPACE_ARCHIVE, WORKDIR),
        (CONVERSATIONS_ARCHIVE, CLAUDE_PROJECT_DIR),
    ] {
        let path = dir.join(archive);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            FakeBackend::archive_text(folder)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{archive} is the user's alone");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert_eq!(report.bytes, store.saved_bytes(&outcome.identity));
    let saved = store.saved(&outcome.identity).unwrap().expect(SAVED_FILE);
    assert_eq!(saved.conversation.as_deref(), Some(SESSION_ID));
    // Nothing else is in the state folder: no leftover partial file, no secret of the bottle's.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            CONVERSATIONS_ARCHIVE,
            SAVED_FILE,
            "state.json",
            WORKSPACE_ARCHIVE
        ]
    );
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for secret in ["gh-secret", "pat-secret", "typed"] {
            assert!(!text.contains(secret), "{name} holds {secret}");
        }
    }
}

#[tokio::test]
async fn a_signal_during_the_session_saves_before_teardown() {
    let host = Host::new();
    let fake = with_conversation().hang_at(Step::Session);
    let plan = support::prepare_copying(&fake, &host).await;
    let watcher = fake.clone();
    let shutdown = ShutdownSignal::from_future(async move {
        watcher.reached().await;
        Signal::Interrupt
    });
    let outcome = run_with(
        &fake,
        &plan,
        &host,
        &host.state(),
        shutdown,
        &EventLog::new(),
    )
    .await;
    assert!(matches!(outcome.ended, Ended::Signalled { .. }));
    assert_eq!(save_calls(&fake), expected_save(512 << 20));
    assert!(matches!(fake.calls().last(), Some(Call::Teardown { .. })));
    assert_eq!(
        outcome.saved.expect("saved").saved,
        [Saved::Conversations, Saved::Workspace]
    );
}

#[tokio::test]
async fn a_failing_session_saves_before_teardown() {
    let host = Host::new();
    let fake = with_conversation().fail_at(Step::Session);
    let outcome = run(&fake, &host).await;
    assert!(matches!(
        outcome.ended,
        Ended::Failed {
            step: Step::Session,
            ..
        }
    ));
    assert_eq!(save_calls(&fake), expected_save(512 << 20));
    assert!(host.state().saved(&outcome.identity).unwrap().is_some());
}

#[tokio::test]
async fn a_clean_exit_saves_nothing_and_forgets_the_bottle() {
    let host = Host::new();
    let fake = with_conversation();
    let outcome = run(&fake, &host).await;
    assert_eq!(outcome.state, StateDisposition::Removed);
    assert!(save_calls(&fake).is_empty(), "{:?}", fake.calls());
    assert!(outcome.saved.is_none());
    assert!(!host.state().dir(&outcome.identity).exists());
}

#[tokio::test]
async fn nothing_is_saved_before_the_agent_ran() {
    for step in [Step::Launch, Step::ProvisionSkills, Step::CopyWorkdir] {
        let host = Host::new();
        let fake = with_conversation().fail_at(step);
        let outcome = run(&fake, &host).await;
        assert!(matches!(outcome.state, StateDisposition::Kept { .. }));
        assert!(save_calls(&fake).is_empty(), "{step}: {:?}", fake.calls());
        assert!(outcome.saved.is_none());
    }
}

#[tokio::test]
async fn a_failing_save_is_reported_and_teardown_still_runs() {
    let host = Host::new();
    let fake = with_conversation().exit_code(1).fail_at(Step::Save);
    let plan = support::prepare_copying(&fake, &host).await;
    let events = EventLog::new();
    let outcome = run_with(
        &fake,
        &plan,
        &host,
        &host.state(),
        ShutdownSignal::never(),
        &events,
    )
    .await;

    assert!(matches!(fake.calls().last(), Some(Call::Teardown { .. })));
    assert!(fake.resources().is_empty(), "left {:?}", fake.resources());
    assert!(outcome.teardown_errors.is_empty());
    assert!(matches!(outcome.state, StateDisposition::Kept { .. }));
    let report = outcome.saved.expect("a save report");
    assert!(report.saved.is_empty());
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(problems.join("\n"), @r"
    Claude Code's conversation could not be saved (fake: could not save state: injected failure at save state); the bottle was torn down without it
    the workspace could not be saved (fake: could not save state: injected failure at save state); the bottle was torn down without it
    ");
    assert!(events.events().iter().any(|e| matches!(
        e,
        Event::StepFailed {
            step: Step::Save,
            ..
        }
    )));
    // Neither a partial archive nor a record of a save is left.
    let dir = host.state().dir(&outcome.identity);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "only state.json"
    );
    assert!(host.state().saved(&outcome.identity).unwrap().is_none());
}

#[tokio::test]
async fn a_workspace_past_the_limit_is_named_and_the_conversation_still_saved() {
    let host = Host::new();
    let fake = with_conversation().exit_code(1).too_large(WORKDIR);
    let plan = support::prepare_copying(&fake, &host).await;
    let store = host.state().with_save_limit(3 << 20);
    let outcome = run_with(
        &fake,
        &plan,
        &host,
        &store,
        ShutdownSignal::never(),
        &EventLog::new(),
    )
    .await;

    assert_eq!(save_calls(&fake), expected_save(3 << 20));
    let report = outcome.saved.expect("a save report");
    assert_eq!(report.saved, [Saved::Conversations]);
    assert_eq!(
        report.problems,
        [SaveProblem::TooLarge {
            what: Saved::Workspace,
            limit: 3 << 20
        }]
    );
    insta::assert_snapshot!(report.problems[0].to_string(), @"the workspace was not saved: it is larger than the save limit of 3 MiB; set CLAUDE_BOTTLE_SAVE_LIMIT higher (such as 2GiB) to keep it next time");
    let dir = store.dir(&outcome.identity);
    assert!(dir.join(CONVERSATIONS_ARCHIVE).is_file());
    assert!(
        !dir.join(WORKSPACE_ARCHIVE).exists(),
        "a cut archive is not kept"
    );
    assert!(!dir.join(".workspace.tar.partial").exists());
    let saved = store.saved(&outcome.identity).unwrap().expect("saved");
    assert_eq!(saved.saved, [Saved::Conversations]);
}

/// A first run killed by a signal, then `resume` under the same identity with `fake`.
async fn resumed(host: &Host, fake: &FakeBackend) -> Outcome {
    let first = with_conversation().exit_code(130);
    let crashed = run(&first, host).await;
    let mut spec = support::spec(host);
    spec.identity = Some(crashed.identity.clone());
    spec.copy_cwd = true;
    let plan = fake.prepare(spec, &host.ctx).await.unwrap();
    run_with(
        fake,
        &plan,
        host,
        &host.state(),
        ShutdownSignal::never(),
        &EventLog::new(),
    )
    .await
}

#[tokio::test]
async fn resume_restores_both_after_provisioning_and_before_the_session() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let outcome = resumed(&host, &fake).await;
    assert_eq!(outcome.state, StateDisposition::Removed);

    let restored: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::CpInArchive { .. }))
        .collect();
    assert_eq!(
        restored,
        [
            Call::CpInArchive {
                archive: FakeBackend::archive_text(WORKDIR),
                bottle_dir: HOME.to_owned(),
            },
            Call::CpInArchive {
                archive: FakeBackend::archive_text(CLAUDE_PROJECT_DIR),
                bottle_dir: "/home/node/.claude/projects".to_owned(),
            },
        ]
    );
    let copied = position(&fake, |c| matches!(c, Call::CopyWorkdir));
    let emptied = position(
        &fake,
        |c| matches!(c, Call::Exec { user: ExecUser::Agent, script } if script.contains("-delete")),
    );
    let first = position(&fake, |c| matches!(c, Call::CpInArchive { .. }));
    let last_provision = position(&fake, |c| matches!(c, Call::ProvisionSupervise));
    let session = position(&fake, |c| matches!(c, Call::ExecClaude { .. }));
    assert!(
        copied < last_provision && last_provision < emptied && emptied < first && first < session,
        "{:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn a_failed_restore_keeps_the_earlier_save() {
    let host = Host::new();
    let fake = FakeBackend::new().fail_at(Step::Restore);
    let outcome = resumed(&host, &fake).await;
    assert!(matches!(
        outcome.ended,
        Ended::Failed {
            step: Step::Restore,
            ..
        }
    ));
    assert!(
        fake.calls()
            .iter()
            .all(|c| !matches!(c, Call::ExecClaude { .. }))
    );
    assert!(
        save_calls(&fake).is_empty(),
        "the agent never ran: no new save"
    );
    let dir = host.state().dir(&outcome.identity);
    assert!(dir.join(WORKSPACE_ARCHIVE).is_file());
    assert!(dir.join(CONVERSATIONS_ARCHIVE).is_file());
    assert!(host.state().saved(&outcome.identity).unwrap().is_some());
    assert!(fake.resources().is_empty());
}

#[tokio::test]
async fn a_bottle_without_a_conversation_saves_its_workspace() {
    let host = Host::new();
    let fake = FakeBackend::new().exit_code(1).missing(CLAUDE_PROJECT_DIR);
    let outcome = run(&fake, &host).await;
    let report = outcome.saved.expect("saved");
    assert_eq!(report.saved, [Saved::Workspace]);
    assert!(report.problems.is_empty());
    assert_eq!(report.conversation, None);
}

#[test]
fn the_save_limit_comes_from_the_host() {
    let mut host = Host::new();
    assert_eq!(
        bottle_core::resume::save_limit(&host.ctx).unwrap(),
        512 << 20
    );
    host.ctx
        .env
        .insert("CLAUDE_BOTTLE_SAVE_LIMIT".to_owned(), "2GiB".to_owned());
    assert_eq!(bottle_core::resume::save_limit(&host.ctx).unwrap(), 2 << 30);
    host.ctx
        .env
        .insert("CLAUDE_BOTTLE_SAVE_LIMIT".to_owned(), "big".to_owned());
    let err = bottle_core::resume::save_limit(&host.ctx).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"CLAUDE_BOTTLE_SAVE_LIMIT=`big` is not a size; give bytes or a size such as 512MiB or 2GiB.");
}
