//! Property tests: random configurations and key values never make the generator panic or
//! hang, and whatever it accepts gives a deterministic plan that reads back unchanged.
//!
//! Configurations are drawn from a grammar that mixes the catalogue's real constructors,
//! signatures and keys with misspellings, wrong arities and garbage, so that both the
//! accepting and the rejecting paths are exercised.

use std::path::Path;

use mirage_nix::key::KeyType;
use mirage_nix::plan::Plan;
use mirage_nix::Unikernel;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "default_console",
    "default_time",
    "mclock",
    "pclock",
    "default_random",
    "generic_kv_ro",
    "crunch",
    "passthrough",
    "tar_kv_ro",
    "fat_ro",
    "tar_archive",
    "block_of_file",
    "ramdisk",
    "generic_block",
    "default_network",
    "netif",
    "ethernet",
    "arp",
    "static_ipv4",
    "dhcp_ipv4",
    "udp",
    "tcp",
    "generic_stackv4",
    "socket_stackv4",
    "direct_stackv4",
    "conduit_direct",
    "http_server",
    "logs",
    "solo5_network",
    "dev",
    "nope",
    "defualt_console",
    "",
];
const SIGNATURES: &[&str] = &[
    "console", "time", "kv_ro", "block", "network", "ethernet", "arp", "ipv4", "udp", "tcp",
    "stack", "conduit", "http", "reporter", "job", "nope",
];
const KEYS: &[&str] = &[
    "kv_ro",
    "net",
    "dhcp",
    "ipv4",
    "ipv4-gateway",
    "interface",
    "logs",
    "block",
    "port",
    "nope",
];
const VALUES: &[&str] = &[
    "crunch",
    "passthrough",
    "tar",
    "fat",
    "socket",
    "direct",
    "true",
    "false",
    "10.0.0.2/24",
    "10.0.0.1",
    "1.2.3.4/40",
    "tap0",
    "debug",
    "ramdisk",
    "file",
    "8080",
    "-1",
    "",
    "none",
    "x\"y",
];

/// A device expression from the grammar, `depth` levels deep at most.
fn expression(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        prop::sample::select(NAMES).prop_map(str::to_string),
        "\"[a-z./]{0,6}\"".prop_map(|s| s),
        (-3i64..3).prop_map(|i| i.to_string()),
        "[ -~]{0,8}",
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        2 => leaf,
        3 => (prop::sample::select(NAMES), prop::collection::vec(expression(depth - 1), 0..4))
            .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
    ]
    .boxed()
}

/// A well-typed expression of a signature, built from the catalogue.
fn typed(sig: &'static str, depth: u32) -> BoxedStrategy<String> {
    let d = depth.saturating_sub(1);
    let sub = move |s: &'static str| {
        if depth == 0 {
            Just(leaf_of(s).to_string()).boxed()
        } else {
            typed(s, d)
        }
    };
    match sig {
        "kv_ro" => prop_oneof![
            Just("generic_kv_ro(\"t\")".to_string()),
            Just("crunch(\"t\")".to_string()),
            Just("passthrough(\"t\")".to_string()),
            sub("block").prop_map(|b| format!("tar_kv_ro({b})")),
        ]
        .boxed(),
        "block" => prop::sample::select(
            &[
                "block_of_file(\"d\")",
                "ramdisk(\"r\")",
                "generic_block(\"g\")",
                "tar_archive(\"t\")",
            ][..],
        )
        .prop_map(str::to_string)
        .boxed(),
        "network" => prop::sample::select(&["default_network", "netif"][..])
            .prop_map(str::to_string)
            .boxed(),
        "ethernet" => sub("network")
            .prop_map(|n| format!("ethernet({n})"))
            .boxed(),
        "arp" => sub("ethernet").prop_map(|e| format!("arp({e})")).boxed(),
        "ipv4" => (
            prop::sample::select(&["static_ipv4", "dhcp_ipv4"][..]),
            sub("ethernet"),
            sub("arp"),
        )
            .prop_map(|(f, e, a)| format!("{f}({e}, {a})"))
            .boxed(),
        "udp" | "tcp" => sub("ipv4").prop_map(move |i| format!("{sig}({i})")).boxed(),
        "stack" => prop_oneof![
            sub("network").prop_map(|n| format!("generic_stackv4({n})")),
            Just("socket_stackv4".to_string()),
        ]
        .boxed(),
        "conduit" => sub("stack")
            .prop_map(|s| format!("conduit_direct({s})"))
            .boxed(),
        "http" => sub("conduit")
            .prop_map(|c| format!("http_server({c})"))
            .boxed(),
        "reporter" => Just("logs(default_console)".to_string()).boxed(),
        other => Just(leaf_of(other).to_string()).boxed(),
    }
}

fn leaf_of(sig: &str) -> &'static str {
    match sig {
        "console" => "default_console",
        "time" => "default_time",
        "kv_ro" => "crunch(\"t\")",
        "block" => "ramdisk(\"r\")",
        "network" | "ethernet" | "arp" | "ipv4" | "udp" | "tcp" => "default_network",
        "stack" => "socket_stackv4",
        "conduit" => "conduit_direct(socket_stackv4)",
        "http" => "http_server(conduit_direct(socket_stackv4))",
        _ => "default_console",
    }
}

prop_compose! {
    /// A configuration that type-checks: random signatures and a fitting argument for each.
    fn valid_config()(sigs in prop::collection::vec(prop::sample::select(&SIGNATURES[..14]), 0..4))(
        args in sigs.iter().map(|s| typed(s, 3)).collect::<Vec<_>>(),
        sigs in Just(sigs),
    ) -> String {
        let sigs: Vec<&str> = sigs.into_iter().filter(|s| *s != "job").collect();
        let args = &args[..sigs.len()];
        let mut signature = sigs.clone();
        signature.push("job");
        format!(
            "[unikernel]\nname = \"fuzz\"\nsignature = {}\nargs = [{}]\n",
            toml_string(&signature.join(" -> ")),
            args.iter().map(|a| toml_string(a)).collect::<Vec<_>>().join(", ")
        )
    }
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

prop_compose! {
    fn config()(
        sig in prop::collection::vec(prop::sample::select(SIGNATURES), 0..4),
        args in prop::collection::vec(expression(3), 0..4),
        devices in prop::collection::vec(("[a-z]{1,4}", expression(2)), 0..3),
        keys in prop::collection::vec(prop::sample::select(KEYS), 0..2),
        port_type in prop::sample::select(&["int", "string", "bool", "ipv4-prefix", "enum", "nope"][..]),
        port_default in prop::sample::select(VALUES),
        reporter in prop::option::of(expression(1)),
    ) -> String {
        let mut text = String::from("[unikernel]\nname = \"fuzz\"\n");
        let mut signature: Vec<&str> = sig;
        signature.push("job");
        text += &format!("signature = {}\n", toml_string(&signature.join(" -> ")));
        text += &format!("args = [{}]\n", args.iter().map(|a| toml_string(a)).collect::<Vec<_>>().join(", "));
        text += &format!("keys = [{}]\n", keys.iter().map(|k| toml_string(k)).collect::<Vec<_>>().join(", "));
        if let Some(r) = reporter {
            text += &format!("reporter = {}\n", toml_string(&r));
        }
        text += "\n[devices]\n";
        for (name, e) in devices {
            text += &format!("{name} = {}\n", toml_string(&e));
        }
        text += &format!("\n[keys.port]\ntype = {}\ndefault = {}\nstage = \"runtime\"\ndoc = \"A port.\"\n", toml_string(port_type), toml_string(port_default));
        text
    }
}

fn check(text: &str, target: &str, keys: &[(&str, &str)]) {
    let Ok(uk) = Unikernel::from_str(Path::new("."), "fuzz.toml", text) else {
        return;
    };
    let Ok(ctx) = uk.context(target, keys.iter().copied()) else {
        return;
    };
    uk.reachable_keys(&ctx);
    match uk.plan(&ctx) {
        Ok(plan) => {
            let json = plan.to_json();
            assert_eq!(
                json,
                uk.plan(&ctx).unwrap().to_json(),
                "plans are deterministic"
            );
            assert_eq!(
                Plan::from_json(&json).unwrap(),
                plan,
                "plans read back unchanged"
            );
        }
        Err(report) => {
            assert!(!report.diagnostics.is_empty());
            report.render();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn valid_configs_plan_or_explain(
        text in valid_config(),
        target in prop::sample::select(&["unix", "xen", "hvt", "spt"][..]),
        keys in prop::collection::vec((prop::sample::select(KEYS), prop::sample::select(VALUES)), 0..3),
    ) {
        prop_assert!(Unikernel::from_str(Path::new("."), "fuzz.toml", &text).is_ok(), "{}", text);
        check(&text, target, &keys);
    }

    #[test]
    fn random_configs_never_panic(
        text in config(),
        target in prop::sample::select(&["unix", "xen", "hvt", "spt", "vax"][..]),
        keys in prop::collection::vec((prop::sample::select(KEYS), prop::sample::select(VALUES)), 0..3),
    ) {
        check(&text, target, &keys);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n]{0,200}") {
        check(&text, "unix", &[]);
    }

    #[test]
    fn key_values_never_panic(value in "[ -~]{0,24}") {
        for ty in [KeyType::Bool, KeyType::INT, KeyType::Port, KeyType::String, KeyType::Ipv4Address, KeyType::Ipv4Prefix, KeyType::Enum(vec!["a".into(), "b".into()])] {
            if let Ok(v) = ty.parse(&value) {
                prop_assert_eq!(ty.parse(&v.to_string()), Ok(v), "values print back to themselves");
            }
        }
    }
}
