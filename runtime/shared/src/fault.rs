//! CPU exceptions, reported: what a runtime's exception handler prints before it ends the image
//! with the crash status, and how it tells a stack overflow from any other fault.
//!
//! A runtime gives every stack a guard page below it, mapped nowhere, and records it with
//! [`set_stack_guard`]. The exception entry (`arch`'s trap stubs: an IDT with its own stacks
//! in ring 0, or Xen's trap table for PV) turns the processor's frame into a [`Fault`] and
//! calls the runtime's handler, which writes [`Fault::report`] on its console and stops. A page
//! fault inside the guard page is reported as a stack overflow. Everything here is integer
//! arithmetic into a fixed buffer: a handler runs with the heap possibly broken and on a small
//! stack of its own, and hvt guests on some hosts fault on floating point.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The page-fault vector, whose faulting address (CR2) is reported.
pub const PAGE_FAULT: u8 = 14;

/// The size of a page, and of a guard page.
pub const PAGE_SIZE: u64 = 4096;

/// `has_error_code(vector)` says whether the processor pushes an error code for exception
/// `vector` (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX).
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Each exception's mnemonic (three bytes) and name, by vector, `|` between them; the
/// reserved vectors' entries are empty. (One string rather than a table of pairs: it is in
/// every image, and a table of string slices costs more than its text.)
const VECTOR_NAMES: &str = "#DEdivide error|#DBdebug|NMInon-maskable interrupt|#BPbreakpoint|\
    #OFoverflow|#BRbound range exceeded|#UDinvalid opcode|#NMdevice not available|\
    #DFdouble fault||#TSinvalid TSS|#NPsegment not present|#SSstack-segment fault|\
    #GPgeneral protection|#PFpage fault||#MFx87 floating-point error|#ACalignment check|\
    #MCmachine check|#XMSIMD floating-point error|#VEvirtualization exception|\
    #CPcontrol protection";

/// `vector_name(vector)` is exception `vector`'s mnemonic and name.
pub fn vector_name(vector: u8) -> (&'static str, &'static str) {
    let field_end = |s: &str| s.bytes().position(|b| b == b'|');
    let mut entry = VECTOR_NAMES;
    for _ in 0..vector {
        entry = field_end(entry)
            .and_then(|i| entry.get(i + 1..))
            .unwrap_or("");
    }
    let end = field_end(entry).unwrap_or(entry.len());
    match (entry.get(..3), entry.get(3..end)) {
        (Some(mnemonic), Some(name)) if !name.is_empty() => (mnemonic, name),
        _ => ("#??", "reserved exception"),
    }
}

/// A CPU exception as the handler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector (0-31).
    pub vector: u8,
    /// The error code the processor pushed (0 for vectors without one).
    pub error_code: u64,
    /// The faulting instruction (or the one after it, for traps).
    pub rip: u64,
    /// The stack pointer when the exception happened.
    pub rsp: u64,
    /// For a page fault, the address accessed (CR2); `None` if unknown.
    pub address: Option<u64>,
    /// Whether this fault happened while another one was being handled: the handler should
    /// stop without touching the console again.
    pub nested: bool,
}

/// The guard page's start (0: none recorded).
static GUARD: AtomicU64 = AtomicU64::new(0);

/// `set_stack_guard(page)` records the guard page below the stack: the page at `page` (page
/// aligned), which the runtime leaves unmapped.
pub fn set_stack_guard(page: u64) {
    GUARD.store(page, Ordering::Relaxed);
}

/// `stack_guard()` is the recorded guard page, if any.
pub fn stack_guard() -> Option<Range<u64>> {
    match GUARD.load(Ordering::Relaxed) {
        0 => None,
        page => Some(page..page + PAGE_SIZE),
    }
}

/// Set while a fault is being handled.
static HANDLING: AtomicBool = AtomicBool::new(false);

/// `entered()` marks a fault as being handled and says whether one already was (the fault is
/// then nested).
pub fn entered() -> bool {
    HANDLING.swap(true, Ordering::SeqCst)
}

/// `Report` is a fault's one-line report, in a fixed buffer.
pub struct Report {
    buf: [u8; 256],
    len: usize,
}

impl Report {
    fn new() -> Report {
        Report {
            buf: [0; 256],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) -> &mut Report {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
        self
    }

    // `text`, `hex` and `decimal` are called once per piece of the report: out of line, the
    // handler is a list of calls instead of a copy loop per piece (a kilobyte of every image).
    #[inline(never)]
    fn text(&mut self, s: &str) -> &mut Report {
        for &b in s.as_bytes() {
            self.byte(b);
        }
        self
    }

    #[inline(never)]
    fn hex(&mut self, v: u64) -> &mut Report {
        self.text("0x");
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.byte(b"0123456789abcdef"[((v >> (4 * i)) & 0xf) as usize]);
        }
        self
    }

    #[inline(never)]
    fn decimal(&mut self, v: u8) -> &mut Report {
        if v >= 10 {
            self.decimal(v / 10);
        }
        self.byte(b'0' + v % 10)
    }

    /// `bytes()` is the report's text, newline included.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Fault {
    /// `is_stack_overflow(guard)` says whether this is a page fault inside `guard`.
    pub fn is_stack_overflow(&self, guard: Option<Range<u64>>) -> bool {
        match (self.vector, self.address, guard) {
            (PAGE_FAULT, Some(address), Some(guard)) => guard.contains(&address),
            _ => false,
        }
    }

    /// `report(guard)` is the fault's report: what happened, where (the address accessed, for a
    /// page fault), the instruction and stack pointers and the error code; a page fault inside
    /// `guard` (the stack's guard page) is reported as a stack overflow.
    ///
    /// ```text
    /// fault: stack overflow: #PF (page fault, vector 14) at address 0x1fff8 in the stack's guard page 0x1f000-0x20000, rip 0x100a2c, rsp 0x20000, error code 0x2
    /// fault: #UD (invalid opcode, vector 6), rip 0x100a2c, rsp 0x2ffc0
    /// ```
    pub fn report(&self, guard: Option<Range<u64>>) -> Report {
        let mut r = Report::new();
        let (mnemonic, name) = vector_name(self.vector);
        r.text("fault: ");
        if self.is_stack_overflow(guard.clone()) {
            r.text("stack overflow: ");
        }
        r.text(mnemonic)
            .text(" (")
            .text(name)
            .text(", vector ")
            .decimal(self.vector)
            .text(")");
        if self.vector == PAGE_FAULT {
            match self.address {
                Some(address) => {
                    r.text(" at address ").hex(address);
                    if let Some(guard) = guard.filter(|g| g.contains(&address)) {
                        r.text(" in the stack's guard page ")
                            .hex(guard.start)
                            .text("-")
                            .hex(guard.end);
                    } else {
                        let access = match self.error_code {
                            e if e & 0x10 != 0 => " (instruction fetch, ",
                            e if e & 0x2 != 0 => " (write, ",
                            _ => " (read, ",
                        };
                        r.text(access).text(if self.error_code & 1 == 0 {
                            "not mapped)"
                        } else {
                            "protection)"
                        });
                    }
                }
                None => {
                    r.text(" at an unknown address");
                }
            }
        }
        r.text(", rip ").hex(self.rip).text(", rsp ").hex(self.rsp);
        if has_error_code(self.vector) {
            r.text(", error code ").hex(self.error_code);
        }
        r.text("\n");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(vector: u8, address: Option<u64>) -> Fault {
        Fault {
            vector,
            error_code: if has_error_code(vector) { 2 } else { 0 },
            rip: 0x10_0a2c,
            rsp: 0x2_0000,
            address,
            nested: false,
        }
    }

    fn text(r: &Report) -> &str {
        core::str::from_utf8(r.bytes()).unwrap()
    }

    #[test]
    fn a_page_fault_in_the_guard_page_is_a_stack_overflow() {
        let guard = Some(0x1_f000..0x2_0000);
        let f = fault(PAGE_FAULT, Some(0x1_fff8));
        assert!(f.is_stack_overflow(guard.clone()));
        assert_eq!(
            text(&f.report(guard.clone())),
            "fault: stack overflow: #PF (page fault, vector 14) at address 0x1fff8 in the \
             stack's guard page 0x1f000-0x20000, rip 0x100a2c, rsp 0x20000, error code 0x2\n"
        );
        // Just past the guard, or without a guard recorded: an ordinary page fault.
        let above = fault(PAGE_FAULT, Some(0x2_0000));
        assert!(!above.is_stack_overflow(guard.clone()));
        assert!(!f.is_stack_overflow(None));
        assert!(!fault(6, Some(0x1_fff8)).is_stack_overflow(guard));
    }

    #[test]
    fn other_faults_say_their_vector_address_and_instruction() {
        assert_eq!(
            text(&fault(PAGE_FAULT, Some(0)).report(None)),
            "fault: #PF (page fault, vector 14) at address 0x0 (write, not mapped), rip \
             0x100a2c, rsp 0x20000, error code 0x2\n"
        );
        let mut read = fault(PAGE_FAULT, Some(0x8));
        read.error_code = 0;
        assert_eq!(
            text(&read.report(None)),
            "fault: #PF (page fault, vector 14) at address 0x8 (read, not mapped), rip \
             0x100a2c, rsp 0x20000, error code 0x0\n"
        );
        read.error_code = 0x11;
        assert!(text(&read.report(None)).contains("0x8 (instruction fetch, protection)"));
        assert_eq!(
            text(&fault(6, None).report(Some(0..4096))),
            "fault: #UD (invalid opcode, vector 6), rip 0x100a2c, rsp 0x20000\n"
        );
        assert_eq!(
            text(&fault(13, None).report(None)),
            "fault: #GP (general protection, vector 13), rip 0x100a2c, rsp 0x20000, error \
             code 0x2\n"
        );
        assert!(text(&fault(PAGE_FAULT, None).report(None)).contains("at an unknown address"));
        assert!(text(&fault(31, None).report(None))
            .starts_with("fault: #?? (reserved exception, vector 31)"));
        let mut high = fault(0, None);
        high.rip = u64::MAX;
        assert!(text(&high.report(None)).contains("rip 0xffffffffffffffff,"));
    }

    #[test]
    fn every_vector_has_its_name_and_the_reserved_ones_say_so() {
        assert_eq!(vector_name(0), ("#DE", "divide error"));
        assert_eq!(vector_name(2), ("NMI", "non-maskable interrupt"));
        assert_eq!(vector_name(8), ("#DF", "double fault"));
        assert_eq!(vector_name(10), ("#TS", "invalid TSS"));
        assert_eq!(vector_name(16), ("#MF", "x87 floating-point error"));
        assert_eq!(vector_name(21), ("#CP", "control protection"));
        for reserved in [9, 15, 22, 31, 255] {
            assert_eq!(vector_name(reserved), ("#??", "reserved exception"));
        }
        for (vector, want) in [(0, "vector 0)"), (9, "vector 9)"), (200, "vector 200)")] {
            assert!(
                text(&fault(vector, None).report(None)).contains(want),
                "{vector}"
            );
        }
        let named = (0..32).filter(|&v| vector_name(v).0 != "#??").count();
        assert_eq!(named, 20);
    }

    #[test]
    fn error_codes_are_those_the_processor_pushes() {
        let with: Vec<u8> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn the_guard_is_recorded_once_set() {
        set_stack_guard(0x5000);
        assert_eq!(stack_guard(), Some(0x5000..0x6000));
    }
}
