//! Doubles for testing unikernel code without a target: an executor for futures that never
//! wait, a [`Time`] that does not sleep and a [`Console`] that records.
//!
//! Enabled by the `testing` feature, for dev-dependencies only.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::console::{Console, ConsoleError};
use crate::time::Time;

/// `block_on(f)` polls `f` once and returns its output.
///
/// # Panics
///
/// If `f` is pending: it waits on something real, so run it on a target's executor instead.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a future under test waited on something real"),
    }
}

/// `InstantTime` is a [`Time`] whose sleeps return at once and are only counted.
#[derive(Clone, Debug, Default)]
pub struct InstantTime {
    sleeps: Rc<RefCell<Vec<u64>>>,
}

impl InstantTime {
    /// `new()` is a clock that has not slept yet.
    pub fn new() -> InstantTime {
        InstantTime::default()
    }

    /// `sleeps()` is the duration of every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<u64> {
        self.sleeps.borrow().clone()
    }
}

impl Time for InstantTime {
    async fn sleep_ns(&self, ns: u64) {
        self.sleeps.borrow_mut().push(ns);
    }
}

/// `MemoryConsole` is a [`Console`] that records what is written and has no input. Clones
/// share the record.
#[derive(Clone, Debug, Default)]
pub struct MemoryConsole {
    written: Rc<RefCell<Vec<u8>>>,
    writes: Rc<Cell<usize>>,
}

impl MemoryConsole {
    /// `new()` is a console with nothing written.
    pub fn new() -> MemoryConsole {
        MemoryConsole::default()
    }

    /// `contents()` is everything written so far, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.written.borrow()).into_owned()
    }

    /// `writes()` is how many writes were made.
    pub fn writes(&self) -> usize {
        self.writes.get()
    }
}

impl Console for MemoryConsole {
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_blocking(data)
    }

    async fn read(&self, _: &mut [u8]) -> Result<usize, ConsoleError> {
        Err(ConsoleError::Unsupported)
    }

    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.written.borrow_mut().extend_from_slice(data);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }
}
