//! Exception entry, for images only: the trap stubs of vectors 0-31 in two flavours, the ring 0
//! machinery that routes them (GDT, TSS with stacks of their own, IDT), loading identity page
//! tables, and the Rust entry that turns a frame into a [`Fault`] for the runtime's handler.
//!
//! - **Ring 0** (xen's PVH entry, hvt): an IDT of interrupt gates; every exception runs on an
//!   IST stack of its own (a 16 KiB one, and another for #DF, NMI and #MC), so that a stack
//!   overflow, whose page fault finds no room on the exhausted stack, is still handled. The
//!   processor pushes `[error code,] rip, cs, rflags, rsp, ss`; the faulting address of a page
//!   fault is CR2.
//! - **Xen PV**: the stubs are registered in Xen's trap table; Xen bounces an exception to the
//!   guest with `rcx, r11, [error code,] rip, cs, rflags, rsp, ss` on the current stack (a PV
//!   guest has no IST), which the stub pops back into `rcx` and `r11`. The faulting address is
//!   in the vCPU's `vcpu_info`, which the runtime's handler reads.
//!
//! Each stub pushes a zero error code where the processor pushes none, then the vector, and
//! jumps to its flavour's common tail, which calls [`mirage_bare_metal_trap`] with the frame;
//! nothing returns: the handler reports and ends the image.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::fault::{self, Fault, PAGE_FAULT};
use crate::paging::{PagingError, Tables};

// SAFETY: this only defines the stubs and their address tables. A stub runs only as an
// exception entry (from the IDT or Xen's trap table) with the frame described above on its
// stack; it aligns the stack and calls `mirage_bare_metal_trap`, which never returns.
global_asm!(
    r#"
    .section .text.mirage_trap, "ax"
    .macro MIRAGE_TRAP_STUB name, vector, errcode, pv
\name:
    .if \pv
    pop %rcx
    pop %r11
    .endif
    .if \errcode == 0
    push $0
    .endif
    push $\vector
    .if \pv
    jmp mirage_trap_pv_common
    .else
    jmp mirage_trap_ring0_common
    .endif
    .endm

mirage_trap_ring0_common:
    xor %esi, %esi
    jmp 1f
mirage_trap_pv_common:
    mov $1, %esi
1:  mov %rsp, %rdi
    and $-16, %rsp
    call mirage_bare_metal_trap
    ud2

    .irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    MIRAGE_TRAP_STUB mirage_trap_ring0_\v, \v, 0, 0
    MIRAGE_TRAP_STUB mirage_trap_pv_\v, \v, 0, 1
    .endr
    .irp v, 8,10,11,12,13,14,17,21,29,30
    MIRAGE_TRAP_STUB mirage_trap_ring0_\v, \v, 1, 0
    MIRAGE_TRAP_STUB mirage_trap_pv_\v, \v, 1, 1
    .endr

    /* Vectors 32-47 (the PC's remapped 8259 PICs, which a bare PVH image uses to wake
       from `hlt`): acknowledge both controllers and return. */
mirage_trap_irq:
    push %rax
    mov $0x20, %al
    out %al, $0xa0
    out %al, $0x20
    pop %rax
    iretq

    .section .rodata.mirage_trap, "a"
    .balign 8
    .global mirage_trap_ring0_table
mirage_trap_ring0_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad mirage_trap_ring0_\v
    .endr
    .rept 16
    .quad mirage_trap_irq
    .endr
    .global mirage_trap_pv_table
mirage_trap_pv_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad mirage_trap_pv_\v
    .endr
    "#,
    options(att_syntax)
);

extern "C" {
    /// The ring 0 stubs' addresses, by vector: the 32 exceptions, then 16 interrupts.
    static mirage_trap_ring0_table: [u64; VECTORS];
    /// The Xen PV stubs' addresses, by vector.
    static mirage_trap_pv_table: [u64; 32];
}

/// What a runtime does with a fault: report it and end the image.
pub type Handler = fn(&Fault) -> !;

/// The runtime's handler (a `Handler`; null until set).
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// `set_fault_handler(handler)` makes `handler` the one every exception reaches.
pub fn set_fault_handler(handler: Handler) {
    HANDLER.store(handler as *mut (), Ordering::SeqCst);
}

/// The Rust side of every stub: `frame` points at the vector, then the error code, then the
/// interrupted `rip, cs, rflags, rsp, ss`; `pv` is 1 for the Xen PV stubs.
#[no_mangle]
extern "C" fn mirage_bare_metal_trap(frame: *const u64, pv: u64) -> ! {
    // SAFETY: the stubs pass the frame they completed on their stack: seven words, the
    // vector and error code first.
    let [vector, error_code, rip, _cs, _rflags, rsp] =
        core::array::from_fn(|i| unsafe { frame.add(i).read() });
    let address = (vector == u64::from(PAGE_FAULT) && pv == 0).then(read_cr2);
    let fault = Fault {
        vector: vector as u8,
        error_code,
        rip,
        rsp,
        address,
        nested: fault::entered(),
    };
    let handler = HANDLER.load(Ordering::SeqCst);
    if handler.is_null() {
        // Unreachable: both installers set the handler before a stub can run.
        loop {
            core::hint::spin_loop();
        }
    }
    // SAFETY: only `set_fault_handler` stores into `HANDLER`, always a `Handler`.
    let handler: Handler = unsafe { core::mem::transmute::<*mut (), Handler>(handler) };
    handler(&fault)
}

/// `read_cr2()` is the address of the last page fault (ring 0 only).
fn read_cr2() -> u64 {
    let cr2: u64;
    // SAFETY: reading CR2 has no effect; only the ring 0 stubs get here.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
    cr2
}

/// `pv_trap_entries()` is the Xen PV stubs' addresses by vector, for Xen's trap table.
pub fn pv_trap_entries() -> [u64; 32] {
    // SAFETY: the table is constant data the assembly above defines.
    unsafe { (&raw const mirage_trap_pv_table).read() }
}

/// The exception handlers' stacks, each above a guard page that [`load_identity_map`] leaves
/// out of the page tables: the stack of every exception but the three below (IST1); the stack
/// of #DF, NMI and #MC (IST2), which may strike while IST1 is in use; and the stack of
/// interrupts (IST3), which come only while the processor waits in `hlt` but must not touch
/// the interrupted code's stack, whose red zone may be in use.
#[repr(C, align(4096))]
struct Stacks {
    fault_guard: [u8; 4096],
    fault: [u8; FAULT_STACK],
    critical_guard: [u8; 4096],
    critical: [u8; CRITICAL_STACK],
    interrupt_guard: [u8; 4096],
    interrupt: [u8; INTERRUPT_STACK],
}

const FAULT_STACK: usize = 16 * 1024;
const CRITICAL_STACK: usize = 8 * 1024;
const INTERRUPT_STACK: usize = 4 * 1024;

static mut STACKS: Stacks = Stacks {
    fault_guard: [0; 4096],
    fault: [0; FAULT_STACK],
    critical_guard: [0; 4096],
    critical: [0; CRITICAL_STACK],
    interrupt_guard: [0; 4096],
    interrupt: [0; INTERRUPT_STACK],
};

/// The gates of the IDT: the 32 exceptions, and the 16 vectors of the remapped PICs.
const VECTORS: usize = 48;

/// The 64-bit TSS (104 bytes: only the IST pointers and the I/O map base matter here), in
/// 32-bit words since its 64-bit fields are not 8-byte aligned.
static mut TSS: [u32; 26] = [0; 26];
/// The GDT: null, 64-bit code (0x08), data (0x10), the TSS (0x18, two slots). Writable:
/// loading the task register marks the TSS descriptor busy.
static mut GDT: [u64; 5] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0, 0];
/// The IDT: a gate of two words per vector.
static mut IDT: [u64; 2 * VECTORS] = [0; 2 * VECTORS];

const CODE: u64 = 0x08;
const DATA: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x18;

/// `install_ring0_traps(handler)` routes every exception (vectors 0-31) to `handler` through
/// a GDT, TSS and IDT of the image's own, each exception on an IST stack; vectors 32-47 (the
/// PICs' interrupts, which come only while the image enables them to wait in `hlt`) are
/// acknowledged and return.
///
/// # Safety
///
/// Ring 0 in long mode, once, at boot, with interrupts off.
pub unsafe fn install_ring0_traps(handler: Handler) {
    set_fault_handler(handler);
    let stacks = &raw mut STACKS;
    // SAFETY: only addresses are taken, of fields of a static.
    let (fault_top, critical_top, interrupt_top) = unsafe {
        (
            (&raw mut (*stacks).fault) as u64 + FAULT_STACK as u64,
            (&raw mut (*stacks).critical) as u64 + CRITICAL_STACK as u64,
            (&raw mut (*stacks).interrupt) as u64 + INTERRUPT_STACK as u64,
        )
    };
    let tss = &raw mut TSS;
    let word = |i: usize| (tss as *mut u32).wrapping_add(i);
    // SAFETY: the TSS, GDT and IDT are this module's statics, written only here (once, by
    // the contract) before the processor is told about them.
    unsafe {
        // IST1 at byte 36, IST2 at 44, IST3 at 52; the I/O map base (byte 102) past the
        // TSS's end.
        for (at, value) in [(9, fault_top), (11, critical_top), (13, interrupt_top)] {
            word(at).write(value as u32);
            word(at + 1).write((value >> 32) as u32);
        }
        word(25).write(104 << 16);
        let base = tss as u64;
        let limit = 103u64;
        let gdt = &raw mut GDT;
        (*gdt)[3] = (limit & 0xffff)
            | (base & 0xff_ffff) << 16
            | 0x89 << 40
            | ((limit >> 16) & 0xf) << 48
            | ((base >> 24) & 0xff) << 56;
        (*gdt)[4] = base >> 32;
        let table = (&raw const mirage_trap_ring0_table).read();
        let idt = &raw mut IDT;
        for (vector, &entry) in table.iter().enumerate() {
            let ist: u64 = match vector {
                2 | 8 | 18 => 2,
                0..32 => 1,
                _ => 3,
            };
            (*idt)[2 * vector] = (entry & 0xffff)
                | CODE << 16
                | ist << 32
                | 0x8e << 40
                | ((entry >> 16) & 0xffff) << 48;
            (*idt)[2 * vector + 1] = entry >> 32;
        }
    }
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let gdt = Pointer {
        limit: 5 * 8 - 1,
        base: (&raw const GDT) as u64,
    };
    let idt = Pointer {
        limit: (2 * VECTORS * 8 - 1) as u16,
        base: (&raw const IDT) as u64,
    };
    // SAFETY: the tables are complete; the new GDT has the code and data segments the image
    // runs with at the same selectors, reloaded here (CS through a far return).
    unsafe {
        asm!(
            "lgdt ({gdt})",
            "pushq ${code}",
            "lea 2f(%rip), {tmp}",
            "push {tmp}",
            "lretq",
            "2:",
            "mov {data:x}, %ds",
            "mov {data:x}, %es",
            "mov {data:x}, %ss",
            "ltr {tss:x}",
            "lidt ({idt})",
            gdt = in(reg) &raw const gdt,
            idt = in(reg) &raw const idt,
            code = const CODE,
            data = in(reg) u64::from(DATA),
            tss = in(reg) u64::from(TSS_SELECTOR),
            tmp = out(reg) _,
            options(att_syntax),
        );
    }
}

/// The page tables [`load_identity_map`] fills.
static mut TABLES: Tables = Tables::new();

/// `load_identity_map(top, holes)` switches to page tables that map `[0, top)` one-to-one,
/// but for the pages holding the addresses `holes` and the guard pages of the exception
/// handlers' stacks (see [`crate::paging`]).
///
/// # Safety
///
/// Ring 0, once, at boot: everything the image still uses lies in `[0, top)` outside the
/// holes, and the current page tables map the same addresses one-to-one.
pub unsafe fn load_identity_map(top: u64, holes: &[u64]) -> Result<(), PagingError> {
    let stacks = &raw mut STACKS;
    // SAFETY: only addresses are taken, of fields of a static.
    let guards = unsafe {
        [
            (&raw mut (*stacks).fault_guard) as u64,
            (&raw mut (*stacks).critical_guard) as u64,
            (&raw mut (*stacks).interrupt_guard) as u64,
        ]
    };
    let mut all = [0u64; 8];
    let n = holes.len();
    if n + guards.len() > all.len() {
        return Err(PagingError::TooManyHoles);
    }
    all[..n].copy_from_slice(holes);
    all[n..n + guards.len()].copy_from_slice(&guards);
    let tables = &raw mut TABLES;
    // SAFETY: the tables are not in use (this is the only call); nothing else refers to them.
    let root = unsafe { (*tables).identity(top, &all[..n + guards.len()])? };
    // SAFETY: the tables map what the image uses as the old ones did (the caller vouches),
    // so execution goes on unchanged; writing CR3 flushes the old translations.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
    Ok(())
}
