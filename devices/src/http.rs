//! The `http` signature: an HTTP/1.1 server that calls a handler for each request, as
//! `Cohttp_mirage.Server`, and (feature `http`) its implementation over a conduit, [`Server`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::conduit::ConduitError;

#[cfg(feature = "http")]
mod server;
#[cfg(feature = "http")]
pub use server::{reason, Limits, Server};

/// A `Request` is one parsed HTTP request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `GET`.
    pub method: String,
    /// The request target's path, without the query string, percent-decoding not applied.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: Option<String>,
    /// The header fields in arrival order, names as received.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

impl Request {
    /// `header(name)` is the value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A `Response` is what a handler answers; the server adds `Content-Length` and connection
/// management headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200.
    pub status: u16,
    /// The header fields to send.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: Vec<u8>,
}

impl Response {
    /// `new(status, content_type, body)` is a response with one `Content-Type` header.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: alloc::vec![(String::from("Content-Type"), String::from(content_type))],
            body: body.into(),
        }
    }

    /// `text(status, body)` is a `text/plain` response, as Cohttp's `respond_string`.
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.as_bytes())
    }
}

/// An `HttpServer` serves HTTP/1.1 on a TCP port, calling `handler` once per request.
pub trait HttpServer: Clone {
    /// `serve(port, handler)` accepts connections on `port` and answers each request with
    /// `handler(request)`; it returns only if listening fails.
    async fn serve<H, F>(&self, port: u16, handler: H) -> Result<(), ConduitError>
    where
        H: Fn(Request) -> F + Clone + 'static,
        F: core::future::Future<Output = Response> + 'static;
}
