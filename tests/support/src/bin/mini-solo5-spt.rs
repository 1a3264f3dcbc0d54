//! `mini-solo5-spt`: the tests' minimal spt loader ([`mirage_test_support::solo5::spt`]) as a
//! command with `solo5-spt`'s command line, so that a test can give it to `mirage-nix run -t
//! spt` in `SOLO5_SPT` where the real tender is not installed. For tests only: it checks the
//! boot path, it is not a tender.
//!
//! ```text
//! mini-solo5-spt [--mem=MIB] [--block:NAME=FILE] [--net:NAME=IFACE|@FD] [--] IMAGE [ARGS...]
//! ```
//!
//! As the loader: at most one block and one network device; ARGS are joined with spaces into
//! the image's command line, as the tender joins them.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut block = None;
    let mut net = None;
    let mut mem = None;
    while let Some(a) = args.peek().cloned() {
        if a == "--" {
            args.next();
            break;
        }
        let Some(option) = a.strip_prefix("--") else {
            break;
        };
        args.next();
        if let Some(mib) = option.strip_prefix("mem=") {
            mem = Some(mib.to_string());
        } else if let Some(spec) = option.strip_prefix("block:") {
            if block.replace(spec.to_string()).is_some() {
                return usage("the loader attaches one block device");
            }
        } else if let Some(spec) = option.strip_prefix("net:") {
            if net.replace(spec.to_string()).is_some() {
                return usage("the loader attaches one network device");
            }
        } else {
            return usage(&format!("unknown option --{option}"));
        }
    }
    let Some(image) = args.next() else {
        return usage("no image");
    };
    let cmdline: Vec<String> = args.collect();
    std::env::set_var("MINI_SPT_IMAGE", &image);
    std::env::set_var("MINI_SPT_CMDLINE", cmdline.join(" "));
    if let Some(b) = block {
        std::env::set_var("MINI_SPT_BLOCK", b);
    }
    if let Some(n) = net {
        std::env::set_var("MINI_SPT_NET", n.replace("=@", "="));
    }
    if let Some(m) = mem {
        std::env::set_var("MINI_SOLO5_MEM", m);
    }
    mirage_test_support::solo5::spt::enter_from_env()
}

fn usage(why: &str) -> ExitCode {
    eprintln!(
        "mini-solo5-spt: {why}\nusage: mini-solo5-spt [--mem=MIB] [--block:NAME=FILE] [--net:NAME=IFACE|@FD] [--] IMAGE [ARGS...]"
    );
    ExitCode::from(64)
}
