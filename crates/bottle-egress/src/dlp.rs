//! Data-loss prevention: the bottle's secrets never leave in a request.
//!
//! Every request on a route whose `dlp` is not `off` is inspected with the
//! [bottle-secrets](bottle_secrets) scanner — the route's detectors and the bottle's known
//! secrets (its env secrets and credentials, raw and encoded) — in the form the client sent
//! it, before the egress injects the route's own credential (which so never counts):
//!
//! - the head ([`inspect_head`]): the URL's path and query (also percent-decoded) and every
//!   header value that is forwarded;
//! - the body ([`Inspected`]), as it streams: each chunk is scanned and only the bytes no match
//!   can still need are forwarded; the rest (a short tail) is held back. A body whose length is
//!   known and at most [`PREFETCH_LIMIT`] is read whole first ([`Inspected::prefetch`]), so a
//!   secret in it stops the request before anything is sent; a longer or open-ended one is
//!   forwarded as it is checked, and a secret found in it fails the upstream request (its
//!   connection or stream is reset) before any byte of the secret has gone;
//! - a `gzip` or `deflate` body is decoded, scanned and forwarded decoded (what leaves is
//!   exactly what was checked); any other `Content-Encoding` (`br`, `zstd`, several) is refused.
//!
//! A refusal is a [`DenyReason`]: `403`, the rule named (never the secret) and an audit record.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bottle_manifest::Route;
use bottle_manifest::route::Dlp;
use bottle_manifest::route::percent_decode;
use bottle_secrets::{MAX_KNOWN_SECRET_LEN, MIN_KNOWN_SECRET_LEN, Scanner, Stream};
use bytes::Bytes;
use http::header::{self, HeaderMap};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::audit::Exchange;
use crate::config::EgressConfig;
use crate::error::ConfigError;
use crate::policy::{DenyReason, RequestPart};

/// A body of known length up to this many bytes is read and checked whole before the request
/// is sent, so a secret in it stops the request; longer bodies are checked as they stream.
pub(crate) const PREFETCH_LIMIT: usize = 1 << 20;

/// Compressed input is decoded this many bytes at a time, so that a decompression bomb never
/// produces more than about a megabyte between two scans.
const DECODE_STEP: usize = 1024;

/// The secrets the bottle knows: the config's `known_secrets` (each must be set and long
/// enough to be told from text), then every route credential whose value can be (a short
/// test token cannot, and is left out). By name, values from `tokens`.
pub(crate) fn known_secrets(
    config: &EgressConfig,
    tokens: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut known = Vec::new();
    for (i, name) in config.known_secrets.iter().enumerate() {
        let field = format!("known_secrets[{i}]");
        let Some(value) = tokens(name.as_str()) else {
            return Err(ConfigError::single(
                field,
                format!(
                    "`{name}` is not set in the egress's environment; pass it to the egress process (e.g. `docker run -e {name}`), or leave it out"
                ),
            ));
        };
        if !(MIN_KNOWN_SECRET_LEN..=MAX_KNOWN_SECRET_LEN).contains(&value.len()) {
            return Err(ConfigError::single(
                field,
                format!(
                    "the value of `{name}` is {} bytes long; a known secret must be {MIN_KNOWN_SECRET_LEN} to {MAX_KNOWN_SECRET_LEN} bytes to be found without false alarms: leave it out",
                    value.len()
                ),
            ));
        }
        known.push((name.as_str().to_owned(), value));
    }
    for route in &config.routes {
        let Some(auth) = &route.auth else { continue };
        let name = auth.token_ref();
        if let Some(value) = tokens(name)
            && (MIN_KNOWN_SECRET_LEN..=MAX_KNOWN_SECRET_LEN).contains(&value.len())
            && !known.iter().any(|(n, _)| n == name)
        {
            known.push((name.to_owned(), value));
        }
    }
    Ok(known)
}

/// One scanner per route (`None` for `dlp: off`); routes with the same rules share one.
pub(crate) fn route_scanners(
    routes: &[Route],
    known: &[(String, String)],
) -> Result<Vec<Option<Scanner>>, ConfigError> {
    // Keyed by the route's setting as written, so a route costs a hash of it, not a list.
    let mut built: HashMap<&Dlp, Scanner> = HashMap::new();
    let mut out = Vec::with_capacity(routes.len());
    for (i, route) in routes.iter().enumerate() {
        if !route.dlp.is_on() {
            out.push(None);
            continue;
        }
        if let Some(scanner) = built.get(&route.dlp) {
            out.push(Some(scanner.clone()));
            continue;
        }
        let mut builder = Scanner::builder();
        builder.detectors(route.dlp.detectors());
        if route.dlp.known_secrets() {
            for (name, value) in known {
                builder.known_secret(name.as_str(), value);
            }
        }
        let scanner = builder
            .build()
            .map_err(|e| ConfigError::single(format!("routes[{i}].dlp"), e.to_string()))?;
        built.insert(&route.dlp, scanner.clone());
        out.push(Some(scanner));
    }
    Ok(out)
}

/// The first secret in the request's URL (path and query, as sent and percent-decoded) or in
/// a header value.
pub(crate) fn inspect_head(
    scanner: &Scanner,
    parts: &http::request::Parts,
) -> Result<(), DenyReason> {
    let found = |rule: &bottle_secrets::Rule, part: RequestPart| DenyReason::SecretInRequest {
        rule: rule.to_string(),
        part,
    };
    let uri = &parts.uri;
    for (text, part) in [
        (Some(uri.path()), RequestPart::Path),
        (uri.query(), RequestPart::Query),
    ] {
        let Some(text) = text else { continue };
        if let Some(m) = scanner.scan(text.as_bytes()).first() {
            return Err(found(m.rule(), part));
        }
        if text.contains('%') {
            let decoded = percent_decode(text);
            if let Some(m) = scanner.scan(decoded.as_bytes()).first() {
                return Err(found(m.rule(), part));
            }
        }
    }
    for (name, value) in &parts.headers {
        if let Some(m) = scanner.scan(value.as_bytes()).first() {
            return Err(found(
                m.rule(),
                RequestPart::Header(name.as_str().to_owned()),
            ));
        }
    }
    Ok(())
}

/// How a body arrives, for the scanner.
enum Coding {
    Identity,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
}

/// Why a body stopped: the client's own error, or DLP's refusal.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Reading the client's body failed.
    Client(hyper::Error),
    /// DLP refused the body; the upstream request fails before the secret's bytes go.
    Blocked(DenyReason),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Client(e) => write!(f, "reading the client's body failed: {e}"),
            BodyError::Blocked(reason) => write!(f, "DLP refused the body ({})", reason.code()),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Client(e) => Some(e),
            BodyError::Blocked(_) => None,
        }
    }
}

/// A request body on its way upstream, checked as it streams (or passed through as is on a
/// route with `dlp: off`).
pub(crate) struct Inspected {
    inner: Incoming,
    /// `None`: nothing is inspected.
    scan: Option<Scan>,
    /// Released frames, ready to go upstream.
    ready: VecDeque<Frame<Bytes>>,
    ready_bytes: usize,
    /// The client's body failed during [`Inspected::prefetch`]: the upstream request fails
    /// on it once `ready` is sent.
    ready_error: Option<BodyError>,
    /// The inner body has ended (and everything it held is in `ready`).
    done: bool,
}

struct Scan {
    scanner: Scanner,
    stream: Stream,
    coding: Coding,
    encoding: String,
    /// Compressed bytes of the current frame not decoded yet.
    input: Bytes,
    /// Scanned bytes not yet released (at most the scanner's hold-back after each chunk).
    held: Vec<u8>,
    /// The request's audit record, marked refused when the body is blocked.
    exchange: Option<Arc<Exchange>>,
    /// The refusal, once the body is blocked: what the upstream request's error means (an
    /// HTTP/2 reset does not carry the body's error).
    blocked: Arc<OnceLock<DenyReason>>,
}

impl Inspected {
    /// `body` checked by `scanner` (`None`: passed through). A compressed body is decoded and
    /// its `Content-Encoding` and `Content-Length` removed from `headers`; an encoding that
    /// cannot be decoded is refused.
    pub(crate) fn new(
        inner: Incoming,
        scanner: Option<&Scanner>,
        headers: &mut HeaderMap,
        exchange: Option<Arc<Exchange>>,
    ) -> Result<Inspected, DenyReason> {
        let scan = match scanner {
            None => None,
            Some(scanner) => {
                let mut encodings = headers.get_all(header::CONTENT_ENCODING).iter();
                let (first, second) = (encodings.next(), encodings.next());
                let encoding = first
                    .map(|v| {
                        String::from_utf8_lossy(v.as_bytes())
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default();
                let refuse = |why| DenyReason::BodyNotInspectable {
                    encoding: encoding.clone(),
                    why,
                };
                let coding = match encoding.as_str() {
                    _ if second.is_some() || encoding.contains(',') => {
                        return Err(refuse("has several encodings"));
                    }
                    "" | "identity" => Coding::Identity,
                    "gzip" | "x-gzip" => {
                        Coding::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new())))
                    }
                    "deflate" => {
                        Coding::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
                    }
                    "br" | "zstd" => {
                        return Err(refuse(
                            "is compressed with a codec the egress does not decode",
                        ));
                    }
                    _ => return Err(refuse("has an unknown encoding")),
                };
                if !matches!(coding, Coding::Identity) {
                    // What goes upstream is the decoded body: exactly what was checked.
                    headers.remove(header::CONTENT_ENCODING);
                    headers.remove(header::CONTENT_LENGTH);
                }
                Some(Scan {
                    scanner: scanner.clone(),
                    stream: scanner.stream(),
                    coding,
                    encoding,
                    input: Bytes::new(),
                    held: Vec::new(),
                    exchange,
                    blocked: Arc::new(OnceLock::new()),
                })
            }
        };
        Ok(Inspected {
            inner,
            scan,
            ready: VecDeque::new(),
            ready_bytes: 0,
            ready_error: None,
            done: false,
        })
    }

    /// Where the refusal is kept once the body is blocked (`None` when nothing is inspected):
    /// a failed upstream request is this refusal when it is set.
    pub(crate) fn blocked(&self) -> Option<Arc<OnceLock<DenyReason>>> {
        self.scan.as_ref().map(|scan| scan.blocked.clone())
    }

    /// Reads and checks the body ahead while its announced length is at most
    /// [`PREFETCH_LIMIT`]: a secret in such a body is refused before the request is sent.
    /// Other bodies are checked as they stream.
    pub(crate) async fn prefetch(&mut self) -> Result<(), DenyReason> {
        let small = self
            .inner
            .size_hint()
            .exact()
            .is_some_and(|n| n <= PREFETCH_LIMIT as u64);
        if self.scan.is_none() || !small {
            return Ok(());
        }
        while !self.done && self.ready_bytes < PREFETCH_LIMIT {
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(()) => {}
                Err(BodyError::Blocked(reason)) => return Err(reason),
                // The client's body broke: let the upstream request fail on it.
                Err(e @ BodyError::Client(_)) => {
                    self.ready_error = Some(e);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Moves one step of the inner body into `ready`: decodes, scans and releases what is
    /// safe. `Ready(Ok(()))` after each step.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BodyError>> {
        let Some(scan) = &mut self.scan else {
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Err(BodyError::Client(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    self.push(frame);
                    Poll::Ready(Ok(()))
                }
            };
        };
        if !scan.input.is_empty() {
            let step = scan.input.split_to(scan.input.len().min(DECODE_STEP));
            let decoded = scan.decode(&step)?;
            let released = scan.check(&decoded)?;
            self.push_data(released);
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(BodyError::Client(e))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    if matches!(scan.coding, Coding::Identity) {
                        let released = scan.check(&data)?;
                        self.push_data(released);
                    } else {
                        scan.input = data;
                    }
                    Poll::Ready(Ok(()))
                }
                Err(frame) => {
                    // Trailers end the body: what they hold is checked too.
                    if let Some(trailers) = frame.trailers_ref() {
                        for (name, value) in trailers {
                            if let Some(m) = scan.scanner.scan(value.as_bytes()).first() {
                                return Poll::Ready(Err(scan.block(DenyReason::SecretInRequest {
                                    rule: m.rule().to_string(),
                                    part: RequestPart::Trailer(name.as_str().to_owned()),
                                })));
                            }
                        }
                    }
                    let rest = scan.end()?;
                    self.push_data(rest);
                    self.push(frame);
                    Poll::Ready(Ok(()))
                }
            },
            Poll::Ready(None) => {
                let rest = scan.end()?;
                self.push_data(rest);
                self.done = true;
                Poll::Ready(Ok(()))
            }
        }
    }

    fn push_data(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.push(Frame::data(Bytes::from(bytes)));
        }
    }

    fn push(&mut self, frame: Frame<Bytes>) {
        if let Some(data) = frame.data_ref() {
            self.ready_bytes += data.len();
        }
        self.ready.push_back(frame);
    }
}

impl Scan {
    /// The decoded bytes of `compressed`.
    fn decode(&mut self, compressed: &[u8]) -> Result<Vec<u8>, BodyError> {
        let written = match &mut self.coding {
            Coding::Identity => return Ok(compressed.to_vec()),
            Coding::Gzip(d) => d
                .write_all(compressed)
                .map(|()| std::mem::take(d.get_mut())),
            Coding::Deflate(d) => d
                .write_all(compressed)
                .map(|()| std::mem::take(d.get_mut())),
        };
        written.map_err(|_| self.undecodable())
    }

    fn undecodable(&mut self) -> BodyError {
        let encoding = self.encoding.clone();
        self.block(DenyReason::BodyNotInspectable {
            encoding,
            why: "does not decode",
        })
    }

    /// Scans `bytes` (the next of the stream) and returns what may now be released.
    fn check(&mut self, bytes: &[u8]) -> Result<Vec<u8>, BodyError> {
        let feed = self.stream.feed(bytes);
        if let Some(m) = feed.matches().first() {
            let rule = m.rule().to_string();
            return Err(self.block(DenyReason::SecretInRequest {
                rule,
                part: RequestPart::Body,
            }));
        }
        self.held.extend_from_slice(bytes);
        let release = self.held.len() - feed.held_back();
        Ok(self.held.drain(..release).collect())
    }

    /// The end of the body: decoder and scanner decide what they still hold; everything else
    /// is released.
    fn end(&mut self) -> Result<Vec<u8>, BodyError> {
        let tail = match &mut self.coding {
            Coding::Identity => Ok(Vec::new()),
            Coding::Gzip(d) => d.try_finish().map(|()| std::mem::take(d.get_mut())),
            Coding::Deflate(d) => d.try_finish().map(|()| std::mem::take(d.get_mut())),
        };
        let tail = tail.map_err(|_| self.undecodable())?;
        let mut released = self.check(&tail)?;
        let stream = std::mem::replace(&mut self.stream, self.scanner.stream());
        if let Some(m) = stream.finish().first() {
            let rule = m.rule().to_string();
            return Err(self.block(DenyReason::SecretInRequest {
                rule,
                part: RequestPart::Body,
            }));
        }
        released.append(&mut self.held);
        Ok(released)
    }

    /// Marks the request's audit record refused for `reason`.
    fn block(&mut self, reason: DenyReason) -> BodyError {
        tracing::debug!(reason = reason.code(), "DLP refused a request body");
        if let Some(ex) = &self.exchange {
            ex.set_denied();
            ex.set_reason(reason.code());
        }
        let _ = self.blocked.set(reason.clone());
        BodyError::Blocked(reason)
    }
}

impl Body for Inspected {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.ready.pop_front() {
                if let Some(data) = frame.data_ref() {
                    this.ready_bytes -= data.len();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Some(e) = this.ready_error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    // Nothing more goes: the upstream request fails here.
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && (self.done || (self.scan.is_none() && self.inner.is_end_stream()))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.scan {
            // The same bytes as the client's (identity) body, or the decoded ones (unknown).
            Some(scan) if !matches!(scan.coding, Coding::Identity) => SizeHint::default(),
            _ => {
                let inner = self.inner.size_hint();
                let ours =
                    self.ready_bytes as u64 + self.scan.as_ref().map_or(0, |s| s.held.len() as u64);
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + ours);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + ours);
                }
                hint
            }
        }
    }
}
