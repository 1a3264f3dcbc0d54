//! The `conduit` signature: naming endpoints independently of the transport, as
//! `Conduit_mirage` (the talk's `conduit_direct (generic_stackv4 default_network)`).

use core::fmt;
use core::net::SocketAddrV4;

use crate::stack::Stack;
use crate::tcp::{Flow, Listener, Tcp, TcpError};

/// `ConduitError` is why a conduit could not listen or connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConduitError {
    /// The transport failed.
    Tcp(TcpError),
}

impl fmt::Display for ConduitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ConduitError {}

impl From<TcpError> for ConduitError {
    fn from(e: TcpError) -> Self {
        Self::Tcp(e)
    }
}

/// A `Conduit` turns endpoint descriptions into flows, so that a server such as
/// `conduit_server` says "listen on TCP port 80" and nothing about the stack below.
pub trait Conduit: Clone {
    /// The flows of this conduit.
    type Flow: Flow;
    /// The listeners of this conduit.
    type Listener: Listener<Flow = Self::Flow>;

    /// `listen_tcp(port)` accepts TCP connections to `port` (Mirage's `` `TCP port ``).
    async fn listen_tcp(&self, port: u16) -> Result<Self::Listener, ConduitError>;

    /// `connect_tcp(dst)` opens a TCP connection to `dst`.
    async fn connect_tcp(&self, dst: SocketAddrV4) -> Result<Self::Flow, ConduitError>;
}

/// `Direct<S>` is the conduit over a stack `S` (Mirage's `conduit_direct`): TCP endpoints are
/// the stack's own listeners and flows.
#[derive(Clone, Debug)]
pub struct Direct<S> {
    stack: S,
}

impl<S: Stack> Direct<S> {
    /// `new(stack)` is the conduit over `stack`.
    pub fn new(stack: S) -> Direct<S> {
        Direct { stack }
    }
}

impl<S: Stack> Conduit for Direct<S> {
    type Flow = <S::Tcp as Tcp>::Flow;
    type Listener = <S::Tcp as Tcp>::Listener;

    async fn listen_tcp(&self, port: u16) -> Result<Self::Listener, ConduitError> {
        Ok(self.stack.tcp().listen(port).await?)
    }

    async fn connect_tcp(&self, dst: SocketAddrV4) -> Result<Self::Flow, ConduitError> {
        Ok(self.stack.tcp().connect(dst).await?)
    }
}
