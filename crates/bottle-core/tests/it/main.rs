//! bottle-core's integration tests: the lifecycle guarantees against the recording fake backend,
//! the common checks, identities, state, the registry and the dependency graph.

mod capabilities;
mod checks;
mod claude_config;
mod cleanup;
mod cwd;
mod identity;
mod lifecycle;
mod manifest;
mod registry;
mod resume;
mod secrets;
mod signals;
mod state;
mod support;
mod tidy;
