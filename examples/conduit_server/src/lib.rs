//! The talk's conduit_server (slides 38-49): `conduit @-> job` over
//! `conduit_direct (generic_stackv4 default_network)`. It serves "hello mirage world!" over
//! HTTP on `--port`, whatever stack the conduit runs on: the host's sockets or the unikernel's
//! own TCP/IP over a tap device.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

use mirage_devices::http::{Limits, Server};
use mirage_devices::{Conduit, ConduitError, HttpServer, LimitError, Request, Response};

/// The body of every response.
pub const GREETING: &str = "hello mirage world!\n";

/// `Error` is why the server stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An `http-*` key is out of its range.
    Limit(LimitError),
    /// The conduit could not listen.
    Conduit(ConduitError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limit(e) => write!(f, "{e}"),
            Self::Conduit(e) => write!(f, "cannot serve HTTP: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `respond(request)` is the greeting, whatever was asked.
pub async fn respond(_request: Request) -> Response {
    Response::text(200, GREETING)
}

/// `start(conduit, port, max_head, max_headers, max_body, idle_timeout_s)` serves
/// [`GREETING`] over HTTP on `port`, within the limits of the `http-*` keys, until listening
/// fails.
pub async fn start<C>(
    conduit: C,
    port: u16,
    max_head: i64,
    max_headers: i64,
    max_body: i64,
    idle_timeout_s: i64,
) -> Result<(), Error>
where
    C: Conduit + 'static,
    C::Flow: 'static,
{
    let limits =
        Limits::from_keys(max_head, max_headers, max_body, idle_timeout_s).map_err(Error::Limit)?;
    Server::with_limits(conduit, limits)
        .serve(port, respond)
        .await
        .map_err(Error::Conduit)
}
