//! Choosing a backend at run time.
//!
//! [`BottleBackend`] uses `impl Future` returns and associated types, so it is not object safe.
//! [`DynBackend`] is its object-safe, type-erased mirror (boxed futures, boxed plans), implemented
//! for every `BottleBackend`; a [`Registry`] maps names to factories that build one. bottle-core
//! depends on no backend: the CLI registers `docker` (and any other) itself.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::backend::BottleBackend;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::host::{ENV_BACKEND, HostContext};
use crate::lifecycle::{Outcome, RunOptions, Session, run_bottle};
use crate::plan::{
    ActiveBottle, BottleCleanupPlan, BottlePlan, CleanupSummary, PlanSummary, PreparedSpec,
};
use crate::secret::Secrets;
use crate::spec::BottleSpec;

/// The backend used when neither `--backend` nor `CLAUDE_BOTTLE_BACKEND` names one.
pub const DEFAULT_BACKEND: &str = "docker";

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A plan of any backend.
pub trait AnyPlan: fmt::Debug + Send + Sync {
    /// The backend-independent part.
    fn prepared(&self) -> &PreparedSpec;
    /// The preflight summary.
    fn summary(&self) -> PlanSummary;
    /// For downcasting to the backend's plan type.
    fn as_any(&self) -> &dyn Any;
}

impl<P: BottlePlan> AnyPlan for P {
    fn prepared(&self) -> &PreparedSpec {
        BottlePlan::prepared(self)
    }
    fn summary(&self) -> PlanSummary {
        BottlePlan::summary(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A cleanup plan of any backend.
pub trait AnyCleanupPlan: fmt::Debug + Send + Sync {
    /// Nothing to remove.
    fn is_empty(&self) -> bool;
    /// What would be removed.
    fn summary(&self) -> CleanupSummary;
    /// For downcasting to the backend's cleanup plan type.
    fn as_any(&self) -> &dyn Any;
}

impl<P: BottleCleanupPlan> AnyCleanupPlan for P {
    fn is_empty(&self) -> bool {
        BottleCleanupPlan::is_empty(self)
    }
    fn summary(&self) -> CleanupSummary {
        BottleCleanupPlan::summary(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The object-safe face of a [`BottleBackend`], for a backend chosen at run time.
pub trait DynBackend: Send + Sync {
    /// The backend's name.
    fn name(&self) -> &str;

    /// [`BottleBackend::prepare`].
    fn prepare<'a>(
        &'a self,
        spec: BottleSpec,
        host: &'a HostContext,
    ) -> BoxFuture<'a, Result<Box<dyn AnyPlan>>>;

    /// [`run_bottle`] with this backend; [`Error::PlanMismatch`] for another backend's plan.
    fn run<'a>(
        &'a self,
        plan: &'a dyn AnyPlan,
        secrets: &'a Secrets,
        session: Session,
        opts: RunOptions<'a>,
    ) -> BoxFuture<'a, Result<Outcome>>;

    /// [`BottleBackend::prepare_cleanup`].
    fn prepare_cleanup(&self) -> BoxFuture<'_, Result<Box<dyn AnyCleanupPlan>>>;

    /// [`BottleBackend::cleanup`]; [`Error::PlanMismatch`] for another backend's plan.
    fn cleanup<'a>(
        &'a self,
        plan: &'a dyn AnyCleanupPlan,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<()>>;

    /// [`BottleBackend::list_active`].
    fn list_active(&self) -> BoxFuture<'_, Result<Vec<ActiveBottle>>>;
}

impl<B: BottleBackend> DynBackend for B {
    fn name(&self) -> &str {
        BottleBackend::name(self)
    }

    fn prepare<'a>(
        &'a self,
        spec: BottleSpec,
        host: &'a HostContext,
    ) -> BoxFuture<'a, Result<Box<dyn AnyPlan>>> {
        Box::pin(async move {
            let plan = BottleBackend::prepare(self, spec, host).await?;
            Ok(Box::new(plan) as Box<dyn AnyPlan>)
        })
    }

    fn run<'a>(
        &'a self,
        plan: &'a dyn AnyPlan,
        secrets: &'a Secrets,
        session: Session,
        opts: RunOptions<'a>,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let plan =
                plan.as_any()
                    .downcast_ref::<B::Plan>()
                    .ok_or_else(|| Error::PlanMismatch {
                        prepared_by: plan.prepared().backend.clone(),
                        given_to: BottleBackend::name(self).to_owned(),
                    })?;
            run_bottle(self, plan, secrets, session, opts).await
        })
    }

    fn prepare_cleanup(&self) -> BoxFuture<'_, Result<Box<dyn AnyCleanupPlan>>> {
        Box::pin(async move {
            let plan = BottleBackend::prepare_cleanup(self).await?;
            Ok(Box::new(plan) as Box<dyn AnyCleanupPlan>)
        })
    }

    fn cleanup<'a>(
        &'a self,
        plan: &'a dyn AnyCleanupPlan,
        events: &'a dyn EventSink,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let plan = plan
                .as_any()
                .downcast_ref::<B::CleanupPlan>()
                .ok_or_else(|| Error::PlanMismatch {
                    prepared_by: plan.summary().backend,
                    given_to: BottleBackend::name(self).to_owned(),
                })?;
            BottleBackend::cleanup(self, plan, events).await
        })
    }

    fn list_active(&self) -> BoxFuture<'_, Result<Vec<ActiveBottle>>> {
        Box::pin(BottleBackend::list_active(self))
    }
}

/// Builds a backend (connecting to an engine may fail).
pub type BackendFactory = Box<dyn Fn() -> Result<Arc<dyn DynBackend>> + Send + Sync>;

/// Backends by name.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<String, BackendFactory>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name` (replacing an earlier one).
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn() -> Result<Arc<dyn DynBackend>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(name.into(), Box::new(factory));
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// The backend name to use: `flag` (`--backend`) if given, else `CLAUDE_BOTTLE_BACKEND`
    /// from `host`, else [`DEFAULT_BACKEND`]; an error listing the known names if it is not
    /// registered.
    pub fn select_name(&self, flag: Option<&str>, host: &HostContext) -> Result<String> {
        let (name, origin) = match (flag, host.var(ENV_BACKEND).filter(|v| !v.is_empty())) {
            (Some(name), _) => (name, "--backend"),
            (None, Some(name)) => (name, ENV_BACKEND),
            (None, None) => (DEFAULT_BACKEND, "the default"),
        };
        if self.factories.contains_key(name) {
            Ok(name.to_owned())
        } else {
            Err(Error::UnknownBackend {
                name: name.to_owned(),
                origin,
                known: self.names(),
            })
        }
    }

    /// Builds the backend [`select_name`](Registry::select_name) picks.
    pub fn select(&self, flag: Option<&str>, host: &HostContext) -> Result<Arc<dyn DynBackend>> {
        let name = self.select_name(flag, host)?;
        self.create(&name, "the registry")
    }

    /// Builds the backend `name` (for `resume`, which uses the backend in the state); `origin`
    /// says where the name came from in the error (`resume state`).
    pub fn create(&self, name: &str, origin: &'static str) -> Result<Arc<dyn DynBackend>> {
        match self.factories.get(name) {
            Some(factory) => factory(),
            None => Err(Error::UnknownBackend {
                name: name.to_owned(),
                origin,
                known: self.names(),
            }),
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("backends", &self.names())
            .finish()
    }
}

impl fmt::Debug for dyn DynBackend + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynBackend")
            .field("name", &self.name())
            .finish()
    }
}
