//! The invariants the fuzzers check, in one place: the cargo-fuzz targets of
//! `generator/fuzz/` (nightly) call these on every input, and `generator/tests/fuzz_corpus.rs`
//! (stable, in `scripts/test`) replays the committed corpus and every crash found through them.
//!
//! For any input: no panic, no hang (every stage is linear), and when configure succeeds, the
//! plan reads back unchanged and is the same on a second run, render succeeds, `Cargo.toml`
//! parses as TOML, and `main.rs` parses as Rust with exactly the items and statements the plan
//! calls for (so no text from the input became code of its own). A plan given as input that
//! render accepts must give the same guarantees.

use std::path::Path;

use crate::plan::Plan;
use crate::render::{self, Roots};
use crate::Unikernel;

/// What an input came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It was refused with a report (rendered without panicking).
    Refused,
    /// It was planned and rendered, and every invariant held.
    Rendered,
}

/// The folders the unikernel directory of a fuzzing run holds, for configs to embed.
pub const FOLDERS: &[&str] = &["t", "htdocs", "site/www"];

/// Prepares `dir` as the unikernel directory of fuzzing runs: the [`FOLDERS`], a file in each.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    for f in FOLDERS {
        std::fs::create_dir_all(dir.join(f))?;
        std::fs::write(dir.join(f).join("index.html"), "hello\n")?;
    }
    Ok(())
}

/// A unikernel directory for this process's fuzzing runs, in the temporary folder, made by
/// [`prepare`] on first use.
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mirage-nix-fuzz-{}", std::process::id()));
        prepare(&dir).expect("the temporary folder is writable");
        dir
    })
}

/// The target and keys a config input asks for: its first line, if it is
/// `#! TARGET --KEY=VALUE ...` (a TOML comment, so the text stays a config); else unix.
fn preamble(text: &str) -> (String, Vec<(String, String)>) {
    let first = text.lines().next().unwrap_or_default();
    let Some(args) = first.strip_prefix("#!") else {
        return ("unix".to_string(), Vec::new());
    };
    let mut words = args.split_whitespace();
    let target = words.next().unwrap_or("unix").to_string();
    let keys = words
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.to_string(), "true".to_string()),
        })
        .collect();
    (target, keys)
}

/// Checks a config input (a first line `#! TARGET --KEY=VALUE ...` chooses the target and
/// keys) in the unikernel directory `dir` (made by
/// [`prepare`]). Panics when an invariant does not hold.
pub fn check_config(dir: &Path, input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let (target, keys) = preamble(&text);
    let uk = match Unikernel::from_str(dir, "unikernel.toml", &text) {
        Ok(uk) => uk,
        Err(report) => return refused(&report),
    };
    let ctx = match uk.context(&target, keys.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(ctx) => ctx,
        Err(report) => return refused(&report),
    };
    let _ = uk.reachable_keys(&ctx);
    let partial = crate::eval::evaluate(&uk.config, &uk.graph, &ctx, crate::eval::Mode::Partial);
    let _ = render::dot::draw(&uk.config, &uk.graph, &partial, false, None);
    let plan = match uk.plan(&ctx) {
        Ok(plan) => plan,
        Err(report) => return refused(&report),
    };
    let _ = render::dot::draw(&uk.config, &uk.graph, &uk.evaluate(&ctx), true, None);
    let json = plan.to_json();
    assert_eq!(
        Plan::from_json(&json).as_ref(),
        Ok(&plan),
        "the plan reads back unchanged"
    );
    let again = uk.plan(&ctx).expect("a second plan of the same context");
    assert_eq!(again.to_json(), json, "plans are deterministic");
    let outcome = check_rendered(&plan, dir);
    assert_eq!(outcome, Outcome::Rendered, "a configured plan renders");
    outcome
}

/// Checks a plan input (JSON), rendered against the unikernel directory `dir`. Panics when an
/// invariant does not hold.
pub fn check_plan(dir: &Path, input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match Plan::from_json(&text) {
        Ok(plan) => check_rendered(&plan, dir),
        Err(_) => Outcome::Refused,
    }
}

fn refused(report: &crate::diag::Report) -> Outcome {
    assert!(!report.diagnostics.is_empty(), "a refusal says why");
    let _ = report.render();
    Outcome::Refused
}

/// Renders a plan and, if render accepts it, checks the files it gives.
fn check_rendered(plan: &Plan, dir: &Path) -> Outcome {
    let roots = Roots {
        mirage: dir.to_path_buf(),
        unikernel: dir.to_path_buf(),
    };
    let Ok(files) = render::crate_files(plan, &roots, &dir.join("out")) else {
        return Outcome::Refused;
    };
    let file = |name: &str| {
        files
            .iter()
            .find(|f| f.path == Path::new(name))
            .map(|f| String::from_utf8(f.contents.clone()).expect("generated text is UTF-8"))
    };
    let cargo = file("Cargo.toml").expect("a rendered crate has a Cargo.toml");
    let manifest: toml::Table = toml::from_str(&cargo)
        .unwrap_or_else(|e| panic!("Cargo.toml does not parse: {e}\n{cargo}"));
    let deps = manifest["dependencies"].as_table().expect("[dependencies]");
    assert_eq!(
        deps.len(),
        plan.crates.len(),
        "one dependency per crate\n{cargo}"
    );
    assert_eq!(
        manifest["bin"][0]["name"].as_str(),
        Some(plan.name.as_str()),
        "{cargo}"
    );
    if let Some(config) = file(".cargo/config.toml") {
        let parsed: toml::Table = toml::from_str(&config)
            .unwrap_or_else(|e| panic!(".cargo/config.toml does not parse: {e}\n{config}"));
        let flags = parsed["build"]["rustflags"].as_array().expect("rustflags");
        assert_eq!(flags.len(), plan.image.rustflags.len(), "{config}");
    }
    let main = file("src/main.rs").expect("a rendered crate has a main.rs");
    let embeds = plan.nodes.iter().filter(|n| n.embed.is_some()).count();
    let configure_keys = plan
        .keys
        .iter()
        .filter(|k| k.stage == crate::key::Stage::Configure)
        .count();
    let shape = crate::rust::with_big_stack(move || main_shape(&main));
    let shape = shape.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shape,
        MainShape {
            consts: configure_keys,
            modules: 1 + embeds,
            lets: plan.nodes.len(),
        },
        "main.rs has the items and statements the plan calls for"
    );
    Outcome::Rendered
}

/// What `main.rs` holds: constants of `mod keys`, modules, and `let`s of `fn unikernel`.
#[derive(Debug, PartialEq, Eq)]
struct MainShape {
    consts: usize,
    modules: usize,
    lets: usize,
}

fn main_shape(main: &str) -> Result<MainShape, String> {
    let file = syn::parse_file(main).map_err(|e| format!("main.rs does not parse: {e}\n{main}"))?;
    let mut shape = MainShape {
        consts: 0,
        modules: 0,
        lets: 0,
    };
    let mut functions = 0;
    for item in &file.items {
        match item {
            syn::Item::Mod(m) => {
                shape.modules += 1;
                if m.ident == "keys" {
                    let items = m.content.as_ref().map_or(&[][..], |(_, items)| items);
                    shape.consts = items
                        .iter()
                        .filter(|i| matches!(i, syn::Item::Const(_)))
                        .count();
                    if shape.consts != items.len() {
                        return Err(format!("mod keys holds more than constants\n{main}"));
                    }
                }
            }
            syn::Item::Fn(f) => {
                functions += 1;
                if f.sig.ident != "unikernel" {
                    return Err(format!("a function other than unikernel\n{main}"));
                }
                let stmts = &f.block.stmts;
                shape.lets = stmts
                    .iter()
                    .filter(|s| matches!(s, syn::Stmt::Local(_)))
                    .count();
                if shape.lets + 1 != stmts.len() {
                    return Err(format!(
                        "unikernel holds more than its lets and call\n{main}"
                    ));
                }
            }
            syn::Item::Static(_) | syn::Item::Macro(_) | syn::Item::ExternCrate(_) => {}
            syn::Item::Use(_) => {}
            other => {
                return Err(format!(
                    "an unexpected item in main.rs: {}\n{main}",
                    item_kind(other)
                ))
            }
        }
    }
    if functions != 1 {
        return Err(format!("main.rs has {functions} functions\n{main}"));
    }
    Ok(shape)
}

fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Impl(_) => "an impl",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Const(_) => "a const",
        _ => "another item",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_hold_every_invariant() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for (example, preamble) in [
            ("hello", ""),
            ("kv_ro", "#! xen\n"),
            ("conduit_server", "#! unix --net=direct --port=443\n"),
            ("static_website", "#! spt\n"),
        ] {
            let dir = root.join(example);
            let text = std::fs::read_to_string(dir.join("unikernel.toml")).unwrap();
            let input = format!("{preamble}{text}");
            assert_eq!(
                check_config(&dir, input.as_bytes()),
                Outcome::Rendered,
                "{example}"
            );
            for plan in std::fs::read_dir(dir.join("plans")).unwrap() {
                let bytes = std::fs::read(plan.unwrap().path()).unwrap();
                assert_eq!(check_plan(&dir, &bytes), Outcome::Rendered);
            }
        }
        assert_eq!(
            check_config(Path::new("."), b"[unikernel]\nname = 1"),
            Outcome::Refused
        );
    }
}
