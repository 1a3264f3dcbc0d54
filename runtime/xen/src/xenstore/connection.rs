//! [`Connection`]: the xenstore ring (`docs/misc/xenstore-ring.txt`) and the demultiplexing of
//! what comes back through it, free of hypercalls so that it is tested against a simulated
//! xenstored.
//!
//! The page holds two 1024-byte byte rings, `req` (to xenstored) and `rsp` (from it), with
//! free-running `u32` indices at 2048 (`req_cons`, `req_prod`, `rsp_cons`, `rsp_prod`). A
//! message (16-byte header and up to 4096 bytes) may be longer than a ring, so it moves in
//! pieces: requests queue in an outbox written as room appears, and replies are reassembled
//! in an inbox. Whole messages are then sorted: a `WATCH_EVENT` marks its watch as fired, any
//! other message is the reply to the request with its `req_id`, in whatever order they come;
//! replies nobody waits for (a dropped request, an `UNWATCH`) are discarded.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use super::wire::{self, Header, Op, XsError, HEADER, MAX_PAYLOAD};
use crate::sys::page::Page;

/// Each byte ring's size.
const RING: u32 = 1024;
const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;

/// A reply: its header and payload.
type Reply = (Header, Vec<u8>);

/// `Connection` is our end of the xenstore ring, with requests in flight and replies and
/// watch events received.
#[derive(Debug)]
pub(crate) struct Connection {
    page: Page,
    next_id: u32,
    outbox: VecDeque<u8>,
    inbox: Vec<u8>,
    /// Requests awaiting replies, each with its reply once it came (a few at a time: at most
    /// `MAX_IN_FLIGHT`, so a list).
    waiting: Vec<(u32, Option<Reply>)>,
    /// The tokens of our watches, and whether each fired since last taken.
    watches: Vec<(String, bool)>,
    broken: bool,
}

impl Connection {
    /// `new(page)` is a connection over the ring mapped at `page`.
    pub(crate) fn new(page: Page) -> Connection {
        Connection {
            page,
            next_id: 1,
            outbox: VecDeque::new(),
            inbox: Vec::new(),
            waiting: Vec::new(),
            watches: Vec::new(),
            broken: false,
        }
    }

    /// `in_flight()` is how many requests await their replies.
    pub(crate) fn in_flight(&self) -> usize {
        self.waiting.len()
    }

    /// `send(op, tx_id, parts)` queues a request and returns its id, to wait for with
    /// [`take_reply`](Connection::take_reply).
    pub(crate) fn send(&mut self, op: Op, tx_id: u32, parts: &[&[u8]]) -> Result<u32, XsError> {
        let id = self.queue(op, tx_id, parts)?;
        self.waiting.push((id, None));
        Ok(id)
    }

    /// `send_unanswered(op, parts)` queues a request whose reply will be discarded.
    pub(crate) fn send_unanswered(&mut self, op: Op, parts: &[&[u8]]) -> Result<(), XsError> {
        self.queue(op, 0, parts).map(|_| ())
    }

    fn queue(&mut self, op: Op, tx_id: u32, parts: &[&[u8]]) -> Result<u32, XsError> {
        if self.broken {
            return Err(XsError::Broken);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.outbox.extend(wire::encode(op, id, tx_id, parts)?);
        Ok(id)
    }

    /// `take_reply(id)` is the reply to request `id`, once it has come.
    pub(crate) fn take_reply(&mut self, id: u32) -> Option<Reply> {
        let at = self
            .waiting
            .iter()
            .position(|(i, reply)| *i == id && reply.is_some())?;
        self.waiting.swap_remove(at).1
    }

    /// `abandon(id)` forgets request `id` (its waiter gave up): its reply will be discarded.
    pub(crate) fn abandon(&mut self, id: u32) {
        self.waiting.retain(|(i, _)| *i != id);
    }

    /// `add_watch(token)` routes the events of `token` to [`take_fired`](Self::take_fired).
    pub(crate) fn add_watch(&mut self, token: &str) {
        self.watches.push((token.into(), false));
    }

    /// `remove_watch(token)` stops routing `token`'s events.
    pub(crate) fn remove_watch(&mut self, token: &str) {
        self.watches.retain(|(t, _)| t != token);
    }

    /// `take_fired(token)` says whether `token`'s watch fired since the last call.
    pub(crate) fn take_fired(&mut self, token: &str) -> bool {
        self.watches
            .iter_mut()
            .find(|(t, _)| t == token)
            .is_some_and(|(_, fired)| core::mem::replace(fired, false))
    }

    /// `pump()` moves queued requests into the ring and whole messages out of it; it says
    /// whether xenstored must be signalled (we wrote requests or made room for replies).
    pub(crate) fn pump(&mut self) -> Result<bool, XsError> {
        if self.broken {
            return Err(XsError::Broken);
        }
        let result = self
            .write_out()
            .and_then(|wrote| Ok(self.read_in()? | wrote));
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Writes as much of the outbox as the `req` ring has room for.
    fn write_out(&mut self) -> Result<bool, XsError> {
        if self.outbox.is_empty() {
            return Ok(false);
        }
        let cons: u32 = self.page.load(REQ_CONS);
        let prod: u32 = self.page.load(REQ_PROD);
        fence(Ordering::SeqCst);
        let used = prod.wrapping_sub(cons);
        if used > RING {
            return Err(XsError::Broken);
        }
        let n = (RING - used).min(self.outbox.len() as u32);
        for i in 0..n {
            let b = self.outbox.pop_front().unwrap_or_default();
            self.page
                .store::<u8>(REQ + (prod.wrapping_add(i) % RING) as usize, b);
        }
        // The bytes before the index that publishes them.
        fence(Ordering::SeqCst);
        self.page.store::<u32>(REQ_PROD, prod.wrapping_add(n));
        Ok(n > 0)
    }

    /// Reads what the `rsp` ring holds into the inbox, dispatching each whole message.
    fn read_in(&mut self) -> Result<bool, XsError> {
        let cons: u32 = self.page.load(RSP_CONS);
        let prod: u32 = self.page.load(RSP_PROD);
        // The index before the bytes it publishes.
        fence(Ordering::SeqCst);
        let avail = prod.wrapping_sub(cons);
        if avail > RING {
            return Err(XsError::Broken);
        }
        for i in 0..avail {
            let b: u8 = self.page.load(RSP + (cons.wrapping_add(i) % RING) as usize);
            self.inbox.push(b);
            if self.inbox.len() >= HEADER {
                let header =
                    Header::decode(self.inbox[..HEADER].try_into().unwrap_or(&[0; HEADER]));
                if header.len as usize > MAX_PAYLOAD {
                    return Err(XsError::Broken);
                }
                if self.inbox.len() == HEADER + header.len as usize {
                    let payload = self.inbox.split_off(HEADER);
                    self.inbox.clear();
                    self.dispatch(header, payload);
                }
            }
        }
        // Done with the bytes before handing their room back.
        fence(Ordering::SeqCst);
        self.page.store::<u32>(RSP_CONS, prod);
        Ok(avail > 0)
    }

    fn dispatch(&mut self, header: Header, payload: Vec<u8>) {
        if header.op() == Some(Op::WatchEvent) {
            if let Some((_, token)) = wire::watch_event(&payload) {
                for (_, fired) in self.watches.iter_mut().filter(|(t, _)| *t == token) {
                    *fired = true;
                }
            }
        } else if let Some((_, reply)) = self
            .waiting
            .iter_mut()
            .find(|(i, reply)| *i == header.req_id && reply.is_none())
        {
            *reply = Some((header, payload));
        }
    }
}

/// A simulated xenstored for tests: a tree of nodes, served over the same ring.
#[cfg(test)]
pub(crate) mod daemon {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::ToString;

    /// `Daemon` answers requests on a ring page, a few bytes at a time if told to.
    pub(crate) struct Daemon {
        page: Page,
        pub(crate) nodes: BTreeMap<String, String>,
        pub(crate) watches: Vec<(String, String)>,
        inbox: Vec<u8>,
        outbox: VecDeque<u8>,
        /// The most bytes moved per ring per step (to exercise partial messages).
        pub(crate) chunk: u32,
        /// Hold replies back and send them in reverse order.
        pub(crate) reverse: bool,
        held: Vec<Vec<u8>>,
        next_tx: u32,
        /// Transactions that fail with EAGAIN on commit, counted down.
        pub(crate) conflicts: u32,
        pub(crate) tx_writes: BTreeMap<u32, Vec<(String, String)>>,
    }

    impl Daemon {
        /// `new(page)` serves the ring at `page` (an alias of the client's).
        pub(crate) fn new(page: Page) -> Daemon {
            // Start the indices away from zero so they wrap soon.
            for at in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD] {
                page.store::<u32>(at, u32::MAX - 700);
            }
            Daemon {
                page,
                nodes: BTreeMap::new(),
                watches: Vec::new(),
                inbox: Vec::new(),
                outbox: VecDeque::new(),
                chunk: u32::MAX,
                reverse: false,
                held: Vec::new(),
                next_tx: 1,
                conflicts: 0,
                tx_writes: BTreeMap::new(),
            }
        }

        /// `step()` moves bytes both ways once and answers whole requests.
        pub(crate) fn step(&mut self) {
            let cons: u32 = self.page.load(REQ_CONS);
            let prod: u32 = self.page.load(REQ_PROD);
            let n = prod.wrapping_sub(cons).min(self.chunk);
            for i in 0..n {
                let b: u8 = self.page.load(REQ + (cons.wrapping_add(i) % RING) as usize);
                self.inbox.push(b);
                if self.inbox.len() >= HEADER {
                    let h = Header::decode(self.inbox[..HEADER].try_into().unwrap());
                    if self.inbox.len() == HEADER + h.len as usize {
                        let payload = self.inbox.split_off(HEADER);
                        self.inbox.clear();
                        self.answer(h, &payload);
                    }
                }
            }
            self.page.store::<u32>(REQ_CONS, cons.wrapping_add(n));
            if self.reverse && self.outbox.is_empty() {
                while let Some(m) = self.held.pop() {
                    self.outbox.extend(m);
                }
            }
            let cons: u32 = self.page.load(RSP_CONS);
            let prod: u32 = self.page.load(RSP_PROD);
            let room = RING - prod.wrapping_sub(cons);
            let n = room.min(self.chunk).min(self.outbox.len() as u32);
            for i in 0..n {
                let b = self.outbox.pop_front().unwrap();
                self.page
                    .store::<u8>(RSP + (prod.wrapping_add(i) % RING) as usize, b);
            }
            self.page.store::<u32>(RSP_PROD, prod.wrapping_add(n));
        }

        fn send(&mut self, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
            let mut m = Vec::new();
            for w in [ty, req_id, tx_id, payload.len() as u32] {
                m.extend_from_slice(&w.to_le_bytes());
            }
            m.extend_from_slice(payload);
            if self.reverse && ty != 15 {
                self.held.push(m);
            } else {
                self.outbox.extend(m);
            }
        }

        /// `set(path, value)` writes a node and fires the watches on it.
        pub(crate) fn set(&mut self, path: &str, value: &str) {
            self.nodes.insert(path.into(), value.into());
            self.fire(path);
        }

        fn fire(&mut self, path: &str) {
            let hits: Vec<(String, String)> = self
                .watches
                .iter()
                .filter(|(p, _)| path == p || path.starts_with(&format!("{p}/")))
                .cloned()
                .collect();
            for (_, token) in hits {
                let ev = format!("{path}\0{token}\0");
                self.send(15, 0, 0, ev.as_bytes());
            }
        }

        fn answer(&mut self, h: Header, payload: &[u8]) {
            let args: Vec<String> = payload
                .split(|&b| b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            let err = |d: &mut Daemon, e: &str| {
                d.send(16, h.req_id, h.tx_id, format!("{e}\0").as_bytes())
            };
            match h.ty {
                2 => match self.nodes.get(&args[0]).cloned() {
                    Some(v) => self.send(2, h.req_id, h.tx_id, v.as_bytes()),
                    None => err(self, "ENOENT"),
                },
                11 => {
                    let nul = payload.iter().position(|&b| b == 0).unwrap();
                    let value = String::from_utf8_lossy(&payload[nul + 1..]).into_owned();
                    if h.tx_id != 0 {
                        self.tx_writes
                            .entry(h.tx_id)
                            .or_default()
                            .push((args[0].clone(), value));
                    } else {
                        self.set(&args[0], &value);
                    }
                    self.send(11, h.req_id, h.tx_id, b"OK\0");
                }
                1 => {
                    let prefix = format!("{}/", args[0]);
                    let mut kids: Vec<String> = self
                        .nodes
                        .keys()
                        .filter_map(|k| k.strip_prefix(&prefix))
                        .map(|rest| rest.split('/').next().unwrap().to_string())
                        .collect();
                    kids.dedup();
                    if kids.is_empty() && !self.nodes.contains_key(&args[0]) {
                        err(self, "ENOENT");
                    } else {
                        let body: String = kids.iter().map(|k| format!("{k}\0")).collect();
                        self.send(1, h.req_id, h.tx_id, body.as_bytes());
                    }
                }
                4 => {
                    self.watches.push((args[0].clone(), args[1].clone()));
                    self.send(4, h.req_id, 0, b"OK\0");
                    let ev = format!("{}\0{}\0", args[0], args[1]);
                    self.send(15, 0, 0, ev.as_bytes());
                }
                5 => {
                    self.watches
                        .retain(|(p, t)| !(p == &args[0] && t == &args[1]));
                    self.send(5, h.req_id, 0, b"OK\0");
                }
                6 => {
                    let id = self.next_tx;
                    self.next_tx += 1;
                    self.send(6, h.req_id, 0, format!("{id}\0").as_bytes());
                }
                7 => {
                    let writes = self.tx_writes.remove(&h.tx_id).unwrap_or_default();
                    if args[0] == "T" && self.conflicts > 0 {
                        self.conflicts -= 1;
                        err(self, "EAGAIN");
                    } else {
                        if args[0] == "T" {
                            for (p, v) in writes {
                                self.set(&p, &v);
                            }
                        }
                        self.send(7, h.req_id, 0, b"OK\0");
                    }
                }
                13 => {
                    self.nodes
                        .retain(|k, _| k != &args[0] && !k.starts_with(&format!("{}/", args[0])));
                    self.send(13, h.req_id, h.tx_id, b"OK\0");
                }
                _ => err(self, "EINVAL"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::daemon::Daemon;
    use super::*;
    use crate::ring::backend::page_alias;

    fn pair() -> (Connection, Daemon) {
        let page = Page::new();
        let d = Daemon::new(page_alias(&page));
        (Connection::new(page), d)
    }

    /// `run(c, d, id)` pumps both sides until request `id` has its reply.
    fn run(c: &mut Connection, d: &mut Daemon, id: u32) -> (Header, Vec<u8>) {
        for _ in 0..10_000 {
            c.pump().unwrap();
            if let Some(r) = c.take_reply(id) {
                return r;
            }
            d.step();
        }
        panic!("no reply to {id}");
    }

    #[test]
    fn a_request_larger_than_the_ring_travels_in_pieces_and_so_does_its_reply() {
        let (mut c, mut d) = pair();
        d.chunk = 100;
        let value = "v".repeat(4000);
        let path = wire::path_arg("data/big").unwrap();
        let id = c.send(Op::Write, 0, &[&path, value.as_bytes()]).unwrap();
        let (h, p) = run(&mut c, &mut d, id);
        assert_eq!((h.ty, p.as_slice()), (11, &b"OK\0"[..]));
        assert_eq!(d.nodes["data/big"], value);
        let path = wire::path_arg("data/big").unwrap();
        let id = c.send(Op::Read, 0, &[&path]).unwrap();
        let (h, p) = run(&mut c, &mut d, id);
        assert_eq!(wire::reply(&h, &p, Op::Read).unwrap(), value.as_bytes());
    }

    #[test]
    fn replies_in_any_order_go_to_their_requests_and_events_to_their_watches() {
        let (mut c, mut d) = pair();
        d.reverse = true;
        d.nodes.insert("a".into(), "1".into());
        d.nodes.insert("b".into(), "2".into());
        c.add_watch("t1");
        let pa = wire::path_arg("a").unwrap();
        let pb = wire::path_arg("b").unwrap();
        let w = c.send(Op::Watch, 0, &[&pa, b"t1\0"]).unwrap();
        let ra = c.send(Op::Read, 0, &[&pa]).unwrap();
        let rb = c.send(Op::Read, 0, &[&pb]).unwrap();
        for _ in 0..10 {
            c.pump().unwrap();
            d.step();
        }
        c.pump().unwrap();
        assert_eq!(c.take_reply(rb).unwrap().1, b"2");
        assert_eq!(c.take_reply(ra).unwrap().1, b"1");
        assert_eq!(c.take_reply(w).unwrap().1, b"OK\0");
        assert!(c.take_fired("t1"), "a watch fires once when set");
        assert!(!c.take_fired("t1"));
        d.set("a/x", "3");
        d.step();
        c.pump().unwrap();
        assert!(c.take_fired("t1"));
        // An event for a token we do not hold is ignored; so is an abandoned reply.
        c.remove_watch("t1");
        d.set("a", "4");
        let gone = c.send(Op::Read, 0, &[&pa]).unwrap();
        c.abandon(gone);
        for _ in 0..4 {
            c.pump().unwrap();
            d.step();
        }
        c.pump().unwrap();
        assert!(!c.take_fired("t1"));
        assert_eq!(c.take_reply(gone), None);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn errors_come_back_as_errno() {
        let (mut c, mut d) = pair();
        let p = wire::path_arg("nothing/here").unwrap();
        let id = c.send(Op::Read, 0, &[&p]).unwrap();
        let (h, payload) = run(&mut c, &mut d, id);
        assert_eq!(
            wire::reply(&h, &payload, Op::Read),
            Err(XsError::Errno(wire::Errno::Enoent))
        );
    }

    #[test]
    fn inconsistent_indices_or_oversized_messages_break_the_connection() {
        let (mut c, d) = pair();
        drop(d);
        c.page
            .store::<u32>(RSP_PROD, c.page.load::<u32>(RSP_CONS).wrapping_add(2000));
        assert_eq!(c.pump(), Err(XsError::Broken));
        assert_eq!(c.send(Op::Read, 0, &[b"x\0"]), Err(XsError::Broken));

        let (mut c, d) = pair();
        drop(d);
        let cons: u32 = c.page.load(RSP_CONS);
        let mut header = Vec::new();
        for w in [2u32, 1, 0, 5000] {
            header.extend_from_slice(&w.to_le_bytes());
        }
        for (i, b) in header.iter().enumerate() {
            c.page
                .store::<u8>(RSP + (cons.wrapping_add(i as u32) % RING) as usize, *b);
        }
        c.page.store::<u32>(RSP_PROD, cons.wrapping_add(16));
        assert_eq!(c.pump(), Err(XsError::Broken));
    }
}
