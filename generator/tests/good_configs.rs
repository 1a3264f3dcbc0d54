//! Configurations that must be accepted, and what their plans must hold: Functoria's custom
//! devices and keys declared by a unikernel, and the published plan schema.

use std::path::Path;

use mirage_nix::config::CrateSource;
use mirage_nix::Unikernel;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/configs")
        .join(name)
}

#[test]
fn a_unikernel_declares_its_own_devices_and_keys() {
    let uk = Unikernel::load(&fixture("custom")).unwrap_or_else(|r| panic!("{r}"));
    let plain = uk.plan(&uk.context("unix", []).unwrap()).unwrap();
    let greeter = plain
        .crates
        .iter()
        .find(|c| c.name == "greeter")
        .expect("the custom crate is a dependency");
    assert_eq!(greeter.source, CrateSource::Local("greeter".into()));
    let node = plain
        .nodes
        .iter()
        .find(|n| n.constructor == "plain_greeter")
        .expect("the default case");
    // The console is shared with the log reporter: cloned for it, moved into its last user.
    assert_eq!(
        node.connect,
        "greeter::Plain::new(default_console_0, args.string(\"greeting\"), default_random_3)"
    );
    assert!(node.deps == ["default_random_3"], "{:?}", node.deps);
    let logs = plain
        .nodes
        .iter()
        .find(|n| n.constructor == "logs")
        .unwrap();
    assert!(
        logs.connect.contains("default_console_0.clone()"),
        "{}",
        logs.connect
    );
    assert!(
        plain
            .main
            .call
            .starts_with("greeting::start(plain_greeter_4, default_time_"),
        "{}",
        plain.main.call
    );
    assert!(
        plain
            .main
            .call
            .ends_with("args.int(\"rounds\"), keys::LOUD)"),
        "{}",
        plain.main.call
    );
    assert!(
        plain.main.deps.iter().any(|d| d.starts_with("mclock_")),
        "main's dep is started: {:?}",
        plain.main.deps
    );

    let loud = uk
        .plan(&uk.context("unix", [("loud", "true")]).unwrap())
        .unwrap();
    let node = loud
        .nodes
        .iter()
        .find(|n| n.constructor == "loud_greeter")
        .expect("the loud case");
    assert!(node.fallible && node.connect.ends_with(".await"));
    assert_eq!(node.via, ["pick_greeter: loud=true"]);
    let err = uk
        .plan(&uk.context("hvt", [("loud", "true")]).unwrap())
        .unwrap_err();
    assert_eq!(err.codes(), ["unavailable"]);
    assert_eq!(err.diagnostics[0].help.as_deref(), Some("use --loud=false"));
}

#[test]
fn the_published_schema_is_current() {
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json"),
    )
    .unwrap();
    assert!(
        committed == mirage_nix::plan::schema(),
        "generator/schema/plan.schema.json is stale: run `mirage-nix schema > generator/schema/plan.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in [
        "version", "name", "target", "image", "keys", "nodes", "main", "crates",
    ] {
        assert!(required.contains(&field), "the schema requires {field}");
    }
}
