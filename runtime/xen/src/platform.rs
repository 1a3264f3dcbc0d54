//! [`Xen`]: the executor's platform on this target.

use crate::sys;

/// `Xen` is the platform the executor runs on: Xen's system time (or the time-stamp counter
/// without Xen) and a wait that sleeps the vCPU with `SCHEDOP_poll` until the next deadline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Xen;

impl mirage_runtime::Platform for Xen {
    fn now_ns(&self) -> u64 {
        sys::now_ns()
    }

    fn wait(&self, deadline: Option<u64>) {
        sys::wait(deadline);
    }
}
