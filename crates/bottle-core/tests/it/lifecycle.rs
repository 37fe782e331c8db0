//! `run_bottle` against the recording fake: call order, teardown after a failure in each step,
//! state kept or removed.

use bottle_core::agent::{PROMPT_FILE, SKILLS_DIR, WORKDIR};
use bottle_core::testing::{Call, FakeBackend};
use bottle_core::{
    BottleBackend, Ended, Error, Event, EventLog, ExecUser, NoEvents, RunOptions, Session,
    ShutdownSignal, StateDisposition, Step, labels, run_bottle,
};

use crate::support::{self, Host};

fn claude() -> Session {
    Session::Claude {
        args: vec!["--model".to_owned(), "opus".to_owned()],
        tty: true,
    }
}

async fn run(fake: &FakeBackend, host: &Host, session: Session) -> bottle_core::Outcome {
    let plan = support::prepare_copying(fake, host).await;
    let secrets = support::secrets(&plan, host);
    run_bottle(
        fake,
        &plan,
        &secrets,
        session,
        RunOptions {
            state: &host.state(),
            events: &NoEvents,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .expect("state can be written")
}

#[tokio::test]
async fn clean_run_calls_every_step_in_order_then_tears_down() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let outcome = run(&fake, &host, claude()).await;

    let identity = outcome.identity.to_string();
    let launch_labels = match &fake.calls()[1] {
        Call::Launch { labels, env, .. } => {
            assert_eq!(env, &["MODE", "GH_TOKEN", "DB_PASS"]);
            labels.clone()
        }
        other => panic!("second call should be launch, was {other:?}"),
    };
    assert_eq!(launch_labels[labels::IDENTITY], identity);
    assert_eq!(launch_labels[labels::MANAGED], labels::MANAGED_VALUE);
    // The CA step's script, as root: it must make the system bundle trust the CA.
    let ca_script = fake
        .calls()
        .iter()
        .find_map(|c| match c {
            Call::Exec {
                user: ExecUser::Root,
                script,
            } => Some(script.clone()),
            _ => None,
        })
        .expect("the CA step runs a command as root");
    assert!(
        ca_script.contains("cat /etc/claude-bottle/ca.pem >> /etc/ssl/certs/ca-certificates.crt"),
        "{ca_script}"
    );
    let agent = |path: &str| format!("{path} 644 1000:1000");
    let dir = |path: &str, owner: &str| format!("{path}/ 755 {owner}");
    assert_eq!(
        fake.calls(),
        vec![
            Call::ResolvePlan {
                identity: identity.clone()
            },
            Call::Launch {
                identity: identity.clone(),
                labels: launch_labels,
                env: vec!["MODE".into(), "GH_TOKEN".into(), "DB_PASS".into()],
            },
            Call::ProvisionCa,
            Call::WriteFiles {
                files: vec![
                    dir("/etc/claude-bottle", "0:0"),
                    "/etc/claude-bottle/ca.pem 644 0:0".to_owned(),
                    "/usr/local/share/ca-certificates/claude-bottle.crt 644 0:0".to_owned(),
                ]
            },
            Call::Exec {
                user: ExecUser::Root,
                script: ca_script,
            },
            // Claude Code's configuration: onboarding, trust and the permission mode.
            Call::WriteFiles {
                files: vec![
                    "/home/node/.claude.json 600 1000:1000".to_owned(),
                    dir("/etc/claude-code", "0:0"),
                    "/etc/claude-code/managed-settings.json 644 0:0".to_owned(),
                ]
            },
            Call::ProvisionPrompt,
            Call::WriteFiles {
                files: vec![
                    dir("/home/node/.claude-bottle", "1000:1000"),
                    agent(PROMPT_FILE)
                ]
            },
            Call::ProvisionSkills,
            Call::WriteFiles {
                files: vec![
                    dir("/home/node/.claude", "1000:1000"),
                    dir(SKILLS_DIR, "1000:1000"),
                ]
            },
            Call::CpIn {
                host_path: host.home().join(".claude/skills/web"),
                bottle_path: format!("{SKILLS_DIR}/web"),
                replaced: vec![],
            },
            Call::CopyWorkdir,
            Call::CpIn {
                host_path: host.home().join("project"),
                bottle_path: WORKDIR.to_owned(),
                replaced: vec![],
            },
            Call::ProvisionGit,
            Call::WriteFiles {
                files: vec!["/etc/gitconfig 644 0:0".to_owned()]
            },
            Call::ProvisionSupervise,
            Call::ExecClaude {
                argv: vec![
                    "--append-system-prompt-file".into(),
                    PROMPT_FILE.into(),
                    "--remote-control".into(),
                    "--model".into(),
                    "opus".into(),
                ],
                tty: true,
            },
            Call::Close {
                name: format!("claude-bottle-{identity}"),
            },
            Call::Teardown {
                identity: identity.clone(),
                removed: vec![
                    format!("claude-bottle-{identity}"),
                    format!("claude-bottle-net-{identity}"),
                ],
            },
        ]
    );
    assert!(matches!(outcome.ended, Ended::Exited { code: 0 }));
    assert_eq!(outcome.exit_code(), 0);
    assert!(outcome.teardown_errors.is_empty());
    assert!(fake.resources().is_empty());
}

#[tokio::test]
async fn events_report_each_step() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let plan = support::prepare_copying(&fake, &host).await;
    let secrets = support::secrets(&plan, &host);
    let events = EventLog::new();
    run_bottle(
        &fake,
        &plan,
        &secrets,
        claude(),
        RunOptions {
            state: &host.state(),
            events: &events,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .unwrap();
    let events = serde_json::to_value(events.events()).unwrap();
    support::redactions(&host).bind(|| insta::assert_json_snapshot!(events));
}

#[tokio::test]
async fn clean_exit_removes_state() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let outcome = run(&fake, &host, claude()).await;
    assert_eq!(outcome.state, StateDisposition::Removed);
    assert_eq!(outcome.resume_identity(), None);
    assert!(!host.state().exists(&outcome.identity));
}

#[tokio::test]
async fn non_zero_exit_keeps_state_for_resume() {
    let host = Host::new();
    let fake = FakeBackend::new().exit_code(3);
    let outcome = run(&fake, &host, claude()).await;
    assert_eq!(outcome.exit_code(), 3);
    assert_eq!(outcome.resume_identity(), Some(&outcome.identity));
    assert_eq!(
        outcome.state,
        StateDisposition::Kept {
            dir: host.state().dir(&outcome.identity)
        }
    );
    let state = host.state().load(&outcome.identity).unwrap();
    assert_eq!(state.agent, support::AGENT);
    assert_eq!(state.backend, "fake");
    assert_eq!(state.image.as_deref(), Some("fake:latest"));
    assert_eq!(state.cwd, host.home().join("project"));
    assert!(fake.resources().is_empty(), "teardown still ran");
}

#[tokio::test]
async fn script_session_runs_attached_and_returns_its_code() {
    let host = Host::new();
    let fake = FakeBackend::new().exit_code(7);
    let outcome = run(
        &fake,
        &host,
        Session::Script {
            script: "make test".to_owned(),
            tty: false,
        },
    )
    .await;
    assert_eq!(outcome.exit_code(), 7);
    assert!(fake.calls().contains(&Call::ExecAttached {
        script: "make test".to_owned(),
        tty: false
    }));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::ExecClaude { .. }))
    );
}

fn call_of(step: Step) -> fn(&Call) -> bool {
    match step {
        Step::Launch => |c| matches!(c, Call::Launch { .. }),
        Step::ProvisionCa => |c| matches!(c, Call::ProvisionCa),
        Step::ProvisionPrompt => |c| matches!(c, Call::ProvisionPrompt),
        Step::ProvisionSkills => |c| matches!(c, Call::ProvisionSkills),
        Step::CopyWorkdir => |c| matches!(c, Call::CopyWorkdir),
        Step::ProvisionSupervise => |c| matches!(c, Call::ProvisionSupervise),
        _ => |c| matches!(c, Call::ExecClaude { .. }),
    }
}

/// `step` fails: nothing after it runs, teardown removes everything, the state is kept.
async fn failure_tears_down(step: Step) {
    let host = Host::new();
    let fake = FakeBackend::new().fail_at(step);
    let outcome = run(&fake, &host, claude()).await;

    match &outcome.ended {
        Ended::Failed {
            step: failed,
            error,
        } => {
            assert_eq!(*failed, step, "reported step");
            assert!(
                matches!(error, Error::Backend { .. }),
                "the backend's error is kept, got {error:?}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(outcome.exit_code(), 1);
    assert!(fake.resources().is_empty(), "left {:?}", fake.resources());

    let calls = fake.calls();
    let failed_at = calls
        .iter()
        .position(call_of(step))
        .expect("the failing step was called");
    // The session's failure is followed by the save (`tests/it/resume.rs`), the others by
    // nothing: the agent never ran.
    let saved = |c: &&Call| matches!(c, Call::CpOut { .. } | Call::Exec { .. });
    let after: Vec<&Call> = calls[failed_at + 1..]
        .iter()
        .filter(|c| !matches!(c, Call::CpIn { .. }))
        .filter(|c| step != Step::Session || !saved(c))
        .collect();
    assert_eq!(
        calls.iter().any(|c| matches!(c, Call::CpOut { .. })),
        step == Step::Session
    );
    // Nothing but teardown follows the failing step.
    match after.as_slice() {
        [Call::Teardown { .. }] => assert_eq!(step, Step::Launch, "launch returned no bottle"),
        [Call::Close { .. }, Call::Teardown { .. }] => assert_ne!(step, Step::Launch),
        other => panic!("unexpected calls after the failure: {other:?}"),
    }
    assert_eq!(
        outcome.state,
        StateDisposition::Kept {
            dir: host.state().dir(&outcome.identity)
        }
    );
    assert!(host.state().exists(&outcome.identity));
}

/// One test per step a backend performs after state is written.
macro_rules! failure_in {
    ($($name:ident => $step:expr),* $(,)?) => {
        mod failure_in {
            $(
                #[tokio::test]
                async fn $name() {
                    super::failure_tears_down($step).await;
                }
            )*
        }
    };
}

failure_in! {
    launch => bottle_core::Step::Launch,
    provision_ca => bottle_core::Step::ProvisionCa,
    provision_prompt => bottle_core::Step::ProvisionPrompt,
    provision_skills => bottle_core::Step::ProvisionSkills,
    copy_workdir => bottle_core::Step::CopyWorkdir,
    provision_supervise => bottle_core::Step::ProvisionSupervise,
    session => bottle_core::Step::Session,
}

#[tokio::test]
async fn a_launch_failure_half_way_still_removes_what_it_created() {
    // The fake's launch creates the network before failing: only teardown can remove it.
    let host = Host::new();
    let fake = FakeBackend::new().fail_at(Step::Launch);
    let outcome = run(&fake, &host, claude()).await;
    let identity = outcome.identity.to_string();
    assert_eq!(
        fake.calls().last(),
        Some(&Call::Teardown {
            identity: identity.clone(),
            removed: vec![format!("claude-bottle-net-{identity}")],
        })
    );
}

#[tokio::test]
async fn a_failing_teardown_is_reported_not_hidden() {
    let host = Host::new();
    let fake = FakeBackend::new().fail_at(Step::Teardown);
    let outcome = run(&fake, &host, claude()).await;
    assert!(matches!(outcome.ended, Ended::Exited { code: 0 }));
    assert_eq!(outcome.teardown_errors.len(), 1);
    let message = outcome.teardown_errors[0].to_string();
    assert_eq!(
        message,
        "fake: could not teardown: injected failure at teardown"
    );
}

#[tokio::test]
async fn failed_step_events_name_the_step() {
    let host = Host::new();
    let fake = FakeBackend::new().fail_at(Step::ProvisionSkills);
    let plan = support::prepare(&fake, &host).await;
    let secrets = support::secrets(&plan, &host);
    let events = EventLog::new();
    run_bottle(
        &fake,
        &plan,
        &secrets,
        claude(),
        RunOptions {
            state: &host.state(),
            events: &events,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .unwrap();
    let events = events.events();
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::StepFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        vec![&Event::StepFailed {
            step: Step::ProvisionSkills,
            message: "fake: could not copy skills: injected failure at copy skills".to_owned(),
        }]
    );
    assert_eq!(
        events.last(),
        Some(&Event::StepFinished {
            step: Step::Teardown
        })
    );
}

#[tokio::test]
async fn an_unwritable_state_dir_fails_before_anything_is_created() {
    let host = Host::new();
    // A file where the state folder should be.
    std::fs::write(host.home().join("blocker"), "").unwrap();
    let store = bottle_core::StateStore::new(host.home().join("blocker"));
    let fake = FakeBackend::new();
    let plan = support::prepare(&fake, &host).await;
    let secrets = support::secrets(&plan, &host);
    let err = run_bottle(
        &fake,
        &plan,
        &secrets,
        claude(),
        RunOptions {
            state: &store,
            events: &NoEvents,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        Error::StateIo {
            action: "write",
            ..
        }
    ));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Launch { .. })),
        "launch must not run"
    );
}

#[tokio::test]
async fn resume_reuses_the_identity_and_clean_exit_forgets_it() {
    let host = Host::new();
    let first = FakeBackend::new().exit_code(1);
    let crashed = run(&first, &host, claude()).await;
    let kept = host.state().load(&crashed.identity).unwrap();

    let fake = FakeBackend::new();
    let mut spec = support::spec(&host);
    spec.identity = Some(kept.identity.clone());
    spec.copy_cwd = kept.copy_cwd;
    let plan = fake.prepare(spec, &host.ctx).await.unwrap();
    assert_eq!(plan.prepared.identity, crashed.identity);
    assert!(plan.prepared.resuming);

    let secrets = support::secrets(&plan, &host);
    let outcome = run_bottle(
        &fake,
        &plan,
        &secrets,
        claude(),
        RunOptions {
            state: &host.state(),
            events: &NoEvents,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.identity, crashed.identity);
    assert_eq!(outcome.state, StateDisposition::Removed);
    assert!(!host.state().exists(&crashed.identity));
}

#[tokio::test]
async fn close_is_idempotent() {
    use bottle_core::{Bottle, LaunchContext, Secrets};
    let host = Host::new();
    let fake = FakeBackend::new();
    let plan = support::prepare(&fake, &host).await;
    let secrets = Secrets::empty();
    let ctx = LaunchContext {
        secrets: &secrets,
        events: &NoEvents,
        started: time::OffsetDateTime::UNIX_EPOCH,
        labels: Default::default(),
    };
    let bottle = fake.launch(&plan, &ctx).await.unwrap();
    bottle.close().await.unwrap();
    bottle.close().await.unwrap();
    let closes = fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Close { .. }))
        .count();
    assert_eq!(closes, 1);
}
