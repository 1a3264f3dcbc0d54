//! The machine layer: the `mem*` functions, in assembly.
#![allow(unsafe_code)]

#[cfg(all(target_arch = "x86_64", any(mirage_xen_image, mirage_solo5_image)))]
mod x86_64;
