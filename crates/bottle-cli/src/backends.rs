//! The backend registry: which names `--backend` and `CLAUDE_BOTTLE_BACKEND` accept, and how
//! each backend is built. bottle-core depends on no backend; this is the one place that does.

use std::sync::Arc;

use bottle_core::{DynBackend, Registry};
use bottle_docker::DockerBackend;
use bottle_docker::backend::BACKEND_NAME;
use bottle_docker::runtime::Verdicts;

use crate::context::Context;
use crate::ui::terminal::HostTerminal;

/// Every backend this build knows, keeping what they may cache under `ctx`'s claude-bottle home.
pub(crate) fn registry(ctx: &Context) -> Registry {
    let mut registry = Registry::new();
    let verdicts = Verdicts::at(ctx.layout.cache_dir().join("runtime-verdicts.json"));
    // Builds the client only; the engine is first contacted by `prepare` (or `list active`,
    // `cleanup`), whose errors say when it cannot be reached.
    registry.register(BACKEND_NAME, move || {
        let backend = DockerBackend::from_env()?
            .with_terminal(Arc::new(HostTerminal))
            .with_runtime_verdicts(verdicts.clone());
        Ok(Arc::new(backend) as Arc<dyn DynBackend>)
    });
    #[cfg(feature = "testing")]
    fake::register(&mut registry);
    registry
}

/// Called once before the process exits: lets test backends write their record.
pub(crate) fn finish() {
    #[cfg(feature = "testing")]
    fake::write_record();
}

/// The recording fake of bottle-core, registered as `fake` in builds with the `testing`
/// feature only (the CLI's own tests). It is driven by environment variables, since the test
/// talks to it through a separate process:
///
/// - `CLAUDE_BOTTLE_FAKE_FAIL_AT=<step>` / `CLAUDE_BOTTLE_FAKE_HANG_AT=<step>`: make a step fail
///   or hang (`launch`, `provision-ca`, `provision-prompt`, `provision-skills`, `copy-workdir`,
///   `provision-supervise`, `session`, `teardown`);
/// - `CLAUDE_BOTTLE_FAKE_CAPABILITIES=<feature>,…`: the only optional features it implements
///   (`git-gate`, `egress-networks`, `supervise`; empty: none; unset: all);
/// - `CLAUDE_BOTTLE_FAKE_EXIT_CODE=<n>`: what sessions return;
/// - `CLAUDE_BOTTLE_FAKE_REFUSED=<host>:<count>:<reason>[+<reason>…],…`: what teardown reports the
///   egress refused;
/// - `CLAUDE_BOTTLE_FAKE_LEFTOVERS=<identity>,…`: resources a killed launch left behind;
/// - `CLAUDE_BOTTLE_FAKE_RECORD=<file>`: at exit, the calls received and the resources left,
///   as JSON.
#[cfg(feature = "testing")]
mod fake {
    use std::sync::{Arc, OnceLock};

    use bottle_core::testing::{FAKE_BACKEND, FakeBackend};
    use bottle_core::{Capabilities, DynBackend, Feature, Identity, Registry, Step};

    static FAKE: OnceLock<FakeBackend> = OnceLock::new();

    fn step(var: &str) -> Option<Step> {
        let id = std::env::var(var).ok().filter(|v| !v.is_empty())?;
        Some(
            id.parse()
                .unwrap_or_else(|e| panic!("{var}={id} names no step: {e}")),
        )
    }

    fn build() -> FakeBackend {
        let mut fake = FakeBackend::new();
        if let Some(step) = step("CLAUDE_BOTTLE_FAKE_FAIL_AT") {
            fake = fake.fail_at(step);
        }
        if let Some(step) = step("CLAUDE_BOTTLE_FAKE_HANG_AT") {
            fake = fake.hang_at(step);
        }
        if let Ok(list) = std::env::var("CLAUDE_BOTTLE_FAKE_CAPABILITIES") {
            let capabilities: Capabilities = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|id| {
                    id.parse::<Feature>()
                        .unwrap_or_else(|e| panic!("CLAUDE_BOTTLE_FAKE_CAPABILITIES: {e}"))
                })
                .collect();
            fake = fake.with_capabilities(capabilities);
        }
        if let Some(code) = std::env::var("CLAUDE_BOTTLE_FAKE_EXIT_CODE")
            .ok()
            .and_then(|c| c.parse().ok())
        {
            fake = fake.exit_code(code);
        }
        if let Ok(list) = std::env::var("CLAUDE_BOTTLE_FAKE_REFUSED") {
            for item in list.split(',').filter(|s| !s.is_empty()) {
                let mut parts = item.splitn(3, ':');
                let (Some(host), Some(count), Some(reasons)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    panic!("CLAUDE_BOTTLE_FAKE_REFUSED: {item} is not host:count:reasons");
                };
                let count = count.parse().expect("CLAUDE_BOTTLE_FAKE_REFUSED: a count");
                let reasons: Vec<&str> = reasons.split('+').collect();
                fake = fake.refused(host, count, &reasons);
            }
        }
        if let Ok(list) = std::env::var("CLAUDE_BOTTLE_FAKE_LEFTOVERS") {
            for id in list.split(',').filter(|s| !s.is_empty()) {
                let identity =
                    Identity::parse(id).expect("CLAUDE_BOTTLE_FAKE_LEFTOVERS holds identities");
                fake.leave_behind(&identity);
            }
        }
        fake
    }

    pub(super) fn register(registry: &mut Registry) {
        registry.register(FAKE_BACKEND, || {
            let fake = FAKE.get_or_init(build).clone();
            Ok(Arc::new(fake) as Arc<dyn DynBackend>)
        });
    }

    pub(super) fn write_record() {
        let (Some(fake), Ok(path)) = (FAKE.get(), std::env::var("CLAUDE_BOTTLE_FAKE_RECORD"))
        else {
            return;
        };
        let record = serde_json::json!({
            "calls": fake.calls(),
            "resources": fake.resources(),
        });
        let text = serde_json::to_string_pretty(&record).expect("the record serialises");
        std::fs::write(&path, text).expect("CLAUDE_BOTTLE_FAKE_RECORD is writable");
    }
}
