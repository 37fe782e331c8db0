//! `-v/--verbose`: tracing logs to stderr. `-v` shows claude-bottle's debug logs (every event
//! of a launch, every engine call the backends log), `-vv` adds trace and dependencies' debug;
//! `RUST_LOG` overrides both. Without either, only warnings.
//!
//! No level ever shows a secret. Some dependencies log what passes through them: bollard logs
//! every request body it sends the Docker engine at debug (the create-container JSON holds the
//! bottle's env values and the egress's credentials) and every response it decodes (an inspect
//! holds them again); hyper, h2 and rustls log connections, frames and handshakes at debug and
//! trace. Those crates ([`PAYLOAD_LOGGERS`]) are capped at `info` by a filter of their own,
//! applied after `RUST_LOG` and `-v`, so that no directive (`RUST_LOG=trace`,
//! `RUST_LOG=bollard::docker=trace`) can lift the cap. Logs come in through the `log` bridge
//! too (bollard uses `log`); the bridge hands them to the same filter.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const OURS: &[&str] = &[
    "claude_bottle",
    "bottle_core",
    "bottle_docker",
    "bottle_manifest",
    "bottle_egress",
];

/// Crates that log request or response bodies, headers or TLS internals below `info`: never
/// shown below `info`, whatever the filter says.
const PAYLOAD_LOGGERS: &[&str] = &[
    "bollard",
    "hyper",
    "hyper_util",
    "hyperlocal",
    "h2",
    "http_body_util",
    "rustls",
    "tokio_rustls",
    "hyper_rustls",
];

/// Installs the subscriber (once, at start-up).
pub(crate) fn init(verbose: u8) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let colour = crate::ui::Paint::for_stream(&std::io::stderr()).enabled();
    let _ = subscriber(verbose, rust_log.as_deref(), std::io::stderr, colour).try_init();
}

/// The subscriber `init` installs: `RUST_LOG` (when set and not empty) or the `-v` level, then
/// the payload cap, writing to `writer`, in colour when `colour` (as for the rest of stderr:
/// not into pipes, never with `NO_COLOR`).
fn subscriber<W>(
    verbose: u8,
    rust_log: Option<&str>,
    writer: W,
    colour: bool,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = match rust_log {
        Some(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(directives(verbose)),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colour)
        .with_target(verbose > 0)
        .with_filter(filter.and(filter_fn(payload_cap)));
    tracing_subscriber::registry().with(layer)
}

/// Whether an event or span may be shown as far as the payload cap is concerned.
fn payload_cap(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO || !logs_payloads(metadata.target())
}

/// Whether `target` (a module path) belongs to one of [`PAYLOAD_LOGGERS`].
fn logs_payloads(target: &str) -> bool {
    PAYLOAD_LOGGERS.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Everything a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `-v`/`RUST_LOG` let through of one event per interesting target and level.
    fn shown(verbose: u8, rust_log: Option<&str>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(verbose, rust_log, move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "bollard::docker", "SECRET create-container body");
            tracing::trace!(target: "bollard::docker", "SECRET request bytes");
            tracing::debug!(target: "bollard", "SECRET crate root");
            tracing::trace!(target: "h2::codec::framed_write", "SECRET frame");
            tracing::trace!(target: "hyper::proto::h1", "SECRET header");
            tracing::debug!(target: "hyper_util::client::legacy", "SECRET pool");
            tracing::trace!(target: "rustls::client::hs", "SECRET handshake");
            tracing::info!(target: "bollard::docker", "bollard-info-shown");
            tracing::debug!(target: "bottle_core::lifecycle", "ours-debug-shown");
            tracing::debug!(target: "bollardish", "not-bollard-shown");
        });
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn no_filter_shows_what_dependencies_log_below_info() {
        for (verbose, rust_log) in [
            (2, None),
            (7, None),
            (0, Some("trace")),
            (0, Some("debug")),
            (0, Some("bollard=trace,h2=trace,hyper=trace,rustls=trace")),
            (0, Some("bollard::docker=trace")),
            (0, Some("bollard::docker[{payload}]=trace")),
            (2, Some("warn,bollard=trace,hyper_util=trace")),
        ] {
            let out = shown(verbose, rust_log);
            assert!(
                !out.contains("SECRET"),
                "-v x{verbose}, RUST_LOG={rust_log:?}:\n{out}"
            );
        }
    }

    #[test]
    fn the_cap_leaves_everything_else_as_the_filter_says() {
        let out = shown(2, None);
        assert!(out.contains("ours-debug-shown"), "{out}");
        assert!(out.contains("not-bollard-shown"), "{out}");
        assert!(
            out.contains("bollard-info-shown"),
            "info passes the cap: {out}"
        );

        let out = shown(0, Some("bollard=trace"));
        assert!(out.contains("bollard-info-shown"), "{out}");
        assert!(!out.contains("ours-debug-shown"), "{out}");

        let out = shown(0, None);
        assert_eq!(out, "", "only warnings without -v");
    }
}
