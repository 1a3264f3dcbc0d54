//! The one unsafe assertion of this crate, compiled only into bare-metal images (the
//! `mirage_xen_image` or `mirage_solo5_image` cfg that those targets' rustc flags set, without
//! `std`): hosted builds, even with the `bare-metal` feature, keep the executor's state in a
//! thread-local instead and have no unsafe code.
#![allow(unsafe_code)]

/// `SingleCore<T>` lets a `static` hold a `T` that is not `Sync` (the executor's `RefCell`s
/// and `Rc`s) on a target with exactly one thread of control.
pub(crate) struct SingleCore<T>(pub(crate) T);

// SAFETY: this module is compiled only into Xen and Solo5 images (see the module's doc), which
// run one thread of control and never run Rust code that touches the executor from an
// interrupt or exception handler (they poll; a fault handler only reports and stops), so a
// `SingleCore` is never accessed from two contexts at once, which is what `Sync` promises.
unsafe impl<T> Sync for SingleCore<T> {}
