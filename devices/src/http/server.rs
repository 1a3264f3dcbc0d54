//! [`Server`]: HTTP/1.1 over the flows of a [`Conduit`], parsed with `httparse`.
//!
//! One task per connection; each reads requests in turn (keep-alive and pipelining), answers
//! them with the handler, and closes the connection on `Connection: close`, on a protocol error
//! or when the peer is idle for too long. Bad input gets a clean error response, never a
//! panic: malformed request 400, header section too large 431, body too large 413, a transfer
//! coding other than chunked or identity 501. Bodies come with `Content-Length` or chunked, and
//! `Expect: 100-continue` is answered before the body is read.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use crate::conduit::{Conduit, ConduitError};
use crate::http::{HttpServer, Request, Response};
use crate::tcp::{Flow, Listener};

/// `Limits` bound what one connection may make the server hold or wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest request line plus header section, in bytes (beyond: 431).
    pub max_head: usize,
    /// The most header fields in one request (beyond: 431).
    pub max_headers: usize,
    /// The largest request body, in bytes (beyond: 413).
    pub max_body: usize,
    /// How long a connection may send nothing while a request is due, in nanoseconds.
    pub idle_timeout_ns: u64,
}

impl Default for Limits {
    /// 8 KiB of head, 64 header fields, 1 MiB of body, 30 s of silence.
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
            idle_timeout_ns: 30_000_000_000,
        }
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
        loop {
            match listener.accept().await {
                Ok(flow) => {
                    let handler = handler.clone();
                    let limits = self.limits;
                    mirage_runtime::spawn(async move { connection(flow, handler, limits).await });
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

/// `connection(flow, handler, limits)` serves the requests of one connection until it closes.
async fn connection<L, H, F>(flow: L, handler: H, limits: Limits)
where
    L: Flow,
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut buf = Vec::new();
    loop {
        match read_request(&flow, &mut buf, &limits).await {
            Outcome::Request(request, keep_alive) => {
                let head_only = request.method == "HEAD";
                let response = handler(request).await;
                let bytes = encode(&response, keep_alive, head_only);
                if flow.write(&bytes).await.is_err() || !keep_alive {
                    break;
                }
            }
            Outcome::Reject(status) => {
                let body = format!("{} {}\n", status, reason(status));
                let bytes = encode(&Response::text(status, &body), false, false);
                // The connection closes either way: a failed write changes nothing.
                let _ = flow.write(&bytes).await;
                break;
            }
            Outcome::Gone => break,
        }
    }
    // The peer may already be gone: closing is best effort.
    let _ = flow.close().await;
}

/// `read_more(flow, buf, timeout)` appends what `flow` sends next to `buf`; `None` if the peer
/// finished, failed or sent nothing for `timeout_ns`.
async fn read_more<L: Flow>(flow: &L, buf: &mut Vec<u8>, timeout_ns: u64) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    let n = {
        let mut read = pin!(flow.read(&mut chunk));
        let mut timer = pin!(mirage_runtime::sleep_until(
            mirage_runtime::executor::now_ns().saturating_add(timeout_ns)
        ));
        poll_fn(|cx| match read.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.ok()),
            Poll::Pending => timer.as_mut().poll(cx).map(|()| None),
        })
        .await?
    };
    buf.extend_from_slice(&chunk[..n]);
    (n > 0).then_some(n)
}

/// `read_request(flow, buf, limits)` reads one request from `flow`, starting with the bytes
/// already in `buf` and leaving there any that follow it (a pipelined request).
async fn read_request<L: Flow>(flow: &L, buf: &mut Vec<u8>, limits: &Limits) -> Outcome {
    let (mut request, head_len, version) = loop {
        let mut headers = alloc::vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => match convert(&parsed) {
                Some((request, version)) => break (request, len, version),
                None => return Outcome::Reject(400),
            },
            Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
                return Outcome::Reject(431)
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Outcome::Reject(431),
            Err(_) => return Outcome::Reject(400),
        }
        if read_more(flow, buf, limits.idle_timeout_ns).await.is_none() {
            return Outcome::Gone;
        }
    };
    if head_len > limits.max_head {
        return Outcome::Reject(431);
    }
    buf.drain(..head_len);
    let chunked = match request.header("transfer-encoding").map(str::trim) {
        None => false,
        Some(c) if c.eq_ignore_ascii_case("chunked") => true,
        Some(c) if c.eq_ignore_ascii_case("identity") => false,
        Some(_) => return Outcome::Reject(501),
    };
    let length = match request.header("content-length").map(str::trim) {
        // Both framings at once is how requests are smuggled past proxies: refuse it.
        Some(_) if chunked => return Outcome::Reject(400),
        None => 0,
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => match n.parse() {
            Ok(n) => n,
            Err(_) => return Outcome::Reject(413),
        },
        Some(_) => return Outcome::Reject(400),
    };
    if length > limits.max_body {
        return Outcome::Reject(413);
    }
    let expects = request
        .header("expect")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
    if expects && (chunked || length > 0) && buf.is_empty() {
        // The client waits for this before it sends the body.
        if flow.write(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
            return Outcome::Gone;
        }
    }
    let body = if chunked {
        read_chunked(flow, buf, limits).await
    } else {
        fill(flow, buf, length, limits).await.map(|()| {
            let body = buf[..length].to_vec();
            buf.drain(..length);
            body
        })
    };
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

/// `fill(flow, buf, n, limits)` reads until `buf` holds at least `n` bytes.
async fn fill<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    n: usize,
    limits: &Limits,
) -> Result<(), Outcome> {
    while buf.len() < n {
        read_more(flow, buf, limits.idle_timeout_ns)
            .await
            .ok_or(Outcome::Gone)?;
    }
    Ok(())
}

/// `read_line(flow, buf, limits)` takes one CRLF-terminated line (without the CRLF) off the
/// front of `buf`, reading more as needed; a line longer than the head limit is a 400.
async fn read_line<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<String, Outcome> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = core::str::from_utf8(&buf[..end])
                .map(String::from)
                .map_err(|_| Outcome::Reject(400))?;
            buf.drain(..end + 2);
            return Ok(line);
        }
        if buf.len() > limits.max_head {
            return Err(Outcome::Reject(400));
        }
        read_more(flow, buf, limits.idle_timeout_ns)
            .await
            .ok_or(Outcome::Gone)?;
    }
}

/// `read_chunked(flow, buf, limits)` reads a body in the chunked transfer coding: chunks of
/// `SIZE[;extensions]` CRLF data CRLF, a zero-size chunk, trailer fields (ignored), CRLF.
async fn read_chunked<L: Flow>(
    flow: &L,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Vec<u8>, Outcome> {
    let mut body = Vec::new();
    loop {
        let line = read_line(flow, buf, limits).await?;
        let digits = line.split(';').next().unwrap_or("").trim();
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Outcome::Reject(400));
        }
        let size = usize::from_str_radix(digits, 16).map_err(|_| Outcome::Reject(400))?;
        if size == 0 {
            let mut trailers = 0;
            loop {
                let line = read_line(flow, buf, limits).await?;
                if line.is_empty() {
                    return Ok(body);
                }
                trailers += line.len();
                if trailers > limits.max_head {
                    return Err(Outcome::Reject(431));
                }
            }
        }
        if body.len() + size > limits.max_body {
            return Err(Outcome::Reject(413));
        }
        fill(flow, buf, size + 2, limits).await?;
        if &buf[size..size + 2] != b"\r\n" {
            return Err(Outcome::Reject(400));
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

/// `encode(response, keep_alive, head_only)` is the response's bytes on the wire: status line,
/// the handler's valid header fields, `Content-Length`, `Connection`, and the body unless the
/// request was `HEAD`.
fn encode(response: &Response, keep_alive: bool, head_only: bool) -> Vec<u8> {
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
    let mut bytes = head.into_bytes();
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
        mirage_runtime::block_on(&Instant, connection(&script, handler, Limits::default()));
        String::from_utf8(script.output.into_inner()).unwrap()
    }

    #[test]
    fn bodies_by_length_and_chunked_across_reads() {
        let out = serve(&[
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
            b"loPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r",
            b"\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
        ]);
        assert!(out.contains("Content-Length: 13\r\nConnection: keep-alive\r\n\r\nPOST /a hello"));
        assert!(out.ends_with("\r\n\r\nPOST /b abcde"), "{out}");
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        let out = serve(&[
            b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"ok",
        ]);
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{out}"
        );
        assert!(out.ends_with("PUT /f ok"));
    }

    #[test]
    fn bad_framing_is_refused_and_closes() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
                "400",
            ),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n",
                "413",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
                "413",
            ),
        ];
        for (request, status) in cases {
            let out = serve(&[request, b"GET / HTTP/1.1\r\n\r\n"]);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status} ")),
                "{request:?}: {out}"
            );
            assert_eq!(
                out.matches("HTTP/1.1").count(),
                1,
                "closed after the error: {out}"
            );
        }
    }

    #[test]
    fn a_peer_that_leaves_mid_request_gets_nothing() {
        assert_eq!(serve(&[b"GET / HTTP/1.1\r\nHost"]), "");
        assert_eq!(
            serve(&[b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab"]),
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
