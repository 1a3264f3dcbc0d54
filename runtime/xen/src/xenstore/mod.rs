//! The xenstore client: read, write, list, watch and transactions, over the domain's store
//! ring ([`connection`]) in the protocol of [`wire`].
//!
//! One [`Connection`] serves the whole image, behind a lock held only between awaits. Each
//! operation queues its request, pumps the ring and waits on the store's event channel for
//! its reply, demultiplexed by request id; at most [`MAX_IN_FLIGHT`] requests are in flight
//! (xenstored's quota is 20 per domain), and each waits at most [`REQUEST_TIMEOUT_NS`].
//! Relative paths are under the domain's home, `/local/domain/<domid>`.

mod connection;
pub(crate) mod wire;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Poll;

use connection::Connection;
use wire::{path_arg, Op};
pub use wire::{Errno, XsError};

use crate::deadline::{after, until};
use crate::events::Channel;
use crate::sys;

/// The most requests in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 16;
/// How long one request waits for its reply.
pub(crate) const REQUEST_TIMEOUT_NS: u64 = 10_000_000_000;

/// The connection and its event channel.
struct Store {
    conn: Connection,
    channel: Channel,
}

static STORE: spin::Mutex<Option<Store>> = spin::Mutex::new(None);

/// `with_store(f)` runs `f` on the connection, opening it on first use.
fn with_store<R>(f: impl FnOnce(&mut Store) -> R) -> Result<R, XsError> {
    open(&mut STORE.lock()).map(f)
}

/// `open(store)` is the connection in `store`, opened first if it is not yet: out of line,
/// so that each of [`with_store`]'s many instances does not carry a copy.
#[inline(never)]
fn open(store: &mut Option<Store>) -> Result<&mut Store, XsError> {
    if store.is_none() {
        let (page, port) = sys::xenstore_ring().ok_or(XsError::Unavailable)?;
        *store = Some(Store {
            conn: Connection::new(page),
            channel: Channel::bound(port),
        });
    }
    store.as_mut().ok_or(XsError::Unavailable)
}

impl Store {
    /// `pump()` moves bytes through the ring and signals xenstored if that freed or filled
    /// anything.
    fn pump(&mut self) -> Result<(), XsError> {
        if self.conn.pump()? {
            self.channel.notify();
        }
        Ok(())
    }
}

/// Forgets a request whose waiter was dropped or gave up, so its reply is discarded.
struct Pending(u32);

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = with_store(|s| s.conn.abandon(self.0));
    }
}

/// `request(op, tx, parts)` sends one request (in transaction `tx`, 0 for none) and is its
/// reply's payload.
async fn request(op: Op, tx: u32, parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
    let deadline = after(REQUEST_TIMEOUT_NS);
    let id = until(deadline, |cx| {
        match with_store(|s| {
            if s.conn.in_flight() >= MAX_IN_FLIGHT {
                s.channel.register(cx.waker());
                return Poll::Pending;
            }
            Poll::Ready(s.conn.send(op, tx, parts))
        }) {
            Ok(p) => p,
            Err(e) => Poll::Ready(Err(e)),
        }
    })
    .await
    .map_err(|_| XsError::Timeout)??;
    let pending = Pending(id);
    let (header, payload) = until(deadline, |cx| {
        let step = with_store(|s| -> Result<_, XsError> {
            s.pump()?;
            match s.conn.take_reply(id) {
                Some(reply) => Ok(Some(reply)),
                None => {
                    s.channel.register(cx.waker());
                    Ok(None)
                }
            }
        });
        match step.and_then(|r| r) {
            Ok(Some(reply)) => Poll::Ready(Ok(reply)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    })
    .await
    .map_err(|_| XsError::Timeout)??;
    drop(pending);
    wire::reply(&header, &payload, op)
}

/// `read(tx, path)` is the value of node `path`.
pub(crate) async fn read(tx: u32, path: &str) -> Result<String, XsError> {
    wire::text(request(Op::Read, tx, &[&path_arg(path)?]).await?)
}

/// `read_opt(path)` is the value of node `path`, or `None` if there is no such node.
pub(crate) async fn read_opt(path: &str) -> Result<Option<String>, XsError> {
    match read(0, path).await {
        Ok(v) => Ok(Some(v)),
        Err(XsError::Errno(Errno::Enoent)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `write(tx, path, value)` sets node `path` to `value`.
pub(crate) async fn write(tx: u32, path: &str, value: &str) -> Result<(), XsError> {
    request(Op::Write, tx, &[&path_arg(path)?, value.as_bytes()])
        .await
        .map(drop)
}

/// `directory(path)` is the names of node `path`'s children (none if it does not exist).
pub(crate) async fn directory(path: &str) -> Result<Vec<String>, XsError> {
    match request(Op::Directory, 0, &[&path_arg(path)?]).await {
        Ok(payload) => wire::children(&payload),
        Err(XsError::Errno(Errno::Enoent)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `transaction_start()` is a new transaction's id.
pub(crate) async fn transaction_start() -> Result<u32, XsError> {
    wire::transaction_id(&request(Op::TransactionStart, 0, &[b"\0"]).await?)
}

/// `transaction_end(tx, commit)` commits (or aborts) transaction `tx`;
/// `Err(XsError::Errno(Errno::Eagain))` means it conflicted and must be run again.
pub(crate) async fn transaction_end(tx: u32, commit: bool) -> Result<(), XsError> {
    let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
    request(Op::TransactionEnd, tx, &[arg]).await.map(drop)
}

/// `write_all(entries)` writes `(path, value)` pairs in one transaction, retrying it when
/// another writer conflicts (a few times).
pub(crate) async fn write_all(entries: &[(&str, &str)]) -> Result<(), XsError> {
    let mut attempts = 0;
    loop {
        let tx = transaction_start().await?;
        for (path, value) in entries {
            if let Err(e) = write(tx, path, value).await {
                let _ = transaction_end(tx, false).await;
                return Err(e);
            }
        }
        match transaction_end(tx, true).await {
            Err(XsError::Errno(Errno::Eagain)) if attempts < 10 => attempts += 1,
            r => return r,
        }
    }
}

/// A `Watch` on a node and its descendants; dropping it removes the watch.
pub(crate) struct Watch {
    path: String,
    token: String,
}

impl Watch {
    /// `new(path)` watches `path`. Like every watch, it fires once at once.
    pub(crate) async fn new(path: &str) -> Result<Watch, XsError> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let token = format!("mirage{}", NEXT.fetch_add(1, Ordering::Relaxed));
        with_store(|s| s.conn.add_watch(&token))?;
        let watch = Watch {
            path: path.into(),
            token,
        };
        let mut token_arg = Vec::from(watch.token.as_bytes());
        token_arg.push(0);
        request(Op::Watch, 0, &[&path_arg(path)?, &token_arg]).await?;
        Ok(watch)
    }

    /// `changed(deadline)` completes when the watch fires (perhaps spuriously: re-read the
    /// node), or fails with [`XsError::Timeout`] at `deadline`.
    pub(crate) async fn changed(&self, deadline: u64) -> Result<(), XsError> {
        until(deadline, |cx| {
            let step = with_store(|s| -> Result<bool, XsError> {
                s.pump()?;
                if s.conn.take_fired(&self.token) {
                    return Ok(true);
                }
                s.channel.register(cx.waker());
                Ok(false)
            });
            match step.and_then(|r| r) {
                Ok(true) => Poll::Ready(Ok(())),
                Ok(false) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
        .map_err(|_| XsError::Timeout)?
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = with_store(|s| {
            s.conn.remove_watch(&self.token);
            let mut token = Vec::from(self.token.as_bytes());
            token.push(0);
            if let Ok(path) = path_arg(&self.path) {
                let _ = s.conn.send_unanswered(Op::Unwatch, &[&path, &token]);
                let _ = s.pump();
            }
        });
    }
}

/// `wait_for(path, deadline, done)` waits until node `path`'s value (`None`: no node)
/// satisfies `done`, and is that value; at `deadline` it fails with the last value seen.
pub(crate) async fn wait_for(
    path: &str,
    deadline: u64,
    done: impl Fn(Option<&str>) -> bool,
) -> Result<Option<String>, WaitError> {
    let watch = Watch::new(path).await.map_err(WaitError::Xenstore)?;
    loop {
        let value = read_opt(path).await.map_err(WaitError::Xenstore)?;
        if done(value.as_deref()) {
            return Ok(value);
        }
        match watch.changed(deadline).await {
            Ok(()) => {}
            Err(XsError::Timeout) => return Err(WaitError::TimedOut { last: value }),
            Err(e) => return Err(WaitError::Xenstore(e)),
        }
    }
}

/// Why [`wait_for`] gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The deadline passed; the node's last value.
    TimedOut {
        /// `None` if the node did not exist.
        last: Option<String>,
    },
    /// xenstore failed.
    Xenstore(XsError),
}
