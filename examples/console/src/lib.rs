//! The talk's console example (slide 21): `console @-> time @-> job`, writing "hello", then a
//! second later "world", four times.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use mirage_devices::time::NS_PER_SEC;
use mirage_devices::{Console, ConsoleError, Time};

/// `start(console, time)` writes `hello` and, a second later, `world`, four times; it fails if
/// the console does.
pub async fn start<C: Console, T: Time>(console: C, time: T) -> Result<(), ConsoleError> {
    for _ in 0..4 {
        console.log("hello").await?;
        time.sleep_ns(NS_PER_SEC).await;
        console.log("world").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_devices::testing::{block_on, InstantTime, MemoryConsole};

    #[test]
    fn prints_the_talks_output() {
        let (console, time) = (MemoryConsole::new(), InstantTime::new());
        block_on(start(console.clone(), time.clone())).unwrap();
        assert_eq!(console.contents(), "hello\nworld\n".repeat(4));
        assert_eq!(time.sleeps(), [NS_PER_SEC; 4]);
    }
}
