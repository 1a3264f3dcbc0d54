//! `Reporter`: the [`log`] facade printing through a [`Console`], as Mirage's `Logs` reporter,
//! so that `log::info!("Hello World!")` in unikernel code prints `INF [hello] Hello World!`.
//!
//! A line is the level as three letters (`ERR`, `WRN`, `INF`, `DBG`, `TRC`), the record's
//! target in brackets (the module path unless the caller names one) and the message. There
//! is no timestamp, so that the output of a run is reproducible.

use alloc::boxed::Box;
use alloc::string::String;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::console::Console;

/// `Reporter` is the installed logger's handle: it tells which level is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reporter {
    level: LevelFilter,
    installed: bool,
}

/// The logger that `log` calls: it owns a console handle for the whole run and filters on
/// `log::max_level()`, which the last [`Reporter::install`] set.
struct ConsoleLogger<C> {
    console: C,
}

impl Reporter {
    /// `install(console, level)` makes `console` the destination of the `log` macros, showing
    /// records at `level` (`error`, `warn`, `info`, `debug` or `trace`; anything else means
    /// `info`) and more severe.
    ///
    /// The logger lives for the rest of the program. Only the first call in a program installs
    /// one; later calls only change the level (see [`installed`](Reporter::installed)).
    pub fn install<C>(console: C, level: &str) -> Reporter
    where
        C: Console + Send + Sync + 'static,
    {
        let level = parse_level(level);
        let logger = Box::leak(Box::new(ConsoleLogger { console }));
        let installed = log::set_logger(logger).is_ok();
        log::set_max_level(level);
        Reporter { level, installed }
    }

    /// `level()` is the most verbose level shown.
    pub fn level(&self) -> LevelFilter {
        self.level
    }

    /// `installed()` is false if another logger was already installed when this one was made.
    pub fn installed(&self) -> bool {
        self.installed
    }
}

/// `parse_level(s)` is the level filter named by `s`, `info` if `s` names none.
pub fn parse_level(s: &str) -> LevelFilter {
    match s.to_ascii_lowercase().as_str() {
        "off" | "quiet" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Info,
    }
}

/// `format_line(record)` is the line printed for `record`, newline included.
fn format_line(record: &Record<'_>) -> String {
    let tag = match record.level() {
        Level::Error => "ERR",
        Level::Warn => "WRN",
        Level::Info => "INF",
        Level::Debug => "DBG",
        Level::Trace => "TRC",
    };
    // `format!`, not `writeln!` into a String: the image then carries one String writer,
    // alloc's, rather than a copy of it per crate that formats into one.
    alloc::format!("{tag} [{}] {}\n", record.target(), record.args())
}

impl<C: Console + Send + Sync> Log for ConsoleLogger<C> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // A logger has nowhere to report its own failure: a broken console drops lines.
            let _ = self.console.write_blocking(format_line(record).as_bytes());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::console::ConsoleError;
    use std::sync::{Arc, Mutex};
    use std::vec::Vec;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Console for Captured {
        async fn write(&self, data: &[u8]) -> Result<(), ConsoleError> {
            self.write_blocking(data)
        }
        async fn read(&self, _: &mut [u8]) -> Result<usize, ConsoleError> {
            Err(ConsoleError::Unsupported)
        }
        fn write_blocking(&self, data: &[u8]) -> Result<(), ConsoleError> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("error"), LevelFilter::Error);
        assert_eq!(parse_level("WARN"), LevelFilter::Warn);
        assert_eq!(parse_level("info"), LevelFilter::Info);
        assert_eq!(parse_level("debug"), LevelFilter::Debug);
        assert_eq!(parse_level("trace"), LevelFilter::Trace);
        assert_eq!(parse_level("bogus"), LevelFilter::Info);
    }

    // The only test that installs the process-wide logger.
    #[test]
    fn install_prints_filtered_lines_through_the_console() {
        let console = Captured::default();
        let reporter = Reporter::install(console.clone(), "info");
        assert!(reporter.installed());
        log::info!(target: "hello", "Hello World!");
        log::debug!(target: "hello", "hidden");
        log::error!(target: "net", "link {} down", 0);
        let second = Reporter::install(Captured::default(), "debug");
        assert!(!second.installed());
        log::debug!(target: "hello", "now shown");
        let text = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "INF [hello] Hello World!\nERR [net] link 0 down\nDBG [hello] now shown\n"
        );
    }
}
