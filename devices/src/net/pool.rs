//! The direct stack's TCP sockets as a budget: how many may exist, the buffers each gets, the
//! listeners' backlogs, and the rules that admit, reap and refuse connections.
//!
//! smoltcp accepts a connection with a socket in the `Listen` state, one socket per
//! connection, and answers a SYN that finds no listening socket with a reset. So the pool
//! keeps a few sockets listening on each port ([`SPARE_LISTENERS`]) and, before smoltcp sees
//! a SYN, picks the one that takes it ([`Pool::admit`]; the driver then gives smoltcp that
//! socket alone, see the `connections` module):
//!
//! 1. a listening socket is free: it takes the SYN;
//! 2. the budget ([`TcpLimits::max_connections`]) has room: a new socket listens;
//! 3. a handshake is under way on the port (`SynReceived`): the oldest one is dropped without
//!    a word and its socket listens again, so that spoofed SYNs, which never complete, cannot
//!    hold every socket: the listener keeps listening under any flood, and a real client's
//!    handshake, which completes within a round trip, outlives the flood's;
//! 4. otherwise every socket carries an established connection: smoltcp resets the SYN and
//!    the client sees a refusal at once.
//!
//! Half-open connections also end on their own after the handshake timeout; established ones
//! after [`USER_TIMEOUT`] without a word from the peer (keep-alive probes keep idle ones
//! going), closed ones after [`CLOSE_TIMEOUT`]. [`Pool::reap`] then frees their sockets and
//! their buffers, and keeps no more than [`SPARE_LISTENERS`] idle sockets per port, so memory
//! returns to its level before a burst or a flood once it is over.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::task::Waker;

use mirage_runtime::Heap;

use super::connections::{Conn, Connections};
use crate::limit::{in_range, LimitError};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::IpEndpoint;

/// Idle sockets each listener keeps listening, beyond the handshakes under way.
pub(crate) const SPARE_LISTENERS: usize = 2;
/// How long an established connection may go without hearing from the peer while it has
/// something to send or a keep-alive probe out (a TCP user timeout).
const USER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle established connection checks that the peer is still there.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How long a connection closed by its owner may take to wind down.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// What one connection costs beyond its two buffers: smoltcp's socket and its slot in the
/// socket set, and a share of what the application keeps per connection (an HTTP
/// connection's task and its buffers).
const PER_CONNECTION_OVERHEAD: usize = 6 * 1024;
/// The connection limit where the heap has no fixed size (a unix process).
const UNBOUNDED_HEAP_CONNECTIONS: usize = 16_384;

/// `TcpLimits` bound what TCP on the direct stack may hold (the `tcp-*` keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// The most TCP sockets at once: connections established, in their handshake or closing,
    /// and the few kept listening. `0` sizes it from the heap: as many as fit in half of it.
    pub max_connections: usize,
    /// Each connection's receive buffer and send buffer, in bytes (the receive window).
    pub buffer: usize,
    /// How long a handshake may take, in seconds, either way: a half-open connection to a
    /// listener is dropped after it, and `connect` gives up after it.
    pub handshake_timeout_s: u64,
}

impl Default for TcpLimits {
    /// Connections sized from the heap, 8 KiB buffers each way, 10 s handshakes.
    fn default() -> TcpLimits {
        TcpLimits {
            max_connections: 0,
            buffer: 8 * 1024,
            handshake_timeout_s: 10,
        }
    }
}

impl TcpLimits {
    /// `from_keys(connections, buffer, handshake_timeout_s)` are the limits the keys
    /// `tcp-connections`, `tcp-buffer` and `tcp-handshake-timeout` give, or the first one out
    /// of range.
    pub fn from_keys(
        connections: i64,
        buffer: i64,
        handshake_timeout_s: i64,
    ) -> Result<TcpLimits, LimitError> {
        let connections = in_range("tcp-connections", connections, 0, 1 << 20)?;
        let buffer = in_range("tcp-buffer", buffer, 1024, 1 << 20)?;
        let timeout = in_range("tcp-handshake-timeout", handshake_timeout_s, 1, 3600)?;
        Ok(TcpLimits {
            max_connections: usize::try_from(connections).unwrap_or(usize::MAX),
            buffer: usize::try_from(buffer).unwrap_or(usize::MAX),
            handshake_timeout_s: timeout,
        })
    }

    /// `resolve(heap)` is these limits with the connection count decided: the one given, or as
    /// many connections as fit in half of `heap`'s fixed size.
    pub(crate) fn resolve(self, heap: Option<Heap>) -> TcpLimits {
        if self.max_connections > 0 {
            return self;
        }
        let per_connection = 2 * self.buffer + PER_CONNECTION_OVERHEAD;
        let max_connections = match heap.and_then(|h| h.size) {
            Some(size) => (size / 2 / per_connection).max(SPARE_LISTENERS + 1),
            None => UNBOUNDED_HEAP_CONNECTIONS,
        };
        TcpLimits {
            max_connections,
            ..self
        }
    }

    fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_s)
    }
}

/// `buffer(len)` is a zeroed socket buffer of `len` bytes, or `None` if the heap has no room.
fn buffer(len: usize) -> Option<tcp::SocketBuffer<'static>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).ok()?;
    bytes.resize(len, 0);
    Some(tcp::SocketBuffer::new(bytes))
}

/// One listener's sockets: listening, in a handshake, or established and not yet accepted.
#[derive(Default)]
struct Backlog {
    /// Oldest first: the front is evicted first.
    slots: VecDeque<Conn>,
    /// The task waiting in `accept`.
    waker: Option<Waker>,
}

/// What the pool did since it last said so, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pressure {
    /// Half-open connections dropped to make room for new SYNs.
    pub(crate) evicted: u64,
    /// SYNs left to smoltcp's reset because every socket carried a connection.
    pub(crate) refused: u64,
}

/// `Pool` is the TCP socket budget of one direct stack.
pub(crate) struct Pool {
    limits: TcpLimits,
    /// TCP sockets in the socket set.
    open: usize,
    backlogs: BTreeMap<u16, Backlog>,
    /// Sockets their owners closed, freed once the connection has wound down.
    closing: Vec<Conn>,
    pressure: Pressure,
    /// Whether a connection began since the last reaping.
    touched: bool,
}

impl Pool {
    /// `new(limits)` is an empty pool bounded by `limits` (resolved).
    pub(crate) fn new(limits: TcpLimits) -> Pool {
        Pool {
            limits,
            open: 0,
            backlogs: BTreeMap::new(),
            closing: Vec::new(),
            pressure: Pressure::default(),
            touched: false,
        }
    }

    /// `set_limits(limits)` bounds the pool by `limits` (resolved) from now on.
    pub(crate) fn set_limits(&mut self, limits: TcpLimits) {
        self.limits = limits;
    }

    /// `limits()` are the pool's limits.
    pub(crate) fn limits(&self) -> TcpLimits {
        self.limits
    }

    /// `open()` is how many TCP sockets exist.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// `socket(sockets)` is a new socket within the budget, or `None` if the budget or the
    /// heap has no room for one.
    pub(crate) fn socket(&mut self, sockets: &mut Connections) -> Option<Conn> {
        self.touched = true;
        new_socket(&mut self.open, &self.limits, sockets)
    }

    /// `forget(n)` uncounts `n` sockets removed from the set without the pool.
    pub(crate) fn forget(&mut self, n: usize) {
        self.open -= n;
    }

    /// `connect_timeout()` is how long `connect` waits for the handshake.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.limits.handshake_timeout()
    }

    /// `listen(sockets, port)` opens a backlog on `port` with its spare listening sockets;
    /// `Ok(false)` if `port` already has one, `Err(())` if the budget has room for none.
    pub(crate) fn listen(&mut self, sockets: &mut Connections, port: u16) -> Result<bool, ()> {
        if self.backlogs.contains_key(&port) {
            return Ok(false);
        }
        let mut backlog = Backlog::default();
        for _ in 0..SPARE_LISTENERS {
            match listening_socket(&mut self.open, &self.limits, sockets, port) {
                Some(h) => backlog.slots.push_back(h),
                None => break,
            }
        }
        if backlog.slots.is_empty() {
            return Err(());
        }
        self.backlogs.insert(port, backlog);
        Ok(true)
    }

    /// `unlisten(sockets, port)` closes `port`'s backlog and frees its sockets.
    pub(crate) fn unlisten(&mut self, sockets: &mut Connections, port: u16) {
        if let Some(backlog) = self.backlogs.remove(&port) {
            for h in backlog.slots {
                sockets.remove(h);
                self.open -= 1;
            }
        }
    }

    /// `admit(sockets, port, peer)` is the listening socket that takes the SYN from `peer` to
    /// `port` that smoltcp is about to see (see the module's doc), or `None` if the port has
    /// no listener or every socket carries a connection (smoltcp then resets the SYN).
    pub(crate) fn admit(
        &mut self,
        sockets: &mut Connections,
        port: u16,
        peer: IpEndpoint,
    ) -> Option<Conn> {
        let backlog = self.backlogs.get_mut(&port)?;
        self.touched = true;
        for &h in &backlog.slots {
            let s = sockets.get(h);
            let retransmitted =
                s.state() == State::SynReceived && s.remote_endpoint() == Some(peer);
            if s.is_listening() || retransmitted {
                // A free listener, or the peer's own socket for a retransmitted SYN.
                return Some(h);
            }
        }
        if let Some(h) = listening_socket(&mut self.open, &self.limits, sockets, port) {
            backlog.slots.push_back(h);
            return Some(h);
        }
        let half_open = backlog
            .slots
            .iter()
            .position(|&h| sockets.get(h).state() == State::SynReceived);
        if let Some(h) = half_open.and_then(|i| backlog.slots.remove(i)) {
            self.pressure.evicted += 1;
            match relisten(sockets, h, port) {
                Some(h) => {
                    backlog.slots.push_back(h);
                    return Some(h);
                }
                None => self.open -= 1,
            }
            return None;
        }
        self.pressure.refused += 1;
        None
    }

    /// `polled()` wakes the tasks waiting in `accept`, once smoltcp has run: a socket may
    /// have changed state.
    pub(crate) fn polled(&mut self) {
        for backlog in self.backlogs.values_mut() {
            if let Some(w) = backlog.waker.take() {
                w.wake();
            }
        }
    }

    /// `accept(sockets, port, waker)` takes an established connection off `port`'s backlog,
    /// its socket now under the established connections' timeouts; without one, `waker` is
    /// woken when there may be.
    pub(crate) fn accept(
        &mut self,
        sockets: &mut Connections,
        port: u16,
        waker: &Waker,
    ) -> Option<(Conn, IpEndpoint)> {
        let backlog = self.backlogs.get_mut(&port)?;
        let ready = backlog.slots.iter().position(|&h| {
            let s = sockets.get(h);
            matches!(s.state(), State::Established | State::CloseWait)
        });
        let Some(i) = ready else {
            backlog.waker = Some(waker.clone());
            return None;
        };
        let h = backlog.slots.remove(i)?;
        let s = sockets.get_mut(h);
        let peer = s.remote_endpoint()?;
        s.set_timeout(Some(USER_TIMEOUT));
        s.set_keep_alive(Some(KEEP_ALIVE));
        let listening = backlog
            .slots
            .iter()
            .filter(|&&h| sockets.get(h).is_listening())
            .count();
        for _ in listening..SPARE_LISTENERS {
            match listening_socket(&mut self.open, &self.limits, sockets, port) {
                Some(fresh) => backlog.slots.push_back(fresh),
                None => break,
            }
        }
        Some((h, peer))
    }

    /// `established(sockets, handle)` puts a connected socket under the established
    /// connections' timeouts.
    pub(crate) fn established(&mut self, sockets: &mut Connections, handle: Conn) {
        let s = sockets.get_mut(handle);
        s.set_timeout(Some(USER_TIMEOUT));
        s.set_keep_alive(Some(KEEP_ALIVE));
    }

    /// `close(sockets, handle)` closes a flow's socket, which is freed once its connection has
    /// wound down (or after [`CLOSE_TIMEOUT`]).
    pub(crate) fn close(&mut self, sockets: &mut Connections, handle: Conn) {
        let s = sockets.get_mut(handle);
        s.set_keep_alive(None);
        s.set_timeout(Some(CLOSE_TIMEOUT));
        s.close();
        self.closing.push(handle);
    }

    /// `needs_reaping()` is true while sockets may be waiting to be freed.
    pub(crate) fn needs_reaping(&self) -> bool {
        !self.closing.is_empty()
            || self
                .backlogs
                .values()
                .any(|b| b.slots.len() > SPARE_LISTENERS)
    }

    /// `reap(sockets)` frees the sockets whose connection is over and the idle listening
    /// sockets beyond the spares; it returns how many connections remain (established, in a
    /// handshake or closing), and whether one began since the last reaping.
    pub(crate) fn reap(&mut self, sockets: &mut Connections) -> (usize, bool) {
        let touched = core::mem::take(&mut self.touched);
        let open = &mut self.open;
        self.closing.retain(|&h| {
            let done = matches!(sockets.get(h).state(), State::Closed | State::TimeWait);
            if done {
                sockets.remove(h);
                *open -= 1;
            }
            !done
        });
        let mut idle = 0;
        for (&port, backlog) in &mut self.backlogs {
            let mut listening = 0;
            let mut kept = VecDeque::with_capacity(backlog.slots.len());
            for h in backlog.slots.drain(..) {
                match sockets.get(h).state() {
                    State::Listen if listening < SPARE_LISTENERS => {
                        listening += 1;
                        kept.push_back(h);
                    }
                    // Reset, or timed out in its handshake, before it was accepted: listen
                    // again if a spare is missing.
                    State::Closed | State::TimeWait if listening < SPARE_LISTENERS => {
                        match relisten(sockets, h, port) {
                            Some(h) => {
                                listening += 1;
                                kept.push_back(h);
                            }
                            None => *open -= 1,
                        }
                    }
                    State::Listen | State::Closed | State::TimeWait => {
                        sockets.remove(h);
                        *open -= 1;
                    }
                    _ => kept.push_back(h),
                }
            }
            backlog.slots = kept;
            idle += listening;
        }
        (*open - idle, touched)
    }

    /// `take_pressure()` is what the pool evicted and refused since the last call.
    pub(crate) fn take_pressure(&mut self) -> Pressure {
        core::mem::take(&mut self.pressure)
    }
}

/// `new_socket(open, limits, sockets)` adds a socket with `limits`' buffers to `sockets`,
/// counting it in `open`, if the budget and the heap have room.
fn new_socket(open: &mut usize, limits: &TcpLimits, sockets: &mut Connections) -> Option<Conn> {
    if *open >= limits.max_connections {
        return None;
    }
    let mut s = tcp::Socket::new(buffer(limits.buffer)?, buffer(limits.buffer)?);
    s.set_nagle_enabled(false);
    let h = sockets.add(s)?;
    *open += 1;
    Some(h)
}

/// `relisten(sockets, handle, port)` makes the socket of `handle` listen on `port` again,
/// dropping its connection without a word, and returns its new handle (`None`, and the
/// socket gone, if it cannot listen). It goes out of its socket set and in again: smoltcp
/// keeps a socket's wait for an unresolved neighbour in the set, across resets, and a
/// listening socket would then ask to be polled at once, forever.
fn relisten(sockets: &mut Connections, handle: Conn, port: u16) -> Option<Conn> {
    let mut s = sockets.remove(handle);
    s.abort();
    s.listen(port).ok()?;
    sockets.add(s)
}

/// `listening_socket(open, limits, sockets, port)` is a new socket listening on `port`, under
/// the handshake timeout.
fn listening_socket(
    open: &mut usize,
    limits: &TcpLimits,
    sockets: &mut Connections,
    port: u16,
) -> Option<Conn> {
    let h = new_socket(open, limits, sockets)?;
    let s = sockets.get_mut(h);
    s.set_timeout(Some(limits.handshake_timeout()));
    if s.listen(port).is_err() {
        sockets.remove(h);
        *open -= 1;
        return None;
    }
    Some(h)
}
