//! The talk's conduit_server (slides 38-49): `conduit @-> job` over
//! `conduit_direct (generic_stackv4 default_network)`. It serves "hello mirage world!" over
//! HTTP on `--port`, whatever stack the conduit runs on: the host's sockets or the unikernel's
//! own TCP/IP over a tap device.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

use mirage_devices::http::Server;
use mirage_devices::{Conduit, ConduitError, HttpServer, Request, Response};

/// The body of every response.
pub const GREETING: &str = "hello mirage world!\n";

/// `Error` is why the server stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The conduit could not listen.
    Conduit(ConduitError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conduit(e) => write!(f, "cannot serve HTTP: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `respond(request)` is the greeting, whatever was asked.
pub async fn respond(_request: Request) -> Response {
    Response::text(200, GREETING)
}

/// `start(conduit, port)` serves [`GREETING`] over HTTP on `port` until listening fails.
pub async fn start<C>(conduit: C, port: u16) -> Result<(), Error>
where
    C: Conduit + 'static,
    C::Flow: 'static,
{
    Server::new(conduit)
        .serve(port, respond)
        .await
        .map_err(Error::Conduit)
}
