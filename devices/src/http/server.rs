//! [`Server`]: HTTP/1.1 over the flows of a [`Conduit`], parsed with `httparse`, framed as
//! RFC 9112 section 6 says.
//!
//! One task per connection; each reads requests in turn (keep-alive and pipelining), answers
//! them with the handler, and closes the connection on `Connection: close`, on a protocol error
//! or when the peer is idle for too long. Bad input gets a clean error response, never a
//! panic, and then the connection is closed:
//!
//! - 400 for a malformed request line or field, a bare CR or LF, obsolete line folding, a
//!   missing (HTTP/1.1) or repeated `Host`, a repeated or malformed `Content-Length`,
//!   `Transfer-Encoding` together with `Content-Length` or in an HTTP/1.0 request, a list of
//!   transfer codings that does not end in exactly one `chunked`, a bad chunk;
//! - 501 for a transfer coding the server does not implement before `chunked` (`gzip, chunked`);
//! - 431 for a head beyond [`Limits::max_head`] bytes or [`Limits::max_headers`] fields;
//! - 413 for a body beyond [`Limits::max_body`];
//! - 503 when the bodies being read would exceed the server's memory budget.
//!
//! Requests without `Content-Length` or `Transfer-Encoding` have no body, so no bytes of one
//! request can be read as another (request smuggling). After an error the server finishes its
//! side and reads and discards what the client still sends, for a while, before it lets the
//! connection go: a client still sending its request sees the response and the close rather
//! than a reset or a stall. Every wait is bounded: the head must arrive within
//! [`Limits::idle_timeout_ns`] of its first byte, and each read or write of a body or a
//! response must make progress within it.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use crate::conduit::{Conduit, ConduitError};
use crate::http::{HttpServer, Request, Response};
use crate::limit::{in_range, LimitError};
use crate::tcp::{Flow, Listener};

/// How much an error's connection reads and discards before closing, at most.
const LINGER_BYTES: usize = 1024 * 1024;
/// How long an error's connection reads and discards before closing, at most, in nanoseconds.
const LINGER_NS: u64 = 2_000_000_000;
/// How much a connection asks of its flow per read.
const READ_CHUNK: usize = 4096;
/// A connection's read buffer is given back to the heap beyond this, between requests.
const KEPT_BUFFER: usize = 16 * 1024;
/// Responses with bodies larger than this are written in two parts (head, then body) rather
/// than copied into one buffer.
const COPIED_BODY: usize = 16 * 1024;

/// `Limits` bound what one connection may make the server hold or wait for (the `http-*`
/// keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest request line plus header section (or trailer section), in bytes (beyond:
    /// 431).
    pub max_head: usize,
    /// The most header fields in one request (beyond: 431).
    pub max_headers: usize,
    /// The largest request body, in bytes (beyond: 413).
    pub max_body: usize,
    /// How long a connection may make no progress: the whole head must arrive within it, and
    /// each read of a body or write of a response must move within it (nanoseconds).
    pub idle_timeout_ns: u64,
}

impl Default for Limits {
    /// 8 KiB of head, 64 header fields, 1 MiB of body, 30 s without progress.
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
            idle_timeout_ns: 30_000_000_000,
        }
    }
}

impl Limits {
    /// `from_keys(max_head, max_headers, max_body, idle_timeout_s)` are the limits the keys
    /// `http-max-head`, `http-max-headers`, `http-max-body` and `http-idle-timeout` give, or
    /// the first one out of range.
    pub fn from_keys(
        max_head: i64,
        max_headers: i64,
        max_body: i64,
        idle_timeout_s: i64,
    ) -> Result<Limits, LimitError> {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Limits {
            max_head: size(in_range("http-max-head", max_head, 256, 1 << 20)?),
            max_headers: size(in_range("http-max-headers", max_headers, 1, 1024)?),
            max_body: size(in_range("http-max-body", max_body, 0, 1 << 30)?),
            idle_timeout_ns: in_range("http-idle-timeout", idle_timeout_s, 1, 86_400)?
                * 1_000_000_000,
        })
    }
}

/// `BodyBudget` is how many bytes of request bodies the server's connections may hold at
/// once: a quarter of a fixed heap, unbounded where the heap grows on demand.
#[derive(Debug)]
struct BodyBudget {
    left: Cell<usize>,
}

impl BodyBudget {
    fn new() -> BodyBudget {
        let left = match mirage_runtime::resources::heap() {
            Some(mirage_runtime::Heap {
                size: Some(size), ..
            }) => size / 4,
            _ => usize::MAX,
        };
        BodyBudget {
            left: Cell::new(left),
        }
    }

    /// `take(n)` reserves `n` bytes, if the budget has them.
    fn take(&self, n: usize) -> bool {
        match self.left.get().checked_sub(n) {
            Some(left) => {
                self.left.set(left);
                true
            }
            None => false,
        }
    }

    /// `give(n)` returns `n` bytes reserved earlier.
    fn give(&self, n: usize) {
        self.left.set(self.left.get().saturating_add(n));
    }
}

/// `Server<C>` serves HTTP/1.1 over conduit `C` (Cohttp's `Server.Make (Conduit)`).
#[derive(Clone, Debug)]
pub struct Server<C> {
    conduit: C,
    limits: Limits,
}

impl<C: Conduit> Server<C> {
    /// `new(conduit)` is a server over `conduit` with the default [`Limits`].
    pub fn new(conduit: C) -> Server<C> {
        Server::with_limits(conduit, Limits::default())
    }

    /// `with_limits(conduit, limits)` is a server over `conduit` bounded by `limits`.
    pub fn with_limits(conduit: C, limits: Limits) -> Server<C> {
        Server { conduit, limits }
    }
}

impl<C: Conduit + 'static> HttpServer for Server<C>
where
    C::Flow: 'static,
{
    async fn serve<H, F>(&self, port: u16, handler: H) -> Result<(), ConduitError>
    where
        H: Fn(Request) -> F + Clone + 'static,
        F: Future<Output = Response>,
    {
        let listener = self.conduit.listen_tcp(port).await?;
        log::info!(target: "http", "listening on TCP port {port}");
        let budget = Rc::new(BodyBudget::new());
        loop {
            match listener.accept().await {
                Ok(flow) => {
                    let handler = handler.clone();
                    let limits = self.limits;
                    let budget = budget.clone();
                    mirage_runtime::spawn(async move {
                        connection(flow, handler, limits, &budget).await;
                    });
                }
                // Out of descriptors or buffers: existing connections go on; retry shortly.
                Err(e) => {
                    log::warn!(target: "http", "accept failed: {e}");
                    mirage_runtime::sleep_until(mirage_runtime::executor::now_ns() + 10_000_000)
                        .await;
                }
            }
        }
    }
}

/// `Outcome` is what reading one request gave.
enum Outcome {
    /// A whole request, and whether the connection stays open after its response.
    Request(Request, bool),
    /// An error to answer with this status before closing.
    Reject(u16),
    /// The peer closed, went silent or failed: close without answering.
    Gone,
}

/// `within(timeout_ns, future)` is `future`'s output, or `None` if it takes longer than
/// `timeout_ns`.
async fn within<F: Future>(timeout_ns: u64, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut timer = pin!(mirage_runtime::sleep_until(
        mirage_runtime::executor::now_ns().saturating_add(timeout_ns)
    ));
    poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => timer.as_mut().poll(cx).map(|()| None),
    })
    .await
}

/// `connection(flow, handler, limits, budget)` serves the requests of one connection until it
/// closes.
async fn connection<L, H, F>(flow: L, handler: H, limits: Limits, budget: &BodyBudget)
where
    L: Flow,
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut buf = Vec::new();
    loop {
        match read_request(&flow, &mut buf, &limits, budget).await {
            Outcome::Request(request, keep_alive) => {
                let head_only = request.method == "HEAD";
                let reserved = request.body.len();
                let response = handler(request).await;
                budget.give(reserved);
                if !send(&flow, &response, keep_alive, head_only, &limits).await || !keep_alive {
                    break;
                }
                if buf.capacity() > KEPT_BUFFER && buf.len() <= KEPT_BUFFER {
                    buf.shrink_to(KEPT_BUFFER);
                }
            }
            Outcome::Reject(status) => {
                let body = format!("{} {}\n", status, reason(status));
                let response = Response::text(status, &body);
                if send(&flow, &response, false, false, &limits).await {
                    linger(&flow).await;
                }
                break;
            }
            Outcome::Gone => break,
        }
    }
    // The peer may already be gone: closing is best effort.
    let _ = flow.close().await;
}

/// `send(flow, response, keep_alive, head_only, limits)` writes the response, and is false if
/// the peer failed or stopped reading for the idle timeout.
async fn send<L: Flow>(
    flow: &L,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
    limits: &Limits,
) -> bool {
    let mut head = encode_head(response, keep_alive);
    let body: &[u8] = if head_only { &[] } else { &response.body };
    if body.len() <= COPIED_BODY {
        head.extend_from_slice(body);
        return write_within(flow, &head, limits).await;
    }
    write_within(flow, &head, limits).await && write_within(flow, body, limits).await
}

/// `write_within(flow, bytes, limits)` writes `bytes`, and is false if the peer failed or
/// took none of them for the idle timeout.
async fn write_within<L: Flow>(flow: &L, bytes: &[u8], limits: &Limits) -> bool {
    matches!(
        within(limits.idle_timeout_ns, flow.write(bytes)).await,
        Some(Ok(()))
    )
}

/// `linger(flow)` finishes the server's side of a connection it rejected, then reads and
/// discards what the client still sends (for [`LINGER_NS`] and [`LINGER_BYTES`] at most), so
/// that the client can finish sending, read the response and see the close.
async fn linger<L: Flow>(flow: &L) {
    if flow.shutdown().await.is_err() {
        return;
    }
    let deadline = mirage_runtime::executor::now_ns().saturating_add(LINGER_NS);
    let mut scratch = [0u8; 512];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let left = deadline.saturating_sub(mirage_runtime::executor::now_ns());
        match within(left, flow.read(&mut scratch)).await {
            Some(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
}

/// `read_more(flow, buf, timeout_ns)` appends what `flow` sends next to `buf`; `None` if the
/// peer finished, failed or sent nothing for `timeout_ns`.
async fn read_more<L: Flow>(flow: &L, buf: &mut Vec<u8>, timeout_ns: u64) -> Option<usize> {
    let start = buf.len();
    if buf.try_reserve(READ_CHUNK).is_err() {
        return None;
    }
    buf.resize(start + READ_CHUNK, 0);
    let n = within(timeout_ns, flow.read(&mut buf[start..]))
        .await
        .and_then(Result::ok)
        .unwrap_or(0);
    buf.truncate(start + n);
    (n > 0).then_some(n)
}

/// `line_ending_error(bytes)` is true if `bytes` holds a CR not followed by LF or an LF not
/// preceded by CR (a bare CR or LF, which RFC 9112 lets a server refuse, and which
/// parsers disagree on); a CR at the very end may still get its LF.
fn line_ending_error(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1).is_some_and(|&next| next != b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    })
}

/// `read_request(flow, buf, limits, budget)` reads one request from `flow`, starting with the
/// bytes already in `buf` and leaving there any that follow it (a pipelined request).
async fn read_request<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    limits: &Limits,
    budget: &BodyBudget,
) -> Outcome {
    let mut deadline = None;
    let (request, head_len, version) = loop {
        if !buf.is_empty() {
            let mut headers = alloc::vec![httparse::EMPTY_HEADER; limits.max_headers];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(buf) {
                Ok(httparse::Status::Complete(len)) if len > limits.max_head => {
                    return Outcome::Reject(431)
                }
                Ok(httparse::Status::Complete(len)) => {
                    if line_ending_error(&buf[..len]) {
                        return Outcome::Reject(400);
                    }
                    match convert(&parsed) {
                        Some((request, version)) => break (request, len, version),
                        None => return Outcome::Reject(400),
                    }
                }
                Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
                    return Outcome::Reject(431)
                }
                Ok(httparse::Status::Partial) if line_ending_error(buf) => {
                    return Outcome::Reject(400)
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Outcome::Reject(431),
                Err(_) => return Outcome::Reject(400),
            }
        }
        // The whole head must come within the idle timeout of its first read.
        let now = mirage_runtime::executor::now_ns();
        let deadline = *deadline.get_or_insert(now.saturating_add(limits.idle_timeout_ns));
        if read_more(flow, buf, deadline.saturating_sub(now))
            .await
            .is_none()
        {
            return Outcome::Gone;
        }
    };
    buf.drain(..head_len);
    let framing = match framing(&request, version, limits) {
        Ok(f) => f,
        Err(status) => return Outcome::Reject(status),
    };
    let expects = request
        .header("expect")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
    if expects && framing != Framing::Empty && buf.is_empty() {
        // The client waits for this before it sends the body.
        let sent = within(
            limits.idle_timeout_ns,
            flow.write(b"HTTP/1.1 100 Continue\r\n\r\n"),
        );
        if !matches!(sent.await, Some(Ok(()))) {
            return Outcome::Gone;
        }
    }
    let body = match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(length) => read_sized(flow, buf, length, limits, budget).await,
        Framing::Chunked => read_chunked(flow, buf, limits, budget).await,
    };
    let mut request = request;
    request.body = match body {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    let connection = request.header("connection").map(str::trim);
    let keep_alive = match version {
        0 => connection.is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")),
        _ => !connection.is_some_and(|c| c.eq_ignore_ascii_case("close")),
    };
    Outcome::Request(request, keep_alive)
}

/// `Framing` is how a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No `Content-Length` or `Transfer-Encoding`: no body.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// The chunked transfer coding.
    Chunked,
}

/// `framing(request, version, limits)` is how `request`'s body is delimited (RFC 9112
/// section 6), or the status that refuses it; it also checks `Host` (section 3.2).
fn framing(request: &Request, version: u8, limits: &Limits) -> Result<Framing, u16> {
    let mut length = None;
    let mut codings: Option<Vec<String>> = None;
    let mut hosts = 0;
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("content-length") {
            // Two Content-Length fields, even equal, are two answers to one question.
            if length.replace(value.as_str()).is_some() {
                return Err(400);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let list = codings.get_or_insert_with(Vec::new);
            list.extend(
                value
                    .split(',')
                    .map(|c| c.trim_matches([' ', '\t']))
                    .filter(|c| !c.is_empty())
                    .map(str::to_ascii_lowercase),
            );
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
    }
    if hosts > 1 || (version >= 1 && hosts == 0) {
        return Err(400);
    }
    if let Some(codings) = codings {
        // Both framings at once is how requests are smuggled past proxies; HTTP/1.0 has no
        // transfer codings.
        if length.is_some() || version == 0 {
            return Err(400);
        }
        let chunked = codings.iter().filter(|c| *c == "chunked").count();
        if chunked != 1 || codings.last().map(String::as_str) != Some("chunked") {
            return Err(400);
        }
        if codings.len() > 1 {
            return Err(501);
        }
        return Ok(Framing::Chunked);
    }
    let Some(length) = length else {
        return Ok(Framing::Empty);
    };
    if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
        return Err(400);
    }
    match length.parse::<usize>() {
        Ok(n) if n <= limits.max_body => Ok(Framing::Length(n)),
        _ => Err(413),
    }
}

/// `read_sized(flow, buf, length, limits, budget)` reads a body of `length` bytes, reserved in
/// the body budget (a 503 if it has no room).
async fn read_sized<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    length: usize,
    limits: &Limits,
    budget: &BodyBudget,
) -> Result<Vec<u8>, Outcome> {
    let mut body = Vec::new();
    if !budget.take(length) || body.try_reserve_exact(length).is_err() {
        budget.give(usize::from(body.capacity() >= length) * length);
        return Err(Outcome::Reject(503));
    }
    let taken = |outcome| {
        budget.give(length);
        Err(outcome)
    };
    while buf.len() < length {
        if read_more(flow, buf, limits.idle_timeout_ns).await.is_none() {
            return taken(Outcome::Gone);
        }
    }
    body.extend_from_slice(&buf[..length]);
    buf.drain(..length);
    Ok(body)
}

/// `read_line(flow, buf, limits)` takes one CRLF-terminated line (without the CRLF) off the
/// front of `buf`, reading more as needed; a bare CR or LF is a 400, a line longer than the
/// head limit a 431.
async fn read_line<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<String, Outcome> {
    let mut scanned = 0;
    loop {
        if let Some(at) = buf[scanned..].iter().position(|&b| b == b'\n') {
            let end = scanned + at;
            if end == 0 || buf[end - 1] != b'\r' || buf[..end - 1].contains(&b'\r') {
                return Err(Outcome::Reject(400));
            }
            let line = core::str::from_utf8(&buf[..end - 1])
                .map(String::from)
                .map_err(|_| Outcome::Reject(400))?;
            buf.drain(..=end);
            return Ok(line);
        }
        scanned = buf.len();
        if buf.len() > limits.max_head {
            return Err(Outcome::Reject(431));
        }
        read_more(flow, buf, limits.idle_timeout_ns)
            .await
            .ok_or(Outcome::Gone)?;
    }
}

/// `chunk_size(line)` is the size of a chunk line `SIZE[;extensions]` (RFC 9112 section 7.1:
/// hexadecimal digits, then optional whitespace and extensions), or `None` if malformed or
/// too large to count.
fn chunk_size(line: &str) -> Option<usize> {
    let digits_end = line
        .bytes()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let rest = rest.trim_start_matches([' ', '\t']);
    if digits.is_empty() || !(rest.is_empty() || rest.starts_with(';')) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 15 {
        return None;
    }
    usize::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    )
    .ok()
}

/// `field_line_ok(line)` is true if `line` is a well-formed field line `name: value`: a token
/// name right before the colon, and not an obsolete folded continuation.
fn field_line_ok(line: &str) -> bool {
    let Some((name, _)) = line.split_once(':') else {
        return false;
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `read_chunked(flow, buf, limits, budget)` reads a body in the chunked transfer coding:
/// chunks of `SIZE[;extensions]` CRLF data CRLF, a zero-size chunk, trailer fields (checked,
/// then ignored), CRLF. The body grows within the body budget (a 503 beyond it).
async fn read_chunked<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    limits: &Limits,
    budget: &BodyBudget,
) -> Result<Vec<u8>, Outcome> {
    let mut body: Vec<u8> = Vec::new();
    let refuse = |body: &Vec<u8>, outcome| {
        budget.give(body.len());
        Err(outcome)
    };
    loop {
        let line = match read_line(flow, buf, limits).await {
            Ok(line) => line,
            Err(outcome) => return refuse(&body, outcome),
        };
        let Some(size) = chunk_size(&line) else {
            return refuse(&body, Outcome::Reject(400));
        };
        if size == 0 {
            let (mut bytes, mut fields) = (0, 0);
            loop {
                let line = match read_line(flow, buf, limits).await {
                    Ok(line) => line,
                    Err(outcome) => return refuse(&body, outcome),
                };
                if line.is_empty() {
                    return Ok(body);
                }
                if !field_line_ok(&line) {
                    return refuse(&body, Outcome::Reject(400));
                }
                bytes += line.len() + 2;
                fields += 1;
                if bytes > limits.max_head || fields > limits.max_headers {
                    return refuse(&body, Outcome::Reject(431));
                }
            }
        }
        if body.len().saturating_add(size) > limits.max_body {
            return refuse(&body, Outcome::Reject(413));
        }
        if !budget.take(size) {
            return refuse(&body, Outcome::Reject(503));
        }
        if body.try_reserve(size).is_err() {
            budget.give(size);
            return refuse(&body, Outcome::Reject(503));
        }
        while buf.len() < size + 2 {
            if read_more(flow, buf, limits.idle_timeout_ns).await.is_none() {
                budget.give(size);
                return refuse(&body, Outcome::Gone);
            }
        }
        if &buf[size..size + 2] != b"\r\n" {
            budget.give(size);
            return refuse(&body, Outcome::Reject(400));
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// `convert(parsed)` is the owned request and its minor HTTP version, or `None` if a header
/// value is not text.
fn convert(parsed: &httparse::Request<'_, '_>) -> Option<(Request, u8)> {
    let target = parsed.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(String::from(q))),
        None => (target, None),
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            let value = core::str::from_utf8(h.value).ok()?;
            Some((String::from(h.name), String::from(value)))
        })
        .collect::<Option<Vec<_>>>()?;
    let request = Request {
        method: String::from(parsed.method?),
        path: String::from(path),
        query,
        headers,
        body: Vec::new(),
    };
    Some((request, parsed.version?))
}

/// `reason(status)` is the standard reason phrase of `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// `valid_field(s)` is true if `s` may appear in a header line as is (no CR, LF or NUL), so a
/// handler cannot split the response.
fn valid_field(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// `encode_head(response, keep_alive)` is the response's head on the wire: status line, the
/// handler's valid header fields, `Content-Length` and `Connection`.
fn encode_head(response: &Response, keep_alive: bool) -> Vec<u8> {
    let status = if (100..=999).contains(&response.status) {
        response.status
    } else {
        500
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (name, value) in &response.headers {
        let managed =
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection");
        if !managed && !name.is_empty() && valid_field(name) && valid_field(value) {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        response.body.len()
    ));
    head.into_bytes()
}

/// `encode(response, keep_alive, head_only)` is the whole response on the wire, the body left
/// out for `HEAD`.
#[cfg(test)]
fn encode(response: &Response, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let mut bytes = encode_head(response, keep_alive);
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use core::cell::RefCell;
    use core::net::{Ipv4Addr, SocketAddrV4};

    use crate::tcp::TcpError;
    use alloc::string::ToString;

    /// A flow that delivers `input` in the given pieces, then the end, and records writes.
    struct Script {
        input: RefCell<VecDeque<Vec<u8>>>,
        output: RefCell<Vec<u8>>,
    }

    impl Flow for &Script {
        fn peer(&self) -> SocketAddrV4 {
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)
        }

        async fn read(&self, buf: &mut [u8]) -> Result<usize, TcpError> {
            let Some(mut piece) = self.input.borrow_mut().pop_front() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.input.borrow_mut().push_front(piece.split_off(n));
            }
            Ok(n)
        }

        async fn write(&self, data: &[u8]) -> Result<(), TcpError> {
            self.output.borrow_mut().extend_from_slice(data);
            Ok(())
        }

        async fn shutdown(&self) -> Result<(), TcpError> {
            Ok(())
        }

        async fn close(self) -> Result<(), TcpError> {
            Ok(())
        }
    }

    struct Instant;

    impl mirage_runtime::Platform for Instant {
        fn now_ns(&self) -> u64 {
            0
        }

        fn wait(&self, _: Option<u64>) {}
    }

    /// `serve(pieces)` is what the server answers to `pieces`; the handler echoes the method,
    /// the path and the body.
    fn serve(pieces: &[&[u8]]) -> String {
        let script = Script {
            input: RefCell::new(pieces.iter().map(|p| p.to_vec()).collect()),
            output: RefCell::new(Vec::new()),
        };
        let handler = |r: Request| async move {
            let mut text = format!("{} {} ", r.method, r.path).into_bytes();
            text.extend_from_slice(&r.body);
            Response::new(200, "text/plain", text)
        };
        mirage_runtime::block_on(
            &Instant,
            connection(&script, handler, Limits::default(), &BodyBudget::new()),
        );
        String::from_utf8(script.output.into_inner()).unwrap()
    }

    #[test]
    fn bodies_by_length_and_chunked_across_reads() {
        let out = serve(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
            b"loPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r",
            b"\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
        ]);
        assert!(out.contains("Content-Length: 13\r\nConnection: keep-alive\r\n\r\nPOST /a hello"));
        assert!(out.ends_with("\r\n\r\nPOST /b abcde"), "{out}");
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        let out = serve(&[
            b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"ok",
        ]);
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{out}"
        );
        assert!(out.ends_with("PUT /f ok"));
    }

    /// The smuggling corpus: each request, followed by a well-formed one on the same
    /// connection, gets exactly one response, with this status, and a close.
    const REFUSED: &[(&[u8], &str)] = &[
        // Content-Length repeated, conflicting, listed, signed, empty, too large.
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", "413"),
        // Transfer-Encoding with Content-Length, in either order.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        // Transfer-Encoding twice, chunked twice, not last, unknown, empty, in HTTP/1.0.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"),
        // Chunks with bad sizes or framing.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", "413"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded: x\r\n\r\n", "400"),
        // Bare LF and bare CR as line ends.
        (b"GET / HTTP/1.1\nHost: x\n\n", "400"),
        (b"GET / HTTP/1.1\r\nHost: x\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", "400"),
        // Obsolete line folding, a space before the colon, Host missing or repeated.
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "400"),
    ];

    #[test]
    fn the_smuggling_corpus_is_refused_with_one_response_and_a_close() {
        for (request, status) in REFUSED {
            let out = serve(&[request, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status} ")),
                "{:?}: {out}",
                String::from_utf8_lossy(request)
            );
            assert_eq!(
                out.matches("HTTP/1.1 ").count(),
                1,
                "one response, then the close: {out}"
            );
            assert!(out.contains("Connection: close\r\n"), "{out}");
        }
    }

    #[test]
    fn heads_beyond_the_limits_get_431() {
        let long = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(9000)
        );
        assert!(serve(&[long.as_bytes()]).starts_with("HTTP/1.1 431 "));
        let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert!(serve(&[many.as_bytes()]).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn accepted_framings_still_work() {
        let out = serve(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
            b"0003 ; name=value\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"GET /b HTTP/1.0\r\n\r\n",
        ]);
        assert!(out.contains("POST /a abc"), "{out}");
        assert!(out.ends_with("GET /b "), "{out}");
        assert_eq!(out.matches("HTTP/1.1 200 ").count(), 2, "{out}");
    }

    #[test]
    fn limits_come_from_the_keys() {
        assert_eq!(
            Limits::from_keys(8192, 64, 1 << 20, 30),
            Ok(Limits::default())
        );
        let e = Limits::from_keys(8192, 0, 1 << 20, 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--http-max-headers=0 is out of range (1 to 1024)"
        );
        assert!(Limits::from_keys(100, 64, 0, 30).is_err());
        assert!(Limits::from_keys(8192, 64, -1, 30).is_err());
        assert!(Limits::from_keys(8192, 64, 0, 0).is_err());
    }

    #[test]
    fn a_peer_that_leaves_mid_request_gets_nothing() {
        assert_eq!(serve(&[b"GET / HTTP/1.1\r\nHost"]), "");
        assert_eq!(
            serve(&[b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab"]),
            ""
        );
    }

    #[test]
    fn encodes_and_drops_header_injection() {
        let mut r = Response::text(200, "hi");
        r.headers
            .push((String::from("X-Evil"), String::from("a\r\nSet-Cookie: x")));
        r.headers
            .push((String::from("Content-Length"), String::from("99")));
        let wire = String::from_utf8(encode(&r, true, false)).unwrap();
        assert_eq!(
            wire,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        let head = String::from_utf8(encode(&r, false, true)).unwrap();
        assert!(head.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn statuses_out_of_range_become_500() {
        let wire = encode(&Response::text(7, ""), false, false);
        assert!(wire.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    }
}
