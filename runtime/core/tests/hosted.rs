//! A hosted build of the runtime with only the `bare-metal` feature (the bare-metal runtimes'
//! own tests and checks) must not share the executor's state between threads: `spawn` and
//! `block_on` are safe functions, so two threads running executors at once must each get
//! their own. Only images (`--cfg mirage_xen_image` / `mirage_solo5_image`) keep the state in
//! a static, which their one thread of control makes sound.
//!
//! `scripts/test` runs this with only that feature (`cargo test -p mirage-runtime --features
//! bare-metal --test hosted`), where a static state shared by the two threads fails it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirage_runtime::{block_on, sleep_until, spawn, Platform};

/// A platform on the real clock that sleeps until the deadline.
struct Host(Instant);

impl Platform for Host {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    fn wait(&self, deadline: Option<u64>) {
        let now = self.now_ns();
        let until = deadline.unwrap_or(now + 1_000_000);
        std::thread::sleep(Duration::from_nanos(until.saturating_sub(now)));
    }
}

#[test]
fn two_threads_run_their_own_executors_at_the_same_time() {
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2u64)
        .map(|n| {
            let inside = inside.clone();
            std::thread::spawn(move || {
                let host = Host(Instant::now());
                block_on(&host, async move {
                    // Each executor has a task of its own, spawned while the other thread's
                    // executor is running too.
                    inside.fetch_add(1, Ordering::SeqCst);
                    let started = Instant::now();
                    while inside.load(Ordering::SeqCst) < 2 {
                        assert!(
                            started.elapsed() < Duration::from_secs(10),
                            "the other thread's executor never started"
                        );
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let task = spawn(async move { n * 10 });
                    sleep_until(5_000_000).await;
                    task.await + n
                })
            })
        })
        .collect();
    let results: Vec<u64> = threads
        .into_iter()
        .map(|t| t.join().expect("an executor failed"))
        .collect();
    assert_eq!(results, [0, 11]);
}
