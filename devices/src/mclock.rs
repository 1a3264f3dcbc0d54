//! The `mclock` signature: a monotonic clock, as Mirage's `MCLOCK`.

/// An `Mclock` counts nanoseconds that never go backwards, from an unspecified origin
/// (usually boot). Use it to measure durations; use a [`Pclock`](crate::Pclock) for the date.
pub trait Mclock: Clone {
    /// `elapsed_ns()` is the number of nanoseconds since the clock's origin.
    fn elapsed_ns(&self) -> u64;

    /// `period_ns()` is the clock's resolution in nanoseconds, if the target knows it.
    fn period_ns(&self) -> Option<u64> {
        None
    }
}
