//! `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp` (and `_Unwind_Resume`), which the prebuilt `compiler_builtins`
//! of `x86_64-unknown-linux-gnu` leaves to libc. They are written in assembly with the string
//! instructions, so that the compiler cannot turn their loops back into calls to themselves.
//! The direction flag is clear on entry and exit, as the System V ABI requires.

use core::arch::global_asm;

// SAFETY: each function follows the System V calling convention and the C semantics of its
// name: it reads and writes exactly the `n` bytes its arguments describe, clobbers only
// caller-saved registers and leaves the direction flag clear.
global_asm!(
    r#"
    .section .text.mirage_mem, "ax"
    .global memcpy
    .type memcpy, @function
memcpy:
    mov %rdi, %rax
    mov %rdx, %rcx
    rep movsb
    ret

    .global memmove
    .type memmove, @function
memmove:
    mov %rdi, %rax
    mov %rdx, %rcx
    cmp %rsi, %rdi
    jbe 1f
    lea (%rsi, %rdx), %r8
    cmp %r8, %rdi
    jae 1f
    lea -1(%rdi, %rdx), %rdi
    lea -1(%rsi, %rdx), %rsi
    std
    rep movsb
    cld
    ret
1:  rep movsb
    ret

    .global memset
    .type memset, @function
memset:
    mov %rdi, %r8
    mov %esi, %eax
    mov %rdx, %rcx
    rep stosb
    mov %r8, %rax
    ret

    .global memcmp
    .type memcmp, @function
    .global bcmp
    .type bcmp, @function
memcmp:
bcmp:
    xor %eax, %eax
    mov %rdx, %rcx
    test %rcx, %rcx
    jz 2f
    repe cmpsb
    je 2f
    movzbl -1(%rdi), %eax
    movzbl -1(%rsi), %ecx
    sub %ecx, %eax
2:  ret

    /* The prebuilt core and alloc are compiled for unwinding and name _Unwind_Resume in their
       landing pads; images abort on panic, so no landing pad ever runs: trap if one does. */
    .global _Unwind_Resume
    .type _Unwind_Resume, @function
_Unwind_Resume:
    ud2
    "#,
    options(att_syntax)
);
