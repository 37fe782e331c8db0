//! Cleanup finds what a SIGKILL left (by label) and is idempotent; listing reports data.

use bottle_core::testing::{Call, FakeBackend};
use bottle_core::{
    ActiveState, BottleBackend, BottleCleanupPlan, EventLog, Identity, NoEvents, labels,
};

#[tokio::test]
async fn cleanup_removes_leftovers_and_a_second_run_finds_nothing() {
    let fake = FakeBackend::new();
    let a = Identity::from_parts("researcher", "aaaaa").unwrap();
    let b = Identity::from_parts("writer", "bbbbb").unwrap();
    fake.leave_behind(&a);
    fake.leave_behind(&b);

    let plan = fake.prepare_cleanup().await.unwrap();
    assert!(!plan.is_empty());
    insta::assert_json_snapshot!(plan.summary());

    let events = EventLog::new();
    fake.cleanup(&plan, &events).await.unwrap();
    assert!(fake.resources().is_empty());
    assert_eq!(events.events().len(), 4, "one Removed event per resource");

    // Idempotent: the same plan again removes nothing and does not fail...
    fake.cleanup(&plan, &NoEvents).await.unwrap();
    assert_eq!(
        fake.calls().last(),
        Some(&Call::Cleanup { removed: vec![] })
    );
    // ...and a fresh plan is empty.
    assert!(fake.prepare_cleanup().await.unwrap().is_empty());
}

#[tokio::test]
async fn leftovers_carry_the_labels_cleanup_keys_on() {
    let fake = FakeBackend::new();
    let id = Identity::from_parts("researcher", "k1ll9").unwrap();
    fake.leave_behind(&id);
    let labels = fake.labels_of("claude-bottle-researcher-k1ll9").unwrap();
    assert_eq!(labels[labels::MANAGED], "true");
    assert_eq!(labels[labels::IDENTITY], "researcher-k1ll9");
    assert_eq!(labels[labels::AGENT], "researcher");
    assert_eq!(labels[labels::BACKEND], "fake");
    assert_eq!(labels[labels::STARTED], "1970-01-01T00:00:00Z");
}

#[tokio::test]
async fn list_active_returns_data() {
    let fake = FakeBackend::new();
    let id = Identity::from_parts("researcher", "m3hxd").unwrap();
    fake.leave_behind(&id);
    let active = fake.list_active().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].identity, id);
    assert_eq!(active[0].agent, "researcher");
    assert_eq!(active[0].backend, "fake");
    assert_eq!(active[0].state, ActiveState::Running);
    assert_eq!(active[0].started, Some(time::OffsetDateTime::UNIX_EPOCH));
    insta::assert_json_snapshot!(active);
}
