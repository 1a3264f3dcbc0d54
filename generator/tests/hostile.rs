//! Hostile and huge configurations: any depth of nesting or chaining elaborates without a stack
//! overflow, shared structure is elaborated once, and time stays linear in the config's size.

use std::path::Path;
use std::time::{Duration, Instant};

use mirage_nix::synth;
use mirage_nix::Unikernel;

/// Configures `text` for unix, returning the plan's node count and how long it took.
fn configure(text: &str) -> (usize, Duration) {
    let start = Instant::now();
    let uk = Unikernel::from_str(Path::new("."), "unikernel.toml", text)
        .unwrap_or_else(|r| panic!("{}", r.render()));
    let plan = uk
        .plan(&uk.context("unix", []).unwrap())
        .unwrap_or_else(|r| panic!("{}", r.render()));
    (plan.nodes.len(), start.elapsed())
}

#[test]
fn nesting_100000_deep_configures() {
    let (nodes, _) = configure(&synth::nesting(100_000));
    assert_eq!(nodes, 100_001);
}

#[test]
fn a_chain_of_100000_named_devices_configures() {
    let (nodes, _) = configure(&synth::chain(100_000));
    assert_eq!(nodes, 100_000);
}

#[test]
fn a_40_level_constructor_diamond_configures_in_under_100_ms() {
    // Warm up allocations and the catalogue's parse, as a command's single run would not
    // be measured against a cold process either.
    configure(&synth::diamond(2));
    let (nodes, took) = configure(&synth::diamond(40));
    assert_eq!(nodes, 42);
    assert!(took < Duration::from_millis(100), "took {took:?}");
}

#[test]
fn a_chain_of_100000_local_devices_configures() {
    let n = 100_000;
    let mut text =
        synth::nesting(0).replace("args = ['leaf(\"end\")']", "args = ['deep(leaf(\"end\"))']");
    text.push_str("\n[constructors.deep]\nparams = [\"n: network\"]\nsignature = \"network\"\nchoose = [{ use = \"l0\" }]\n\n[constructors.deep.let]\n");
    for i in 0..n {
        text.push_str(&format!("l{i} = \"wrap(l{})\"\n", i + 1));
    }
    text.push_str(&format!("l{n} = \"wrap(n)\"\n"));
    let (nodes, _) = configure(&text);
    assert_eq!(nodes, n + 2);
}

#[test]
fn toml_nested_100000_deep_is_a_located_error() {
    let text = format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let start = Instant::now();
    let report = Unikernel::from_str(Path::new("."), "unikernel.toml", &text).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    let d = &report.diagnostics[0];
    assert_eq!(d.code, "toml");
    assert!(
        d.primary.is_some() && d.message.contains("recursion"),
        "{d:?}"
    );
    assert!(d
        .help
        .as_deref()
        .unwrap()
        .contains("nest at most about 100 deep"));
}
