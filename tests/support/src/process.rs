//! Child processes with deadlines: started with their output collected as it comes (so a
//! chatty child never blocks on a full pipe), killed with everything they started when the
//! deadline passes or the handle is dropped, and when the test process itself dies.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a process ended and what it printed.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Its exit status (`None` if a signal ended it, as a kill at the deadline does).
    pub status: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
    /// Whether the deadline passed and it was killed.
    pub timed_out: bool,
}

/// A running child process (with its own process group), killed when dropped.
pub struct Process {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    started: Instant,
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    }))
}

fn text(reader: Option<JoinHandle<Vec<u8>>>) -> String {
    let bytes = reader
        .map(|r| r.join().unwrap_or_default())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Process {
    /// `spawn(cmd)` starts `cmd` with no input, its output collected, in a process group of
    /// its own (so that a deadline kills what it started too), killed if this process dies
    /// first (an interrupted test run leaves no emulator behind).
    #[allow(unsafe_code)]
    pub fn spawn(cmd: &mut Command) -> Process {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // system call, which is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Process {
            stdout: collect(child.stdout.take()),
            stderr: collect(child.stderr.take()),
            child,
            started: Instant::now(),
        }
    }

    /// `is_running()` is true until the process exits.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `wait(deadline)` waits until the process ends, or kills it once `deadline` has passed
    /// since it started.
    pub fn wait(mut self, deadline: Duration) -> Finished {
        let timed_out = loop {
            if !self.is_running() {
                break false;
            }
            if self.started.elapsed() > deadline {
                break true;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.finish(timed_out)
    }

    /// `kill()` ends the process now and returns what it printed.
    pub fn kill(self) -> Finished {
        self.finish(false)
    }

    fn finish(mut self, timed_out: bool) -> Finished {
        self.kill_group();
        let status = self.child.wait().ok().and_then(|s| s.code());
        let took = self.started.elapsed();
        Finished {
            status,
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
            took,
            timed_out,
        }
    }

    /// `kill_group()` kills the process, if it still runs, and whatever it started in its
    /// group.
    #[allow(unsafe_code)]
    fn kill_group(&mut self) {
        if !self.is_running() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: `kill` takes no pointers. The group is the child's own (`process_group(0)`
            // at spawn), and the child is not reaped yet, so its id names nothing else.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.wait();
    }
}

/// `run(cmd, deadline)` runs `cmd` to its end, killing it once `deadline` has passed.
pub fn run(cmd: &mut Command, deadline: Duration) -> Finished {
    Process::spawn(cmd).wait(deadline)
}

/// `wrk_errors(report)` is the errors a `wrk` report counts: connect, read, write and timeout
/// errors, and responses other than 2xx or 3xx.
pub fn wrk_errors(report: &str) -> u64 {
    let mut errors = 0;
    for line in report.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    errors
}
