//! [`Solo5`]: the executor's platform on these targets.

use crate::sys;

/// `Solo5` is the platform the executor runs on: the tender's monotonic clock, and a wait that
/// yields to the tender (`solo5_yield`) until a net device has a frame or the next deadline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo5;

impl mirage_runtime::Platform for Solo5 {
    fn now_ns(&self) -> u64 {
        sys::now_ns()
    }

    fn wait(&self, deadline: Option<u64>) {
        sys::wait(deadline);
    }
}
