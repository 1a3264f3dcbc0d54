//! The one unsafe assertion of this crate, for bare-metal targets only.
#![allow(unsafe_code)]

/// `SingleCore<T>` lets a `static` hold a `T` that is not `Sync` (the executor's `RefCell`s
/// and `Rc`s) on a target with exactly one thread of control.
pub(crate) struct SingleCore<T>(pub(crate) T);

// SAFETY: this module is compiled only with the `bare-metal` feature and without `std`: the
// Xen and Solo5 images run one thread of control and never run Rust code from an interrupt
// handler (they poll), so a `SingleCore` is never accessed from two contexts at once, which
// is what `Sync` promises. The feature's documentation forbids it elsewhere.
unsafe impl<T> Sync for SingleCore<T> {}
