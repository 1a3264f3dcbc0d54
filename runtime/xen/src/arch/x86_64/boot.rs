//! The image's two entry points and the ELF notes that announce them.
//!
//! - **PV** (`_start`, named by `XEN_ELFNOTE_ENTRY`): Xen enters in 64-bit mode with paging
//!   on, `%rsi` pointing at `start_info` and `%rsp` at the end of the bootstrap region. The
//!   entry switches to the image's own stack and calls `mirage_xen_pv_start(start_info,
//!   boot_rsp)`. A PV guest cannot touch `%cr0`/`%cr4`: Xen already runs it with SSE enabled.
//! - **PVH** (`_start32`, named by `XEN_ELFNOTE_PHYS32_ENTRY`): entered in 32-bit protected
//!   mode without paging, `%ebx` holding the physical address of `hvm_start_info`. The entry
//!   identity-maps the first 4 GiB with 2 MiB pages, enables PAE, long mode, paging and SSE
//!   (`CR0.MP`, not `CR0.EM`, `CR4.OSFXSR|OSXMMEXCPT`), loads a 64-bit GDT and calls
//!   `mirage_xen_pvh_start(start_info_paddr)`.
//!
//! - **Linux** (`_start` with `%rsi` = 0): the image was executed as a Linux process (whose
//!   `execve` clears every register but `%rsp`); the entry calls `mirage_xen_linux_exec(rsp)`,
//!   which says what the image is and how to boot it, and exits 64
//!   (`mirage_bare_metal::linux`).
//!
//! The stack (in the bss, above a guard page) is the same for both; below the guard lie the
//! boot page tables, and the pages Xen maps (hypercall page, shared info, console ring, grant
//! frames) further down, out of its way.
//!
//! The notes follow Xen's `public/elfnote.h`: GUEST_OS, XEN_VERSION "xen-3.0", LOADER
//! "generic", VIRT_BASE 0 and PADDR_OFFSET 0 (virtual = physical = link address), ENTRY,
//! HYPERCALL_PAGE, FEATURES (with `dom0`, so the image may be the initial domain) and
//! PHYS32_ENTRY. Interrupts stay off in both modes: the runtime polls.

use core::arch::global_asm;

/// The size of the image's stack, in the bss.
pub(crate) const STACK_SIZE: usize = 256 * 1024;

// SAFETY: this assembly only defines symbols (the entries, the notes, the hypercall page, the
// stack and the PVH page tables); it runs only as the image's entry, before any Rust code,
// with the machine state the PV and PVH ABIs specify.
global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 7f - 6f, 6          /* XEN_ELFNOTE_GUEST_OS */
    .asciz "Xen"
6:  .asciz "Mirage"
7:  .balign 4
    .long 4, 7f - 6f, 5          /* XEN_ELFNOTE_XEN_VERSION */
    .asciz "Xen"
6:  .asciz "xen-3.0"
7:  .balign 4
    .long 4, 7f - 6f, 8          /* XEN_ELFNOTE_LOADER */
    .asciz "Xen"
6:  .asciz "generic"
7:  .balign 4
    .long 4, 8, 3                /* XEN_ELFNOTE_VIRT_BASE */
    .asciz "Xen"
    .quad 0
    .long 4, 8, 4                /* XEN_ELFNOTE_PADDR_OFFSET */
    .asciz "Xen"
    .quad 0
    .long 4, 8, 1                /* XEN_ELFNOTE_ENTRY */
    .asciz "Xen"
    .quad _start
    .long 4, 8, 2                /* XEN_ELFNOTE_HYPERCALL_PAGE */
    .asciz "Xen"
    .quad mirage_xen_hypercall_page
    .long 4, 7f - 6f, 10         /* XEN_ELFNOTE_FEATURES */
    .asciz "Xen"
6:  .asciz "dom0"
7:  .balign 4
    .long 4, 4, 18               /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start32

    .section .text.boot, "ax"
    .code64
    .global _start
_start:
    cld
    /* %rsi = 0: Linux executed the image (its execve clears every register but %rsp, which
       points at argc; Xen always passes start_info): say so and exit. */
    test %rsi, %rsi
    jz 8f
    mov %rsp, %r12
    mov $mirage_xen_stack_top, %rsp
    mov %rsi, %rdi
    mov %r12, %rsi
    call mirage_xen_pv_start
1:  jmp 1b
8:  mov %rsp, %rdi
    call mirage_xen_linux_exec

    .code32
    .global _start32
_start32:
    cld
    /* PML4[0] -> PDPT, PDPT[j] -> PD j (j < 4), the 2048 PD entries i -> i * 2 MiB
       (present, writable, large): the first 4 GiB, identity-mapped. */
    mov $mirage_xen_pml4, %eax
    mov $mirage_xen_pdpt, %ecx
    or $3, %ecx
    mov %ecx, (%eax)
    mov $mirage_xen_pdpt, %eax
    mov $mirage_xen_pd, %ecx
    or $3, %ecx
    xor %edx, %edx
5:  mov %ecx, (%eax, %edx, 8)
    add $4096, %ecx
    inc %edx
    cmp $4, %edx
    jne 5b
    mov $mirage_xen_pd, %eax
    xor %ecx, %ecx
2:  mov %ecx, %edx
    shl $21, %edx
    or $0x83, %edx
    mov %edx, (%eax, %ecx, 8)
    mov %ecx, %edx
    shr $11, %edx
    mov %edx, 4(%eax, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b
    mov $mirage_xen_pml4, %eax
    mov %eax, %cr3
    /* CR4: PAE | OSFXSR | OSXMMEXCPT. */
    mov %cr4, %eax
    or $0x620, %eax
    mov %eax, %cr4
    /* EFER.LME. */
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    /* CR0: PG | WP | NE | MP, not EM. */
    mov %cr0, %eax
    and $0xfffffffb, %eax
    or $0x80010022, %eax
    mov %eax, %cr0
    lgdt mirage_xen_gdt_ptr
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $mirage_xen_stack_top, %rsp
    fninit
    mov %ebx, %edi
    call mirage_xen_pvh_start
4:  cli
    hlt
    jmp 4b

    .section .rodata
    .balign 8
mirage_xen_gdt:
    .quad 0
    .quad 0x00af9a000000ffff     /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff     /* 0x10: data */
mirage_xen_gdt_end:
mirage_xen_gdt_ptr:
    .word mirage_xen_gdt_end - mirage_xen_gdt - 1
    .long mirage_xen_gdt

    .section .bss.page, "aw", @nobits
    .balign 4096
    .global mirage_xen_hypercall_page
mirage_xen_hypercall_page:
    .skip 4096
    .global mirage_xen_shared_info_page
mirage_xen_shared_info_page:
    .skip 4096
    .global mirage_xen_console_page
mirage_xen_console_page:
    .skip 4096
    .global mirage_xen_scratch_page
mirage_xen_scratch_page:
    .skip 4096
    .global mirage_xen_grant_frames
mirage_xen_grant_frames:
    .skip {grant_frames} * 4096
mirage_xen_pml4:
    .skip 4096
mirage_xen_pdpt:
    .skip 4096
mirage_xen_pd:
    .skip 4 * 4096
    /* The stack, above a guard page that boot code unmaps (PV) or leaves out of the page
       tables (PVH): an overflow faults there instead of running over the pages below. */
    .global mirage_xen_stack_guard
mirage_xen_stack_guard:
    .skip 4096
    .skip {stack}
mirage_xen_stack_top:
    "#,
    stack = const STACK_SIZE,
    grant_frames = const crate::sys::grant::FRAMES,
    options(att_syntax)
);
