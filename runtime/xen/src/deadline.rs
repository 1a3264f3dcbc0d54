//! Waiting with a deadline: every wait on a peer (xenstored, a backend) is bounded, so a peer
//! that went silent becomes an error that names what was awaited, never a hang.

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Context, Poll};

use crate::sys;

/// `TimedOut`: the deadline passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// `after(ns)` is the monotonic clock `ns` nanoseconds from now.
pub(crate) fn after(ns: u64) -> u64 {
    sys::now_ns().saturating_add(ns)
}

/// `until(deadline, f)` polls `f` until it is ready, or fails once the monotonic clock reaches
/// `deadline`. `f` registers its own wakeup (an event channel) when it returns `Pending`.
pub(crate) async fn until<T>(
    deadline: u64,
    mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Result<T, TimedOut> {
    let mut sleep = pin!(mirage_runtime::sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(v) = f(cx) {
            return Poll::Ready(Ok(v));
        }
        sleep.as_mut().poll(cx).map(|()| Err(TimedOut))
    })
    .await
}
