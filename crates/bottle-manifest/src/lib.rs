//! Agent and bottle manifests for claude-bottle.
pub mod route;
pub use route::{AuthScheme, LogMode, Route, RouteAuth};
