//! Synthetic configurations of a chosen shape and size, for the tests that show the generator
//! stays linear and never overflows its stack, and for the benchmarks that measure it.
//!
//! Each shape is a complete `unikernel.toml` whose unikernel takes one `network`: its devices
//! are built by two constructors of its own, `leaf(name)` (a device of its own, one per name)
//! and `pair(a, b)` (a device over two others), plus `wrap(n)`, a device over one other.

use std::fmt::Write;

/// The constructors every shape uses.
const CONSTRUCTORS: &str = r#"
[crates.synth_devices]
path = "devices"

[constructors.leaf]
params = ["name: string"]
signature = "network"
crate = "synth_devices"
connect = "synth_devices::Leaf::new({{ name }})"

[constructors.pair]
params = ["a: network", "b: network"]
signature = "network"
crate = "synth_devices"
connect = "synth_devices::Pair::new({{ a }}, {{ b }})"

[constructors.wrap]
params = ["n: network"]
signature = "network"
crate = "synth_devices"
connect = "synth_devices::Wrap::new({{ n }})"
"#;

fn unikernel(arg: &str) -> String {
    format!(
        "[unikernel]\nname = \"synth\"\nsignature = \"network -> job\"\nargs = [{}]\nreporter = false\n{CONSTRUCTORS}",
        toml_string(arg)
    )
}

/// `text` as a TOML literal string when it can be one, else a basic string.
fn toml_string(text: &str) -> String {
    if text.contains('\'') || text.contains('\n') {
        format!("{text:?}")
    } else {
        format!("'{text}'")
    }
}

/// `devices(n)`: `n` named devices (`n` >= 1) in a balanced binary tree: `d0` is used by
/// `main`, `d{i}` pairs `d{2i+1}` and `d{2i+2}` when both exist, and the others are leaves.
pub fn devices(n: usize) -> String {
    let mut text = unikernel("d0");
    text.push_str("\n[devices]\n");
    for i in 0..n.max(1) {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let _ = if r < n {
            writeln!(text, "d{i} = 'pair(d{l}, d{r})'")
        } else if l < n {
            writeln!(text, "d{i} = 'wrap(d{l})'")
        } else {
            writeln!(text, "d{i} = 'leaf(\"{i}\")'")
        };
    }
    text
}

/// `chain(n)`: `n` named devices (`n` >= 1), each built from the next: `d0 = wrap(d1)`, ...,
/// the last a leaf. Elaborating `d0` goes `n` names deep.
pub fn chain(n: usize) -> String {
    let n = n.max(1);
    let mut text = unikernel("d0");
    text.push_str("\n[devices]\n");
    for i in 0..n - 1 {
        let _ = writeln!(text, "d{i} = 'wrap(d{})'", i + 1);
    }
    let _ = writeln!(text, "d{} = 'leaf(\"end\")'", n - 1);
    text
}

/// `nesting(depth)`: one expression `wrap(wrap(...leaf("end")...))`, `depth` calls deep.
pub fn nesting(depth: usize) -> String {
    let expr = format!(
        "{}leaf(\"end\"){}",
        "wrap(".repeat(depth),
        ")".repeat(depth)
    );
    unikernel(&expr)
}

/// `diamond(levels)`: constructors `level0` to `level{levels}`, each level's body using the
/// previous level twice (`pair(levelK-1(n), levelK-1(n))`). Without sharing, elaborating the
/// top level takes `2^levels` steps; the graph has one node per level.
pub fn diamond(levels: usize) -> String {
    let mut text = unikernel(&format!("level{levels}(leaf(\"base\"))"));
    text.push_str(
        "\n[constructors.level0]\nparams = [\"n: network\"]\nsignature = \"network\"\nchoose = [{ use = \"wrap(n)\" }]\n",
    );
    for k in 1..=levels {
        let _ = write!(
            text,
            "\n[constructors.level{k}]\nparams = [\"n: network\"]\nsignature = \"network\"\nchoose = [{{ use = \"pair(level{p}(n), level{p}(n))\" }}]\n",
            p = k - 1
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unikernel;
    use std::path::Path;

    fn plan(text: &str) -> crate::plan::Plan {
        let uk = Unikernel::from_str(Path::new("."), "synth.toml", text)
            .unwrap_or_else(|r| panic!("{r}\n{text}"));
        uk.plan(&uk.context("unix", []).unwrap())
            .unwrap_or_else(|r| panic!("{r}"))
    }

    #[test]
    fn shapes_plan_with_the_devices_they_promise() {
        let devices = |p: &crate::plan::Plan| {
            p.nodes
                .iter()
                .filter(|n| ["leaf", "pair", "wrap"].contains(&n.constructor.as_str()))
                .count()
        };
        assert_eq!(devices(&plan(&devices_text(10))), 10);
        assert_eq!(devices(&plan(&chain(10))), 10);
        assert_eq!(devices(&plan(&nesting(10))), 11);
        // One leaf, one wrap and one pair per level above the first.
        assert_eq!(devices(&plan(&diamond(5))), 7);
    }

    fn devices_text(n: usize) -> String {
        devices(n)
    }
}
