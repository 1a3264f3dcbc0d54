//! x86_64: `memcpy` and friends ([`mem`]).

mod mem;
