//! Choosing a backend by name, and running through the type-erased `DynBackend`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bottle_core::testing::{Call, FakeBackend};
use bottle_core::{
    DynBackend, Error, HostContext, NoEvents, Registry, RunOptions, Session, ShutdownSignal,
};

use crate::support::{self, Host};

fn host_with_backend(value: Option<&str>) -> HostContext {
    let mut env = BTreeMap::new();
    if let Some(value) = value {
        env.insert("CLAUDE_BOTTLE_BACKEND".to_owned(), value.to_owned());
    }
    HostContext::new("/home/u", env)
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register("docker", || {
            Ok(Arc::new(FakeBackend::new()) as Arc<dyn DynBackend>)
        })
        .register("fake", || {
            Ok(Arc::new(FakeBackend::new()) as Arc<dyn DynBackend>)
        });
    registry
}

#[test]
fn default_is_docker() {
    assert_eq!(
        registry()
            .select_name(None, &host_with_backend(None))
            .unwrap(),
        "docker"
    );
    assert_eq!(
        registry()
            .select_name(None, &host_with_backend(Some("")))
            .unwrap(),
        "docker"
    );
}

#[test]
fn environment_then_flag() {
    let host = host_with_backend(Some("fake"));
    assert_eq!(registry().select_name(None, &host).unwrap(), "fake");
    assert_eq!(
        registry().select_name(Some("docker"), &host).unwrap(),
        "docker"
    );
}

#[test]
fn unknown_backend_from_the_environment_lists_the_known_ones() {
    let err = registry()
        .select(None, &host_with_backend(Some("firecracker")))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownBackend { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn unknown_backend_from_the_flag_lists_the_known_ones() {
    let err = registry()
        .select(Some("podman"), &host_with_backend(None))
        .unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn an_empty_registry_says_so() {
    let err = Registry::new()
        .select(None, &host_with_backend(None))
        .unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn factory_errors_are_passed_through() {
    let mut registry = Registry::new();
    registry.register("docker", || {
        Err(Error::backend(
            "docker",
            "connect to the engine",
            "no socket",
        ))
    });
    let err = registry.select(None, &host_with_backend(None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "docker: could not connect to the engine: no socket"
    );
}

#[tokio::test]
async fn a_backend_chosen_at_run_time_runs_the_whole_lifecycle() {
    let host = Host::new();
    let fake = FakeBackend::new();
    let dyn_backend: Arc<dyn DynBackend> = Arc::new(fake.clone());
    let plan = dyn_backend
        .prepare(support::spec(&host), &host.ctx)
        .await
        .unwrap();
    assert_eq!(plan.summary().backend, "fake");
    let secrets =
        bottle_core::Secrets::resolve(plan.prepared(), &host.ctx, |_| Ok("typed".into())).unwrap();
    let outcome = dyn_backend
        .run(
            plan.as_ref(),
            &secrets,
            Session::Claude {
                args: vec![],
                tty: false,
            },
            RunOptions {
                state: &host.state(),
                events: &NoEvents,
                shutdown: ShutdownSignal::never(),
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit_code(), 0);
    assert!(matches!(fake.calls().last(), Some(Call::Teardown { .. })));

    let cleanup = dyn_backend.prepare_cleanup().await.unwrap();
    assert!(cleanup.is_empty());
    dyn_backend
        .cleanup(cleanup.as_ref(), &NoEvents)
        .await
        .unwrap();
    assert!(dyn_backend.list_active().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_plan_from_another_backend_is_refused() {
    #[derive(Debug)]
    struct OtherPlan(bottle_core::PreparedSpec);
    impl bottle_core::BottlePlan for OtherPlan {
        fn prepared(&self) -> &bottle_core::PreparedSpec {
            &self.0
        }
        fn summary(&self) -> bottle_core::PlanSummary {
            bottle_core::PlanSummary::from_prepared(&self.0)
        }
    }
    let host = Host::new();
    let fake = FakeBackend::new();
    let mut prepared = support::prepare(&fake, &host).await.prepared;
    prepared.backend = "other".to_owned();
    let other = OtherPlan(prepared);
    let err = DynBackend::run(
        &fake,
        &other,
        &bottle_core::Secrets::empty(),
        Session::Script {
            script: "true".to_owned(),
            tty: false,
        },
        RunOptions {
            state: &host.state(),
            events: &NoEvents,
            shutdown: ShutdownSignal::never(),
        },
    )
    .await
    .unwrap_err();
    insta::assert_snapshot!(err.to_string());
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Launch { .. })),
        "nothing launched"
    );
}
