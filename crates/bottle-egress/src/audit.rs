//! The audit log: one JSON object per decision.
//!
//! Events carry the host, method, path (never the query, which can hold secrets), the route,
//! the decision and reason, the status, bytes each way, the duration and the client's address
//! — never a header value and so never a credential.
//!
//! Refusals repeated by one client for one reason are written once per [`REPEAT_WINDOW`]: the
//! first is written as it happens, the rest are counted and written as one summary record
//! (`repeated`) when the window closes, so that a looping agent cannot fill the host's disk
//! through the egress's log.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bottle_manifest::LogMode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The client's address. On a refused connection (`client_not_allowed`) `host`, `method`
    /// and `path` are empty, because nothing was read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    /// Set on a summary record: this many refusals of the same client for the same reason
    /// followed the one written within [`REPEAT_WINDOW`]; the other fields are the last one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
}

/// An audit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forwarded.
    Allow,
    /// Refused.
    Deny,
}

/// The hosts an audit log refused, for a summary after a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedHost {
    /// The host (and port when not the default).
    pub host: String,
    /// How many requests to it were refused.
    pub count: u64,
    /// The deny reasons (`host_not_allowed`, `path_not_allowed`, ...), sorted, each once.
    pub reasons: Vec<String>,
}

/// Reads an audit log (JSON lines, as [`JsonLines`] writes them; other lines are skipped) and
/// returns each refused host with its count, most refused first. A summary record counts as
/// the refusals it stands for; it carries the last host refused for its reason, so when one
/// client was refused several hosts for one reason within [`REPEAT_WINDOW`], the split of that
/// window's count between them is approximate. Refused connections read nothing and name no
/// host: they are left out.
pub fn refused_hosts(log: &str) -> Vec<RefusedHost> {
    let mut by_host: HashMap<String, (u64, Vec<String>)> = HashMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<AuditEvent>(line.trim()) else {
            continue;
        };
        if event.decision != Verdict::Deny || event.host.is_empty() {
            continue;
        }
        let entry = by_host.entry(event.host).or_default();
        entry.0 += event.repeated.unwrap_or(1);
        if let Some(reason) = event.reason
            && !entry.1.contains(&reason)
        {
            entry.1.push(reason);
        }
    }
    let mut hosts: Vec<RefusedHost> = by_host
        .into_iter()
        .map(|(host, (count, mut reasons))| {
            reasons.sort();
            RefusedHost {
                host,
                count,
                reasons,
            }
        })
        .collect();
    hosts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.host.cmp(&b.host)));
    hosts
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

/// How long refusals of one client for one reason are counted instead of written.
pub(crate) const REPEAT_WINDOW: Duration = Duration::from_secs(10);
/// Past this many (client, reason) windows, all are closed at once (their summaries written).
const REPEAT_KEYS: usize = 1024;

/// The sink behind the rate limit of repeated refusals.
pub(crate) struct Audit {
    sink: Arc<dyn AuditSink>,
    repeats: Mutex<HashMap<(Option<IpAddr>, String), Repeats>>,
}

/// A window of refusals of one client for one reason, opened by the one that was written.
struct Repeats {
    since: Instant,
    count: u64,
    last: Option<AuditEvent>,
}

impl Repeats {
    fn summary(self) -> Option<AuditEvent> {
        let mut last = self.last?;
        last.repeated = Some(self.count);
        Some(last)
    }
}

impl Audit {
    pub(crate) fn new(sink: Arc<dyn AuditSink>) -> Self {
        Audit {
            sink,
            repeats: Mutex::default(),
        }
    }

    fn repeats(&self) -> std::sync::MutexGuard<'_, HashMap<(Option<IpAddr>, String), Repeats>> {
        self.repeats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Write `event`, unless it repeats a refusal written within the window (then it is
    /// counted).
    pub(crate) fn record(&self, event: AuditEvent) {
        self.record_at(event, Instant::now());
    }

    fn record_at(&self, event: AuditEvent, now: Instant) {
        let (Verdict::Deny, Some(reason)) = (event.decision, &event.reason) else {
            self.sink.record(&event);
            return;
        };
        let key = (event.client, reason.clone());
        let mut closed = Vec::new();
        {
            let mut repeats = self.repeats();
            if let Some(open) = repeats.get_mut(&key)
                && now.duration_since(open.since) < REPEAT_WINDOW
            {
                open.count += 1;
                open.last = Some(event);
                return;
            }
            if let Some(old) = repeats.remove(&key) {
                closed.extend(old.summary());
            }
            if repeats.len() >= REPEAT_KEYS {
                closed.extend(repeats.drain().filter_map(|(_, r)| r.summary()));
            }
            repeats.insert(
                key,
                Repeats {
                    since: now,
                    count: 0,
                    last: None,
                },
            );
        }
        for summary in &closed {
            self.sink.record(summary);
        }
        self.sink.record(&event);
    }

    /// Close the windows older than [`REPEAT_WINDOW`], writing their summaries.
    pub(crate) fn flush_expired(&self) {
        self.flush(|open| open.since.elapsed() >= REPEAT_WINDOW);
    }

    /// Close every window (at shutdown), writing their summaries.
    pub(crate) fn flush_all(&self) {
        self.flush(|_| true);
    }

    fn flush(&self, closes: impl Fn(&Repeats) -> bool) {
        let closed: Vec<AuditEvent> = {
            let mut repeats = self.repeats();
            let keys: Vec<_> = repeats
                .iter()
                .filter(|(_, r)| closes(r))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| repeats.remove(k))
                .filter_map(Repeats::summary)
                .collect()
        };
        for summary in &closed {
            self.sink.record(summary);
        }
    }
}

/// One exchange being audited; the event is written when the last handle is dropped, i.e.
/// when both bodies have finished (or been abandoned), so bytes and duration are complete.
pub(crate) struct Exchange {
    pub(crate) audit: Arc<Audit>,
    pub(crate) client: Option<IpAddr>,
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
            client: self.client,
            repeated: None,
        };
        self.audit.record(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<AuditEvent>>);

    impl AuditSink for Kept {
        fn record(&self, event: &AuditEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    fn refusal(client: &str, reason: &str, host: &str) -> AuditEvent {
        AuditEvent {
            time: OffsetDateTime::UNIX_EPOCH,
            host: host.to_owned(),
            method: "CONNECT".to_owned(),
            path: String::new(),
            route: None,
            decision: Verdict::Deny,
            reason: Some(reason.to_owned()),
            status: 403,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            client: Some(client.parse().unwrap()),
            repeated: None,
        }
    }

    #[test]
    fn refused_hosts_are_read_back_from_the_log_with_their_counts_and_reasons() {
        let kept = Arc::new(Kept::default());
        let audit = Audit::new(kept.clone());
        let t0 = Instant::now();
        // A loop on one host: one record, then a summary of the other four.
        for _ in 0..5 {
            audit.record_at(refusal("10.0.0.2", "host_not_allowed", "example.org"), t0);
        }
        audit.record_at(
            refusal("10.0.0.2", "path_not_allowed", "api.anthropic.com"),
            t0,
        );
        let mut allowed = refusal("10.0.0.2", "x", "api.anthropic.com");
        allowed.decision = Verdict::Allow;
        allowed.reason = None;
        audit.record_at(allowed, t0);
        // A refused connection reads nothing: no host.
        audit.record_at(refusal("172.17.0.1", "client_not_allowed", ""), t0);
        audit.flush_all();

        let mut log = String::from("not json: a line the binary's tracing wrote\n");
        for e in kept.0.lock().unwrap().iter() {
            log.push_str(&serde_json::to_string(e).unwrap());
            log.push('\n');
        }
        assert_eq!(
            refused_hosts(&log),
            [
                RefusedHost {
                    host: "example.org".into(),
                    count: 5,
                    reasons: vec!["host_not_allowed".into()],
                },
                RefusedHost {
                    host: "api.anthropic.com".into(),
                    count: 1,
                    reasons: vec!["path_not_allowed".into()],
                },
            ]
        );
    }

    #[test]
    fn repeated_refusals_are_counted_and_summarized_once_per_window() {
        let kept = Arc::new(Kept::default());
        let audit = Audit::new(kept.clone());
        let t0 = Instant::now();
        for i in 0..1000 {
            audit.record_at(
                refusal("10.0.0.2", "host_not_allowed", &format!("x{i}.invalid")),
                t0,
            );
        }
        // Another client, another reason: windows of their own.
        audit.record_at(refusal("10.0.0.3", "host_not_allowed", "a.invalid"), t0);
        audit.record_at(refusal("10.0.0.2", "git_push", "git.example.com"), t0);
        let hosts = |k: &Kept| -> Vec<(String, Option<u64>)> {
            k.0.lock()
                .unwrap()
                .iter()
                .map(|e| (e.host.clone(), e.repeated))
                .collect()
        };
        assert_eq!(
            hosts(&kept),
            [
                ("x0.invalid".to_owned(), None),
                ("a.invalid".to_owned(), None),
                ("git.example.com".to_owned(), None),
            ]
        );
        // The next window opens with a written record, after the summary of the last one.
        audit.record_at(
            refusal("10.0.0.2", "host_not_allowed", "late.invalid"),
            t0 + REPEAT_WINDOW,
        );
        assert_eq!(
            hosts(&kept)[3..],
            [
                ("x999.invalid".to_owned(), Some(999)),
                ("late.invalid".to_owned(), None),
            ]
        );
        // Allowed records are never held back; closing writes what is still counted.
        audit.record_at(
            refusal("10.0.0.2", "host_not_allowed", "again.invalid"),
            t0 + REPEAT_WINDOW,
        );
        audit.flush_all();
        assert_eq!(hosts(&kept)[5..], [("again.invalid".to_owned(), Some(1))]);
        audit.flush_all();
        assert_eq!(
            hosts(&kept).len(),
            6,
            "a window with no repeats writes no summary"
        );
    }
}
