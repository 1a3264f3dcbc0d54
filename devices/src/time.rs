//! The `time` signature: waiting for a duration, as Mirage's `TIME`.

/// A `Time` device suspends the calling task for a while without blocking the others.
///
/// This is the talk's `TIME` (slide 14): the one thing `hello` needs from the outside world.
/// Implementations register a deadline with the target's executor; the other tasks keep
/// running meanwhile.
pub trait Time: Clone {
    /// `sleep_ns(ns)` completes once at least `ns` nanoseconds have passed on the monotonic
    /// clock.
    async fn sleep_ns(&self, ns: u64);
}

/// `NS_PER_SEC` is the number of nanoseconds in a second, for `sleep_ns(n * NS_PER_SEC)`.
pub const NS_PER_SEC: u64 = 1_000_000_000;
