//! [`Xen`]: the executor's platform on this target.

use crate::{events, sys};

/// `Xen` is the platform the executor runs on: Xen's system time (or the time-stamp counter
/// without Xen) and a wait that sleeps the vCPU with `SCHEDOP_poll` on the event channels
/// device futures wait on, until one has an event or the next deadline passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Xen;

impl mirage_runtime::Platform for Xen {
    fn now_ns(&self) -> u64 {
        sys::now_ns()
    }

    fn wait(&self, deadline: Option<u64>) {
        events::wait(deadline);
    }
}
