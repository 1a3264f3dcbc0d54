//! The direct stack's TCP sockets, each in a smoltcp socket set of its own, so that what
//! smoltcp does for a frame or a timer does not grow with the number of connections.
//!
//! smoltcp's `Interface::poll` offers an incoming segment to the sockets of the set it is
//! given one after the other, and then visits every socket of the set for what it has to
//! send; `Interface::poll_at` visits them all again for the next timer. With every
//! connection in one set, each frame cost a walk over all of them: at 10,000 connections
//! that walk was most of the processor time. Here the driver picks the one socket a segment
//! is for, by its 4-tuple ([`Connections::lookup`]), before smoltcp sees it, and polls that
//! socket's set alone; it polls the others only when they have something to do: a task
//! touched them ([`Connections::get_mut`]) or their own timer is due ([`Connections::due`]).
//! One interface serves every set, so the neighbour cache, the IPv4 reassembly buffer and the
//! generator of initial sequence numbers are shared as before.

use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Reverse;

use smoltcp::iface::{Interface, PollResult, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

/// `timer_room(slots)` is how many timer entries, live and stale, `slots` sockets may have.
fn timer_room(slots: usize) -> usize {
    2 * slots + 64
}

/// `Conn` names one TCP socket of [`Connections`]; a freed one's name is given again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Conn(usize);

/// What routes a segment to its connection: the peer's endpoint and the local port.
type Tuple = (IpEndpoint, u16);

/// One place for a socket: a smoltcp set of one, kept with its room while free.
struct Slot {
    set: SocketSet<'static>,
    /// The socket's handle in `set`, while it has one.
    socket: Option<SocketHandle>,
    /// The 4-tuple `Connections::by_tuple` routes to this slot under, if any.
    tuple: Option<Tuple>,
    /// When smoltcp wants the socket polled next: the one entry of `Connections::timers`
    /// for this slot that counts.
    timer: Option<Instant>,
    /// Whether the slot is in `Connections::dirty`.
    dirty: bool,
}

/// `Connections` holds the TCP sockets of one direct stack and knows which of them smoltcp
/// must visit: the one a segment is for, the ones touched since the last poll, the ones whose
/// timer is due.
#[derive(Default)]
pub(crate) struct Connections {
    slots: Vec<Slot>,
    /// Slots without a socket, reused first.
    free: Vec<usize>,
    by_tuple: BTreeMap<Tuple, Conn>,
    /// The sockets' timers, earliest first, with stale entries (a slot's timer changed since)
    /// skipped when they come up: a socket's timer moves with nearly every segment, and a
    /// heap takes that without allocating, where a sorted tree splits and merges nodes.
    timers: BinaryHeap<Reverse<(Instant, Conn)>>,
    dirty: Vec<Conn>,
}

impl Connections {
    /// `reserve(n)` makes room for `n` sockets up front, with their timers and their turns to
    /// be polled, so that a burst of connections does not grow the table (its room is never
    /// given back); false if the heap has none.
    pub(crate) fn reserve(&mut self, n: usize) -> bool {
        let ok = self.slots.try_reserve_exact(n).is_ok()
            && self.free.try_reserve_exact(n).is_ok()
            && self.timers.try_reserve_exact(timer_room(n) + 1).is_ok()
            && self.dirty.try_reserve_exact(2 * n).is_ok();
        // Each slot's room for its socket, up front and for good: thousands of them made and
        // freed under load fragment the heap.
        while ok && self.slots.len() < n {
            let Some(i) = self.new_slot() else {
                return false;
            };
            self.free.push(i);
        }
        ok
    }

    /// `new_slot()` is a new, free slot with room for a socket, if the heap has it.
    fn new_slot(&mut self) -> Option<usize> {
        let mut storage = Vec::<SocketStorage<'static>>::new();
        storage.try_reserve_exact(1).ok()?;
        self.slots.try_reserve(1).ok()?;
        self.free.try_reserve(1).ok()?;
        self.slots.push(Slot {
            set: SocketSet::new(storage),
            socket: None,
            tuple: None,
            timer: None,
            dirty: false,
        });
        Some(self.slots.len() - 1)
    }

    /// `is_empty()` is true when the table holds no socket.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.len() == self.free.len()
    }

    /// `add(socket)` files `socket`, or gives `None` (and drops it) if the heap has no room.
    pub(crate) fn add(&mut self, socket: tcp::Socket<'static>) -> Option<Conn> {
        let i = match self.free.pop() {
            Some(i) => i,
            None => self.new_slot()?,
        };
        let slot = &mut self.slots[i];
        slot.socket = Some(slot.set.add(socket));
        Some(Conn(i))
    }

    /// `remove(conn)` takes `conn`'s socket out of the table (a socket added later gets a new
    /// entry of the set, with smoltcp's state of it, such as a wait for a missing neighbour,
    /// new).
    pub(crate) fn remove(&mut self, conn: Conn) -> tcp::Socket<'static> {
        self.unroute(conn);
        self.set_timer(conn, None);
        let slot = &mut self.slots[conn.0];
        let handle = slot.socket.take().expect("a live connection");
        self.free.push(conn.0);
        match slot.set.remove(handle) {
            smoltcp::socket::Socket::Tcp(s) => s,
            #[allow(unreachable_patterns)]
            _ => unreachable!("the table holds TCP sockets only"),
        }
    }

    /// `get(conn)` is `conn`'s socket.
    pub(crate) fn get(&self, conn: Conn) -> &tcp::Socket<'static> {
        let slot = &self.slots[conn.0];
        slot.set.get(slot.socket.expect("a live connection"))
    }

    /// `get_mut(conn)` is `conn`'s socket, to be polled at the driver's next round: whatever
    /// a task does to a socket (writes, reads that open the window, closes) may give it
    /// something to send.
    pub(crate) fn get_mut(&mut self, conn: Conn) -> &mut tcp::Socket<'static> {
        let slot = &mut self.slots[conn.0];
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(conn);
        }
        slot.set.get_mut(slot.socket.expect("a live connection"))
    }

    /// `route(conn, peer, port)` sends the segments from `peer` to local `port` to `conn`
    /// from now on.
    pub(crate) fn route(&mut self, conn: Conn, peer: IpEndpoint, port: u16) {
        self.unroute(conn);
        self.by_tuple.insert((peer, port), conn);
        self.slots[conn.0].tuple = Some((peer, port));
    }

    fn unroute(&mut self, conn: Conn) {
        if let Some(tuple) = self.slots[conn.0].tuple.take() {
            if self.by_tuple.get(&tuple) == Some(&conn) {
                self.by_tuple.remove(&tuple);
            }
        }
    }

    /// `lookup(peer, port, syn)` is the connection a segment from `peer` to local `port` is
    /// for, if one still has that 4-tuple; a connection attempt (`syn`, a SYN without ACK)
    /// takes none that is over (closed, or in TIME-WAIT), so that a listener takes it.
    pub(crate) fn lookup(&self, peer: IpEndpoint, port: u16, syn: bool) -> Option<Conn> {
        let conn = *self.by_tuple.get(&(peer, port))?;
        let s = self.get(conn);
        let same =
            s.remote_endpoint() == Some(peer) && s.local_endpoint().map(|l| l.port) == Some(port);
        let over = matches!(s.state(), State::Closed | State::TimeWait);
        (same && !(syn && over)).then_some(conn)
    }

    /// `poll(conn, iface, device, now)` runs smoltcp over `conn`'s socket alone: the frames
    /// `device` holds (all for it), then what it has to send; it files the socket's next
    /// timer, and says whether the socket may have changed state.
    pub(crate) fn poll<D: Device + ?Sized>(
        &mut self,
        conn: Conn,
        iface: &mut Interface,
        device: &mut D,
        now: Instant,
    ) -> bool {
        // A slot whose socket is gone still takes the frame (smoltcp resets a segment).
        let slot = &mut self.slots[conn.0];
        slot.dirty = false;
        let changed = iface.poll(now, device, &mut slot.set) == PollResult::SocketStateChanged;
        let next = iface.poll_at(now, &slot.set);
        self.set_timer(conn, next);
        changed
    }

    fn set_timer(&mut self, conn: Conn, at: Option<Instant>) {
        let slot = &mut self.slots[conn.0];
        if slot.timer == at {
            return;
        }
        slot.timer = at;
        if let Some(at) = at {
            self.timers.push(Reverse((at, conn)));
        }
        // Stale entries are dropped as they come up; past twice the live ones, all at once.
        if self.timers.len() > timer_room(self.slots.len()) {
            let slots = &self.slots;
            self.timers
                .retain(|&Reverse((at, c))| slots[c.0].timer == Some(at));
        }
    }

    /// `is_live(entry)` is true if a timer entry is its slot's current timer.
    fn is_live(&self, &Reverse((at, conn)): &Reverse<(Instant, Conn)>) -> bool {
        self.slots[conn.0].timer == Some(at)
    }

    /// `next_timer()` is when the earliest timer of a socket falls due.
    pub(crate) fn next_timer(&mut self) -> Option<Instant> {
        while let Some(top) = self.timers.peek() {
            if self.is_live(top) {
                return Some(top.0 .0);
            }
            self.timers.pop();
        }
        None
    }

    /// `due(by)` marks the sockets whose timer falls due by `by` to be polled (polling them
    /// files their next timer).
    pub(crate) fn due(&mut self, by: Instant) {
        while let Some(&top) = self.timers.peek() {
            let Reverse((at, conn)) = top;
            if at > by {
                break;
            }
            self.timers.pop();
            if !self.is_live(&top) {
                continue;
            }
            let slot = &mut self.slots[conn.0];
            slot.timer = None;
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(conn);
            }
        }
    }

    /// `take_dirty(into)` puts the sockets to poll in `into` (emptied first): touched, or with a
    /// timer marked due.
    pub(crate) fn take_dirty(&mut self, into: &mut Vec<Conn>) {
        into.clear();
        core::mem::swap(into, &mut self.dirty);
    }

    /// `put_back(conns)` keeps sockets taken with `take_dirty` and not polled for the next
    /// round.
    pub(crate) fn put_back(&mut self, conns: &[Conn]) {
        let live = conns.iter().filter(|c| self.slots[c.0].dirty);
        self.dirty.extend(live);
    }

    /// `has_dirty()` is true while sockets wait to be polled.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }
}
