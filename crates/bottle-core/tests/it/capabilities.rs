//! What a backend implements, and what happens to a bottle that asks for more: its missing
//! grants are refused before anything exists (unless allowed), its missing conveniences are
//! shown, and the steps of what is missing are never reported as done.

use bottle_core::testing::{Call, FakeBackend};
use bottle_core::{
    BottlePlan, Capabilities, Error, Event, EventLog, Feature, RunOptions, Session, ShutdownSignal,
    Step, run_bottle,
};

use crate::support::{self, Host};

/// Prepares the fixture agent's spec as `adjust` leaves it, then runs a script session.
async fn run_with(
    fake: &FakeBackend,
    host: &Host,
    events: &EventLog,
    adjust: impl FnOnce(&mut bottle_core::BottleSpec),
) -> bottle_core::Result<bottle_core::Outcome> {
    let mut spec = support::spec(host);
    adjust(&mut spec);
    let plan = bottle_core::BottleBackend::prepare(fake, spec, &host.ctx)
        .await
        .expect("prepare shows what is missing instead of failing");
    let secrets = support::secrets(&plan, host);
    run_bottle(
        fake,
        &plan,
        &secrets,
        Session::Script {
            script: "true".to_owned(),
            tty: false,
        },
        RunOptions {
            state: &host.state(),
            events,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
}

/// The fixture agent with `--cwd` (so that every step has work) and `allow` as its
/// `--allow-unimplemented`.
async fn run(
    fake: &FakeBackend,
    host: &Host,
    allow: bool,
    events: &EventLog,
) -> bottle_core::Result<bottle_core::Outcome> {
    run_with(fake, host, events, |spec| {
        spec.copy_cwd = true;
        spec.allow_unimplemented = allow;
    })
    .await
}

fn steps_started(events: &EventLog) -> Vec<Step> {
    events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepStarted { step } => Some(step),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_summary_names_what_the_backend_lacks() {
    let host = Host::new();
    // The fixture's bottle has git remotes and supervise, no egress networks.
    let none = FakeBackend::new().with_capabilities(Capabilities::none());
    let plan = support::prepare(&none, &host).await;
    let summary = plan.summary();
    assert_eq!(
        summary.unimplemented,
        [Feature::GitGate, Feature::Supervise]
    );
    assert!(!summary.allow_unimplemented);

    let all = FakeBackend::new();
    let plan = support::prepare(&all, &host).await;
    assert!(plan.summary().unimplemented.is_empty());
}

#[tokio::test]
async fn a_missing_grant_is_refused_before_anything_is_created() {
    let host = Host::new();
    let fake = FakeBackend::new().with_capabilities(Capabilities::none().with(Feature::Supervise));
    let events = EventLog::new();
    let err = run(&fake, &host, false, &events).await.unwrap_err();
    match &err {
        Error::Unimplemented { backend, features } => {
            assert_eq!(backend, "fake");
            assert_eq!(
                features,
                &[Feature::GitGate],
                "supervise is present; only grants count"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    insta::assert_snapshot!(err.to_string());
    assert!(
        matches!(fake.calls().as_slice(), [Call::ResolvePlan { .. }]),
        "nothing launched: {:?}",
        fake.calls()
    );
    assert!(
        events.events().is_empty(),
        "no state written, no step started"
    );
    assert!(host.state().list().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_missing_convenience_is_not_refused_and_its_step_is_not_reported() {
    let host = Host::new();
    let fake = FakeBackend::new().with_capabilities(Capabilities::none().with(Feature::GitGate));
    let events = EventLog::new();
    let outcome = run(&fake, &host, false, &events).await.unwrap();
    assert_eq!(outcome.exit_code(), 0);
    assert!(!steps_started(&events).contains(&Step::ProvisionSupervise));
    assert!(!fake.calls().contains(&Call::ProvisionSupervise));
}

#[tokio::test]
async fn with_allow_unimplemented_the_smaller_bottle_launches() {
    let host = Host::new();
    let fake = FakeBackend::new().with_capabilities(Capabilities::none());
    let events = EventLog::new();
    let outcome = run(&fake, &host, true, &events).await.unwrap();
    assert_eq!(outcome.exit_code(), 0);
    assert!(!steps_started(&events).contains(&Step::ProvisionSupervise));
    // No gate, so no git config pointing at one.
    assert!(!steps_started(&events).contains(&Step::ProvisionGit));
    assert!(!fake.calls().contains(&Call::ProvisionGit));
}

#[tokio::test]
async fn a_backend_that_has_every_feature_runs_every_step() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let events = EventLog::new();
    run(&fake, &host, false, &events).await.unwrap();
    assert_eq!(
        steps_started(&events),
        [
            Step::Launch,
            Step::ProvisionCa,
            Step::ConfigureClaudeCode,
            Step::ProvisionPrompt,
            Step::ProvisionSkills,
            Step::CopyWorkdir,
            Step::ProvisionGit,
            Step::ProvisionSupervise,
            Step::Session,
            Step::Teardown,
        ]
    );
    // The git step installs the agent's system git config, root-owned and world-readable.
    assert!(
        fake.calls().iter().any(|c| matches!(
            c,
            Call::WriteFiles { files } if files == &["/etc/gitconfig 644 0:0".to_owned()]
        )),
        "{:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn steps_with_nothing_to_do_are_skipped_and_not_reported() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let events = EventLog::new();
    // The `writer` agent: no prompt, no skills, no --cwd.
    run_with(&fake, &host, &events, |spec| {
        spec.agent_name = "writer".to_owned();
    })
    .await
    .unwrap();
    let started = steps_started(&events);
    for skipped in [
        Step::ProvisionPrompt,
        Step::ProvisionSkills,
        Step::CopyWorkdir,
    ] {
        assert!(
            !started.contains(&skipped),
            "{skipped} reported: {started:?}"
        );
    }
    let calls = fake.calls();
    for skipped in [
        Call::ProvisionPrompt,
        Call::ProvisionSkills,
        Call::CopyWorkdir,
    ] {
        assert!(!calls.contains(&skipped), "{skipped:?} called: {calls:?}");
    }
}
