//! What a target tells the portable devices about the machine: a source of entropy (the
//! direct TCP/IP stack's random seed, hence its initial sequence numbers and ephemeral ports)
//! and the heap (the budgets of socket pools and buffers are sized from it).
//!
//! A target's entry point calls [`install`] once, before the unikernel runs: `getrandom(2)` and
//! a counting allocator on unix, RDRAND and the fixed heap on the bare-metal targets. Until
//! then, and for what a target does not have, the accessors return `None`, and each device
//! says what it does instead.

use spin::Once;

/// `Heap` is the state of the image's heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heap {
    /// The heap's fixed size in bytes, or `None` where it grows on demand (a unix process).
    pub size: Option<usize>,
    /// The bytes allocated right now.
    pub used: usize,
}

/// `Resources` is what a target provides, as plain functions.
#[derive(Clone, Copy, Debug)]
pub struct Resources {
    /// `entropy()` is 64 unpredictable bits from the platform, or `None` if it has no source.
    pub entropy: fn() -> Option<u64>,
    /// `heap()` is the heap's size and use, or `None` if the target cannot tell.
    pub heap: fn() -> Option<Heap>,
}

static RESOURCES: Once<Resources> = Once::new();

/// `install(resources)` makes `resources` the target's; only the first call counts.
pub fn install(resources: Resources) {
    RESOURCES.call_once(|| resources);
}

/// `entropy()` is 64 unpredictable bits from the platform's source, if it has one.
pub fn entropy() -> Option<u64> {
    (RESOURCES.get()?.entropy)()
}

/// `heap()` is the size and use of the image's heap, if the target can tell.
pub fn heap() -> Option<Heap> {
    (RESOURCES.get()?.heap)()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_before_install_then_the_targets_functions() {
        // Tests share the process: this is the only one that installs.
        assert_eq!(heap(), None);
        install(Resources {
            entropy: || Some(7),
            heap: || {
                Some(Heap {
                    size: Some(64),
                    used: 8,
                })
            },
        });
        install(Resources {
            entropy: || None,
            heap: || None,
        });
        assert_eq!(entropy(), Some(7));
        assert_eq!(
            heap(),
            Some(Heap {
                size: Some(64),
                used: 8
            })
        );
    }
}
