//! The devices every bare-metal target builds the same way from three primitives of its
//! platform (a monotonic clock, a wall clock and console output): [`Time`], [`Mclock`],
//! [`Pclock`], an output-only [`Console`], and [`Random`] from RDRAND. A runtime implements
//! [`Primitives`] for its platform type and exports these under its own names
//! (`pub type Console = mirage_bare_metal::devices::Console<Xen>;`).

use core::fmt::Debug;
use core::marker::PhantomData;

use mirage_devices::{ConsoleError, RandomError, Timestamp};

/// What a bare-metal platform provides for the shared devices.
pub trait Primitives: Copy + Default + Debug + Send + Sync + 'static {
    /// Nanoseconds on the monotonic clock.
    fn now_ns() -> u64;
    /// The wall clock.
    fn wall_clock() -> Timestamp;
    /// Writes bytes to the console, all of them, before returning.
    fn console_write(bytes: &[u8]);
}

/// `Time<P>` sleeps on the executor's timers, which platform `P` waits for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Time<P>(PhantomData<P>);

impl<P: Primitives> Time<P> {
    /// `new()` is the time device.
    pub fn new() -> Self {
        Time(PhantomData)
    }
}

impl<P: Primitives> mirage_devices::Time for Time<P> {
    async fn sleep_ns(&self, ns: u64) {
        mirage_runtime::sleep_until(P::now_ns().saturating_add(ns)).await;
    }
}

/// `Mclock<P>` is platform `P`'s monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mclock<P>(PhantomData<P>);

impl<P: Primitives> Mclock<P> {
    /// `new()` is the monotonic clock device.
    pub fn new() -> Self {
        Mclock(PhantomData)
    }
}

impl<P: Primitives> mirage_devices::Mclock for Mclock<P> {
    fn elapsed_ns(&self) -> u64 {
        P::now_ns()
    }
}

/// `Pclock<P>` is platform `P`'s wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pclock<P>(PhantomData<P>);

impl<P: Primitives> Pclock<P> {
    /// `new()` is the wall clock device.
    pub fn new() -> Self {
        Pclock(PhantomData)
    }
}

impl<P: Primitives> mirage_devices::Pclock for Pclock<P> {
    fn now(&self) -> Timestamp {
        P::wall_clock()
    }
}

/// `Console<P>` writes to platform `P`'s console. It has no input: bare-metal targets give
/// a guest none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console<P>(PhantomData<P>);

impl<P: Primitives> Console<P> {
    /// `connect()` is the console.
    pub fn connect() -> Self {
        Console(PhantomData)
    }
}

impl<P: Primitives> mirage_devices::Console for Console<P> {
    async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
        self.write_blocking(data)
    }

    async fn read(&self, _buf: &mut [u8]) -> Result<usize, ConsoleError> {
        Err(ConsoleError::Unsupported)
    }

    fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
        P::console_write(data);
        Ok(())
    }
}

/// `Random<P>` fills buffers from the processor's RDRAND. There is no fallback: without
/// RDRAND (QEMU's default TCG CPU, for one) `fill` fails with [`RandomError::Unavailable`]
/// rather than hand out predictable bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random<P>(PhantomData<P>);

impl<P: Primitives> Random<P> {
    /// `new()` is the random device.
    pub fn new() -> Self {
        Random(PhantomData)
    }
}

impl<P: Primitives> mirage_devices::Random for Random<P> {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let word = crate::random_u64().ok_or(RandomError::Unavailable)?;
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
