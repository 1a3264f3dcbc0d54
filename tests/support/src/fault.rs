//! The bare-metal runtimes' fault reports, as the xen and solo5 tests check them: what the
//! crash fixture (`runtime/xen/tests/fixtures/crash`) does with `--fault=...` and how the
//! report of each fault begins.

/// The fixture that panics or faults on demand.
pub const FIXTURE: &str = "runtime/xen/tests/fixtures/crash";

/// Each fault the fixture makes (its `--fault` value) and the start of the report the runtime
/// prints for it.
pub const FAULTS: [(&str, &str); 3] = [
    (
        "stack-overflow",
        "fault: stack overflow: #PF (page fault, vector 14) at address ",
    ),
    (
        "null",
        "fault: #PF (page fault, vector 14) at address 0x0 (read, not mapped), rip ",
    ),
    ("ud2", "fault: #UD (invalid opcode, vector 6), rip "),
];

/// `hex_after(text, prefix)` is the hexadecimal number (`0x` optional) after the first
/// `prefix` in `text`, if there is one.
pub fn hex_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix("0x").unwrap_or(rest);
    let end = rest
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(rest.len());
    u64::from_str_radix(&rest[..end], 16).ok()
}

/// `fault_below_stack(console, address, stack)` checks that `address` (where a stack overflow
/// faulted) lies in the page right below the stack the fixture reported ("overflowing the
/// stack from X", X near the top of a stack of `stack` bytes), and says what is wrong if not.
pub fn fault_below_stack(console: &str, address: u64, stack: u64) -> Result<(), String> {
    let from = hex_after(console, "overflowing the stack from ")
        .ok_or_else(|| format!("the fixture did not say where its stack is:\n{console}"))?;
    let page = address & !0xfff;
    if page < from && from - page <= stack + 4096 && from - page > stack / 2 {
        Ok(())
    } else {
        Err(format!(
            "the fault at {address:#x} is not in the page below a {stack}-byte stack around \
             {from:#x}:\n{console}"
        ))
    }
}
