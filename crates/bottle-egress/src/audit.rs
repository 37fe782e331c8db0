//! The audit log: one JSON object per decision.
//!
//! Events carry the host, method, path (never the query, which can hold secrets), the route,
//! the decision and reason, the status, bytes each way and the duration — never a header value
//! and so never a credential.

use std::io::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Instant;

use bottle_manifest::LogMode;
use serde::Serialize;
use time::OffsetDateTime;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When the decision was made (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The target host (and port when not the default).
    pub host: String,
    /// The request method (`CONNECT` for tunnel decisions).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The route's host pattern, when a route allowed the request.
    pub route: Option<String>,
    /// `allow` or `deny`.
    pub decision: Verdict,
    /// The deny reason code, or an upstream error, if any.
    pub reason: Option<String>,
    /// The status sent to the client (0 if the connection was closed without one).
    pub status: u16,
    /// Body bytes from the client to the upstream.
    pub bytes_up: u64,
    /// Body bytes from the upstream to the client.
    pub bytes_down: u64,
    /// Milliseconds from the decision to the end of the response body.
    pub duration_ms: u64,
    /// The client's address; set on a refused connection (`client_not_allowed`), whose
    /// `host`, `method` and `path` are empty because nothing was read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<std::net::IpAddr>,
}

/// An audit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forwarded.
    Allow,
    /// Refused.
    Deny,
}

/// Where audit events go. Implementations must be cheap: they run on the request path.
pub trait AuditSink: Send + Sync + 'static {
    /// Record one event.
    fn record(&self, event: &AuditEvent);
}

/// Writes JSON lines to a writer (the binary uses stdout), one `write` per event.
#[derive(Debug)]
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    /// Log to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send + 'static> AuditSink for JsonLines<W> {
    fn record(&self, event: &AuditEvent) {
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // An audit write failure must not take the proxy down; tracing reports it.
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}

/// One exchange being audited; the event is written when the last handle is dropped, i.e.
/// when both bodies have finished (or been abandoned), so bytes and duration are complete.
pub(crate) struct Exchange {
    pub(crate) sink: Arc<dyn AuditSink>,
    pub(crate) mode: LogMode,
    pub(crate) host: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) route: Option<String>,
    pub(crate) denied: std::sync::atomic::AtomicBool,
    pub(crate) reason: Mutex<Option<String>>,
    pub(crate) status: AtomicU16,
    pub(crate) bytes_up: AtomicU64,
    pub(crate) bytes_down: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) time: OffsetDateTime,
}

impl Exchange {
    /// Turn an allowed exchange into a refused one (the upstream address was refused).
    pub(crate) fn set_denied(&self) {
        self.denied.store(true, Ordering::Relaxed);
    }

    pub(crate) fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub(crate) fn set_reason(&self, reason: impl Into<String>) {
        *self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason.into());
    }

    pub(crate) fn add_up(&self, n: u64) {
        self.bytes_up.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_down(&self, n: u64) {
        self.bytes_down.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let verdict = if self.denied.load(Ordering::Relaxed) {
            Verdict::Deny
        } else {
            Verdict::Allow
        };
        let wanted = match self.mode {
            LogMode::Off => false,
            LogMode::Blocks => verdict == Verdict::Deny,
            LogMode::Full => true,
        };
        if !wanted {
            return;
        }
        let event = AuditEvent {
            time: self.time,
            host: std::mem::take(&mut self.host),
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            route: self.route.take(),
            decision: verdict,
            reason: self
                .reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
            status: self.status.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            client: None,
        };
        self.sink.record(&event);
    }
}
