//! `-v/--verbose`: tracing logs to stderr. `-v` shows claude-bottle's debug logs (every event
//! of a launch, every engine call the backends log), `-vv` adds trace and dependencies' debug;
//! `RUST_LOG` overrides both. Without either, only warnings.

use tracing_subscriber::EnvFilter;

const OURS: &[&str] = &[
    "claude_bottle",
    "bottle_core",
    "bottle_docker",
    "bottle_manifest",
    "bottle_egress",
];

/// Installs the subscriber (once, at start-up).
pub(crate) fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(directives(verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 0)
        .try_init();
}

fn directives(verbose: u8) -> String {
    let (ours, others) = match verbose {
        0 => ("warn", "warn"),
        1 => ("debug", "warn"),
        _ => ("trace", "debug"),
    };
    let mut out = others.to_owned();
    for name in OURS {
        out.push_str(&format!(",{name}={ours}"));
    }
    out
}
