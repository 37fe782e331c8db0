//! bottle-docker's integration tests: planning, the launch/teardown/cleanup ordering against
//! the recording fake, and — with `CLAUDE_BOTTLE_DOCKER_TESTS=1` — real bottles on a real engine.

mod common;
mod docker;
mod docker_git_gate;
mod endpoint;
mod escape;
mod lifecycle;
mod plan;
