//! The `mirage-nix` command line, run as a user would: graphs, plans, freshness checks, key
//! flags and their errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("unikernel.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mirage_nix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args(args)
        .output()
        .expect("mirage-nix runs")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = mirage_nix(args);
    assert!(
        o.status.success(),
        "mirage-nix {args:?} failed:\n{}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Copies the folder `from` (plain files and folders) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of an example's config, committed plans and the folders it embeds (every folder
/// but its crate's) in a fresh folder.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(example(name)).unwrap() {
        let e = e.unwrap();
        let skip = ["src", "plans", "target", "dist", ".mirage-nix"];
        let file_name = e.file_name();
        if e.file_type().unwrap().is_dir() && !skip.contains(&file_name.to_str().unwrap()) {
            copy_tree(&e.path(), &dir.path().join(&file_name));
        }
    }
    std::fs::copy(
        example(name).join("unikernel.toml"),
        dir.path().join("unikernel.toml"),
    )
    .unwrap();
    let plans = example(name).join("plans");
    if plans.is_dir() {
        std::fs::create_dir(dir.path().join("plans")).unwrap();
        for e in std::fs::read_dir(plans).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join("plans").join(e.file_name())).unwrap();
        }
    }
    dir
}

fn render_svg(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` is installed (scripts/test installs the graphviz package)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot rejected the graph:\n{}\n{dot}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn the_talks_conduit_server_graphs() {
    let dir = example("conduit_server");
    let dir = dir.to_str().unwrap();
    let unevaluated = ok(&["describe", "-t", "xen", dir, "--dot", "--no-eval"]);
    assert!(
        unevaluated.contains("choose generic_stackv4"),
        "{unevaluated}"
    );
    assert!(
        unevaluated.contains("style=bold"),
        "the default branch is marked:\n{unevaluated}"
    );
    assert!(render_svg(&unevaluated).contains("<svg"));

    let xen = ok(&["describe", "-t", "xen", dir, "--dot", "--eval"]);
    assert!(!xen.contains("choose"), "choices are resolved:\n{xen}");
    for device in [
        "direct_stackv4",
        "netif",
        "ethernet",
        "arp",
        "static_ipv4",
        "udp",
        "tcp",
    ] {
        assert!(
            xen.contains(&format!("label=\"{device}\\n")),
            "xen graph lacks {device}:\n{xen}"
        );
    }
    let unix = ok(&["describe", "-t", "unix", "--net=socket", dir, "--dot"]);
    assert!(unix.contains("socket_stackv4"), "{unix}");
    for device in ["ethernet", "arp", "ipv4", "direct_stackv4"] {
        assert!(
            !unix.contains(device),
            "the socket graph has no {device}:\n{unix}"
        );
    }
    render_svg(&xen);
    render_svg(&unix);
}

#[test]
fn every_example_and_target_draws_valid_dot() {
    for name in examples() {
        let dir = example(&name);
        for target in ["unix", "xen", "hvt", "spt"] {
            for mode in ["--eval", "--no-eval"] {
                render_svg(&ok(&[
                    "describe",
                    "-t",
                    target,
                    dir.to_str().unwrap(),
                    "--dot",
                    mode,
                ]));
            }
        }
    }
}

#[test]
fn describe_shows_keys_defaults_and_output() {
    let out = ok(&[
        "describe",
        "-t",
        "xen",
        "--net=direct",
        "--dhcp=false",
        example("conduit_server").to_str().unwrap(),
    ]);
    assert!(out.contains("Name    conduit_server"), "{out}");
    assert!(
        out.contains("dhcp=false\n"),
        "an explicit key has no (default):\n{out}"
    );
    assert!(out.contains("ipv4=10.0.0.2/24 (default, runtime)"), "{out}");
    assert!(out.contains("net=direct\n"), "{out}");
    assert!(out.contains("target=xen"), "{out}");
    assert!(out.contains("Output  conduit_server.xen (xen-pv)"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "describe",
        "--json",
        "-t",
        "unix",
        example("hello").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(json["output"], "hello (elf-unix)");
    assert_eq!(json["keys"][0]["name"], "hello");
}

#[test]
fn configure_all_targets_is_deterministic_and_matches_the_committed_plans() {
    for name in examples() {
        let dir = copy_of(&name);
        std::fs::remove_dir_all(dir.path().join("plans")).ok();
        let d = dir.path().to_str().unwrap();
        ok(&["configure", "--all-targets", d]);
        let first = read_plans(dir.path());
        assert!(!first.is_empty(), "{name}: no plan written");
        ok(&["configure", "--all-targets", d]);
        assert!(
            first == read_plans(dir.path()),
            "{name}: plans changed on a second run"
        );
        let committed = read_plans(&example(&name));
        for ((file, fresh), (_, old)) in first.iter().zip(&committed) {
            assert!(fresh == old, "{name}/plans/{file} is stale: run `mirage-nix configure --all-targets examples/{name}`");
        }
        assert_eq!(
            first.len(),
            committed.len(),
            "{name}: a different set of plans is committed"
        );
        for (file, plan) in &first {
            for leak in [
                root().canonicalize().unwrap().to_str().unwrap(),
                d,
                "/tmp",
                "/home",
                "/root",
            ] {
                assert!(
                    !plan.contains(leak),
                    "{name}/{file} holds the machine path {leak}"
                );
            }
        }
    }
}

fn read_plans(dir: &Path) -> Vec<(String, String)> {
    let mut plans: Vec<(String, String)> = std::fs::read_dir(dir.join("plans"))
        .map(|rd| {
            rd.map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    plans.sort();
    plans
}

#[test]
fn configure_check_passes_fresh_plans_and_fails_stale_ones() {
    for name in examples() {
        ok(&["configure", "--check", example(&name).to_str().unwrap()]);
    }
    let dir = copy_of("kv_ro");
    let d = dir.path().to_str().unwrap();
    ok(&["configure", "--check", d]);
    let plan = dir.path().join("plans/unix.json");
    let edited = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("\"crunch\"", "\"tar\"");
    std::fs::write(&plan, edited).unwrap();
    let o = mirage_nix(&["configure", "--check", d]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("stale plan") && err.contains("unix.json"),
        "{err}"
    );
    assert!(err.contains("fix: mirage-nix configure -t unix"), "{err}");

    std::fs::write(
        dir.path().join("unikernel.toml"),
        std::fs::read_to_string(example("kv_ro").join("unikernel.toml"))
            .unwrap()
            .replace("(\"t\")", "(\"u\")"),
    )
    .unwrap();
    let o = mirage_nix(&["configure", "-t", "unix", d]);
    let err = text(&o.stderr);
    assert!(
        err.contains("error[missing-folder]: `crunch` needs the embedded folder `u`, but")
            && err.contains("unikernel.toml:11:9"),
        "{err}"
    );
    assert_eq!(err.matches("error[").count(), 1, "{err}");
    std::fs::rename(dir.path().join("t"), dir.path().join("u")).unwrap();
    ok(&["configure", "-t", "unix", d]);
    let o = mirage_nix(&["configure", "--check", d]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "plans of other targets are stale after the config changed"
    );
}

#[test]
fn configured_keys_are_remembered() {
    let dir = copy_of("kv_ro");
    let d = dir.path().to_str().unwrap();
    ok(&["configure", "-t", "hvt", "--kv_ro=tar", d]);
    let out = ok(&["describe", d]);
    assert!(
        out.contains("Target  hvt"),
        "describe uses the configured target:\n{out}"
    );
    assert!(
        out.contains("kv_ro=tar\n"),
        "describe shows the configured keys:\n{out}"
    );
    assert!(ok(&["query", "keys", d]).contains("kv_ro=tar (enum, configure, given)"));
}

#[test]
fn only_reachable_keys_are_flags() {
    let kv = example("kv_ro");
    let help = ok(&["describe", "--help", kv.to_str().unwrap()]);
    assert!(help.contains("--kv_ro"), "{help}");
    assert!(!help.contains("--net"), "kv_ro has no network:\n{help}");
    let help = ok(&[
        "configure",
        "--help",
        example("conduit_server").to_str().unwrap(),
        "-t",
        "xen",
    ]);
    for key in [
        "--net",
        "--dhcp",
        "--ipv4",
        "--ipv4-gateway",
        "--interface",
        "--port",
    ] {
        assert!(
            help.contains(key),
            "conduit_server on xen takes {key}:\n{help}"
        );
    }
    let help = ok(&[
        "configure",
        "--help",
        example("conduit_server").to_str().unwrap(),
        "--net=socket",
    ]);
    assert!(
        !help.contains("      --ipv4 <"),
        "the socket stack has no --ipv4:\n{help}"
    );
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("[default: socket on unix, direct elsewhere]"),
        "{help}"
    );
}

/// Bad key values and flags: each gives its own message and a non-zero exit, never a panic.
#[test]
fn bad_keys_on_the_command_line() {
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "conduit_server",
            &["-t", "xen", "--ipv4=10.0.0.2/33"],
            1,
            "`33` is not a prefix length between 0 and 32",
        ),
        (
            "conduit_server",
            &["-t", "xen", "--ipv4=10.0.0/24"],
            1,
            "is not an IPv4 address with a prefix length",
        ),
        (
            "conduit_server",
            &["-t", "xen", "--ipv4-gateway=10.0.0.256"],
            1,
            "is not an IPv4 address like 10.0.0.1",
        ),
        (
            "conduit_server",
            &["--dhcp=maybe"],
            1,
            "`maybe` is not true or false",
        ),
        (
            "conduit_server",
            &["--port=http"],
            1,
            "`http` is not a port number from 1 to 65535",
        ),
        (
            "conduit_server",
            &["--port=99999999"],
            1,
            "invalid value for --port: `99999999` is not a port number from 1 to 65535",
        ),
        (
            "conduit_server",
            &["--port=0"],
            1,
            "`0` is not a port number",
        ),
        (
            "conduit_server",
            &["--port=-1"],
            1,
            "`-1` is not a port number",
        ),
        (
            "kv_ro",
            &["--kv_ro=passthru"],
            1,
            "did you mean `passthrough`?",
        ),
        (
            "kv_ro",
            &["--kvro=tar"],
            1,
            "unknown flag --kvro; did you mean `--kv_ro`?",
        ),
        (
            "hello",
            &["--net=socket"],
            1,
            "key --net does not apply to `hello` on unix",
        ),
        ("kv_ro", &["-t", "xenn"], 2, "invalid value 'xenn'"),
        (
            "conduit_server",
            &["-t", "xen", "--net=socket"],
            1,
            "socket_stackv4 stack is not available on xen: a Xen guest has no host socket API",
        ),
        (
            "conduit_server",
            &["-t", "xen", "--net=socket"],
            1,
            "use --net=direct",
        ),
        (
            "conduit_server",
            &["-t", "hvt", "--net=socket"],
            1,
            "use --net=direct",
        ),
        (
            "kv_ro",
            &["-t", "xen", "--kv_ro=passthrough"],
            1,
            "kv_ro/unikernel.toml:11:9",
        ),
    ];
    for (name, args, code, expected) in cases {
        let dir = copy_of(name);
        let mut argv = vec!["configure"];
        argv.extend_from_slice(args);
        argv.push(dir.path().to_str().unwrap());
        let o = mirage_nix(&argv);
        let err = text(&o.stderr).replace(dir.path().to_str().unwrap(), name);
        assert_eq!(o.status.code(), Some(*code), "{argv:?}:\n{err}");
        assert!(
            err.contains(expected),
            "{argv:?} should say {expected:?}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{argv:?} panicked:\n{err}");
    }
}

#[test]
fn queries() {
    let hello = example("hello");
    let h = hello.to_str().unwrap();
    assert_eq!(ok(&["query", "nix-attr", "-t", "xen", h]), "hello-xen\n");
    assert!(ok(&["query", "crates", "-t", "unix", h])
        .contains("mirage-devices mirage-nix:devices [logs]"));
    let plan = ok(&["query", "plan", "-t", "hvt", h]);
    assert_eq!(
        plan,
        std::fs::read_to_string(hello.join("plans/hvt.json")).unwrap()
    );
    assert!(ok(&["query", "main", "-t", "unix", h])
        .contains("hello::start(default_time_2, args.string(\"hello\"))"));
    assert!(ok(&["query", "cargo-toml", "-t", "unix", h]).contains("[workspace]"));
    let manifest: serde_json::Value = serde_json::from_str(&ok(&[
        "query",
        "manifest",
        "-t",
        "hvt",
        example("conduit_server").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({"type": "solo5.manifest", "version": 1, "devices": [{"name": "service", "type": "NET_BASIC"}]})
    );
    let manifest: serde_json::Value = serde_json::from_str(&ok(&[
        "query",
        "manifest",
        "-t",
        "spt",
        example("block").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        manifest["devices"],
        serde_json::json!([{"name": "storage", "type": "BLOCK_BASIC"}])
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ok(&["query", "manifest", "-t", "hvt", h]))
            .unwrap()["devices"],
        serde_json::json!([])
    );
}

#[test]
fn render_needs_only_the_plan() {
    let out = tempfile::tempdir().unwrap();
    let dir = copy_of("hello");
    let plan = dir.path().join("plans/unix.json");
    std::fs::remove_file(dir.path().join("unikernel.toml")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args([
            "render",
            plan.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
            "--mirage-root",
            root().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let main = std::fs::read_to_string(out.path().join("src/main.rs")).unwrap();
    assert!(
        main.contains("mirage_unix::main!(\"hello\", RUNTIME_KEYS, unikernel);"),
        "{main}"
    );
    assert!(out.path().join("Cargo.toml").is_file());
}

#[test]
fn bad_plans_are_named_with_their_fix() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    let plan = dir.path().join("plans/unix.json");
    for (contents, expected) in [
        (
            "{\"version\": 7}",
            "plan format version 7, but this mirage-nix reads version 2",
        ),
        ("{\"name\": 1", "not valid JSON"),
        (
            "{\"version\": 2, \"name\": \"x\"}",
            "not a valid version 2 plan",
        ),
        (
            "{\"version\": \"2\"}",
            "the plan format `version` must be a whole number",
        ),
    ] {
        std::fs::write(&plan, contents).unwrap();
        let o = mirage_nix(&[
            "render",
            plan.to_str().unwrap(),
            "-o",
            out.path().to_str().unwrap(),
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(expected) && err.contains("unix.json"), "{err}");
        assert!(
            err.contains("regenerate it with `mirage-nix configure -t unix"),
            "{err}"
        );
    }
    let o = mirage_nix(&[
        "render",
        dir.path().join("plans/none.json").to_str().unwrap(),
        "-o",
        "x",
    ]);
    assert!(
        text(&o.stderr).contains("cannot read plan"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn help_everywhere() {
    for sub in [
        "describe",
        "configure",
        "query",
        "build",
        "run",
        "explain",
        "render",
        "disks",
        "clean",
        "completions",
        "targets",
        "catalogue",
        "schema",
    ] {
        let o = mirage_nix(&[sub, "--help"]);
        assert!(o.status.success(), "{sub} --help: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("Usage"), "{sub}");
    }
    assert!(ok(&["targets"]).contains("xen   xen-pv"));
    assert!(ok(&["catalogue"]).contains("generic_kv_ro(dir: string) -> kv_ro"));
}

/// Every file under `dir` with its bytes, to show a command wrote nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn configure_dry_run_says_what_it_would_write_and_writes_nothing() {
    let dir = copy_of("kv_ro");
    let d = dir.path().to_str().unwrap();
    let before = snapshot(dir.path());
    let o = mirage_nix(&["configure", "--dry-run", "-t", "unix", "--kv_ro=tar", d]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    let plan = format!("{d}/plans/unix.json");
    assert!(err.contains(&format!("would write {plan}:")), "{err}");
    assert!(err.contains("would remember unix as the target"), "{err}");
    // The diff shows the key's new value against the committed plan's.
    assert!(
        out.starts_with(&format!("--- {plan}\n+++ {plan}\n@@")),
        "{out}"
    );
    assert!(out.contains("\n-      \"value\": \"crunch\""), "{out}");
    assert!(out.contains("\n+      \"value\": \"tar\""), "{out}");
    assert_eq!(snapshot(dir.path()), before, "--dry-run wrote something");
    // The same keys as committed: nothing would change.
    let o = mirage_nix(&["configure", "--dry-run", "-t", "xen", d]);
    assert!(
        text(&o.stderr).contains(&format!("would leave {d}/plans/xen.json unchanged")),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).is_empty());
    // Every target, on a unikernel with no plans yet: every line is new, no folder is made.
    std::fs::remove_dir_all(dir.path().join("plans")).unwrap();
    let bare = snapshot(dir.path());
    let o = mirage_nix(&["configure", "--dry-run", "--all-targets", d]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr).matches("would write").count(),
        4,
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("+  \"version\""),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(snapshot(dir.path()), bare, "--dry-run wrote something");
    assert!(!dir.path().join("plans").exists() && !dir.path().join(".mirage-nix").exists());
}

#[test]
fn build_and_run_say_which_target_they_chose_and_why() {
    let dir = copy_of("hello");
    let d = dir.path().to_str().unwrap();
    // Stopped right after the choice: no mirage-nix tree to build with.
    let attempt = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--cargo", "--mirage-root", "/nonexistent", d]);
        text(&mirage_nix(&all).stderr)
    };
    for cmd in ["build", "run"] {
        let err = attempt(&[cmd]);
        assert!(
            err.contains(&format!("target unix (the default: {d} was never configured); choose another with -t hvt|spt|unix|xen")),
            "{cmd}: {err}"
        );
        assert!(attempt(&[cmd, "-t", "unix"])
            .lines()
            .all(|l| !l.starts_with("target ")));
    }
    ok(&["configure", "-t", "xen", d]);
    let err = attempt(&["build"]);
    assert!(
        err.contains(&format!(
            "target xen (the target `mirage-nix configure` was last run for in {d})"
        )),
        "{err}"
    );
}

#[test]
fn run_names_a_missing_tender_before_building() {
    let dir = copy_of("hello");
    let d = dir.path().to_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args([
            "run",
            "-t",
            "spt",
            "--cargo",
            "--mirage-root",
            "/nonexistent",
            d,
        ])
        .env_remove("SOLO5_SPT")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error[no-tender]: no Solo5 spt tender: SOLO5_SPT is not set and solo5-spt is not on PATH"), "{err}");
    assert!(
        err.contains("github.com/Solo5/solo5") && err.contains("SOLO5_SPT=/path/to/solo5-spt"),
        "{err}"
    );
    assert!(
        !err.contains("building"),
        "the tender is looked for first:\n{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args(["run", "-t", "spt", "--cargo", d])
        .env("SOLO5_SPT", "/nonexistent/solo5-spt")
        .output()
        .unwrap();
    assert!(
        text(&o.stderr).contains("SOLO5_SPT=/nonexistent/solo5-spt is not an executable file"),
        "{}",
        text(&o.stderr)
    );
}

/// `describe --dot` draws a never-configured unikernel before evaluation, with its choices
/// (Mirage's default), and a configured one evaluated; `--eval`/`--no-eval` choose.
#[test]
fn describe_dot_draws_the_unevaluated_graph_until_configured() {
    let dir = copy_of("kv_ro");
    let d = dir.path().to_str().unwrap();
    std::fs::remove_dir_all(dir.path().join("plans")).unwrap();
    let o = mirage_nix(&["describe", "-t", "xen", "--dot", d]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(out.contains("choose generic_kv_ro"), "{out}");
    assert!(
        err.contains(&format!("{d} was never configured for xen")),
        "{err}"
    );
    assert!(!ok(&["describe", "-t", "xen", "--dot", "--eval", d]).contains("choose"));
    ok(&["configure", "-t", "xen", d]);
    let o = mirage_nix(&["describe", "-t", "xen", "--dot", d]);
    assert!(!text(&o.stdout).contains("choose"), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("is configured for xen"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        ok(&["describe", "-t", "xen", "--dot", "--no-eval", d]).contains("choose generic_kv_ro")
    );
}

/// Branches that cannot be taken on the target are drawn, grey, with the reason as their
/// tooltip: a device the target lacks (passthrough on xen), a case the target rules out
/// (`target=hvt`), and what only they lead to; Graphviz keeps the tooltips.
#[test]
fn describe_dot_greys_the_branches_the_target_cannot_take() {
    let kv = example("kv_ro");
    let dot = ok(&[
        "describe",
        "-t",
        "xen",
        "--dot",
        "--no-eval",
        kv.to_str().unwrap(),
    ]);
    let grey = "color=\"grey60\", fontcolor=\"grey60\"";
    let passthrough = dot
        .lines()
        .find(|l| l.contains("label=\"passthrough(\\\"t\\\")"))
        .unwrap_or_else(|| panic!("no passthrough vertex:\n{dot}"));
    assert!(passthrough.contains(grey), "{passthrough}");
    assert!(
        passthrough.contains(
            "tooltip=\"`passthrough` is not available on xen: a Xen guest has no host filesystem\""
        ),
        "{passthrough}"
    );
    let edge = dot
        .lines()
        .find(|l| l.contains("label=\"kv_ro=passthrough\""))
        .unwrap();
    assert!(edge.contains(grey) && edge.contains("tooltip="), "{edge}");
    // The cases open on xen are drawn as before.
    for open in [
        "label=\"kv_ro=tar\"",
        "label=\"kv_ro=fat\"",
        "label=\"default\"",
    ] {
        let line = dot.lines().find(|l| l.contains(open)).unwrap();
        assert!(!line.contains("grey"), "{line}");
    }
    // On unix every kv_ro case is open.
    let unix = ok(&[
        "describe",
        "-t",
        "unix",
        "--dot",
        "--no-eval",
        kv.to_str().unwrap(),
    ]);
    assert!(!unix.contains("grey"), "{unix}");
    // A key given rules cases out too.
    let tar = ok(&[
        "describe",
        "-t",
        "unix",
        "--kv_ro=tar",
        "--dot",
        "--no-eval",
        kv.to_str().unwrap(),
    ]);
    assert!(
        tar.contains("ruled out: needs --kv_ro=passthrough, and --kv_ro=tar was given"),
        "{tar}"
    );
    assert!(tar.contains("not taken: kv_ro=tar holds first"), "{tar}");

    let cs = example("conduit_server");
    let dot = ok(&[
        "describe",
        "-t",
        "xen",
        "--dot",
        "--no-eval",
        cs.to_str().unwrap(),
    ]);
    let hvt = dot
        .lines()
        .find(|l| l.contains("label=\"target=hvt\""))
        .unwrap();
    assert!(
        hvt.contains("tooltip=\"ruled out: needs target hvt, and the target is xen\""),
        "{hvt}"
    );
    let socket = dot
        .lines()
        .find(|l| l.contains("label=\"socket_stackv4"))
        .unwrap();
    assert!(socket.contains(grey), "{socket}");
    let svg = render_svg(&dot);
    assert!(
        svg.contains("ruled out: needs target hvt, and the target is xen"),
        "tooltips survive Graphviz"
    );
}

/// Runs mirage-nix and fails the test if it takes `limit` or more.
fn within(limit: std::time::Duration, args: &[&str]) -> Output {
    let start = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage-nix"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("mirage-nix {args:?} hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let took = start.elapsed();
    let o = child.wait_with_output().unwrap();
    assert!(took < limit, "mirage-nix {args:?} took {took:?}");
    o
}

#[test]
fn a_fifo_a_device_and_a_huge_file_fail_at_once_naming_the_file() {
    let fifo = tempfile::tempdir().unwrap();
    let made = Command::new("mkfifo")
        .arg(fifo.path().join("unikernel.toml"))
        .status()
        .unwrap();
    assert!(made.success());
    let zero = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.path().join("unikernel.toml")).unwrap();
    let huge = tempfile::tempdir().unwrap();
    let big = std::fs::File::create(huge.path().join("unikernel.toml")).unwrap();
    big.set_len(100 << 20).unwrap();
    // A plan may be larger than a config (512 MiB): 100 MB of zeros is read, and refused.
    for (dir, why, plan_why) in [
        (
            &fifo,
            "a FIFO (named pipe), not a regular file",
            "a FIFO (named pipe), not a regular file",
        ),
        (
            &zero,
            "a device, not a regular file",
            "a device, not a regular file",
        ),
        (&huge, "or more, over the limit of", "not valid JSON"),
    ] {
        let d = dir.path().to_str().unwrap();
        for args in [
            vec!["configure", d],
            vec!["configure", "--help", d],
            vec!["describe", d],
        ] {
            let o = within(std::time::Duration::from_secs(1), &args);
            // --help still helps (exit 0), saying why the keys cannot be listed.
            let help = args.contains(&"--help");
            let said = text(if help { &o.stdout } else { &o.stderr });
            // Help text is wrapped: compare words.
            let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                o.status.code(),
                Some(if help { 0 } else { 1 }),
                "{args:?}: {said}"
            );
            assert!(
                said.contains("unikernel.toml") && said.contains(why),
                "{args:?}: {said}"
            );
        }
        let plan = dir.path().join("plan.json");
        std::fs::rename(dir.path().join("unikernel.toml"), &plan).unwrap();
        let out = dir.path().join("out");
        // Reading a 100 MB plan (then refusing it) takes longer than refusing a config.
        let o = within(
            std::time::Duration::from_secs(5),
            &[
                "render",
                plan.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        let err = text(&o.stderr);
        assert!(err.contains("plan.json") && err.contains(plan_why), "{err}");
        assert!(
            !out.exists(),
            "nothing is written for a plan that cannot be read"
        );
    }
}

#[test]
fn render_refuses_a_folder_it_did_not_write_and_leaves_it_unchanged() {
    let dir = copy_of("hello");
    let plan = dir.path().join("plans/unix.json");
    let plan = plan.to_str().unwrap();
    // The unikernel's own folder holds its Cargo.toml.
    let own = dir.path().join("Cargo.toml");
    std::fs::write(&own, "[package]\nname = \"hello\"\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let o = mirage_nix(&["render", plan, "-o", d]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to write into") && err.contains(&format!("{d}/Cargo.toml")),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&own).unwrap(),
        "[package]\nname = \"hello\"\n"
    );
    assert!(!dir.path().join("src/main.rs").exists());
    assert!(!dir.path().join(".mirage-nix-render").exists());
    // The root of the file system is not empty either, and holds no render.
    let o = mirage_nix(&["render", plan, "-o", "/"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(!Path::new("/Cargo.toml").exists() && !Path::new("/.mirage-nix-render").exists());
    // An empty folder, then the same folder again, then --force over a foreign file.
    let out = tempfile::tempdir().unwrap();
    let o_dir = out.path().to_str().unwrap();
    for _ in 0..2 {
        let root = root();
        ok(&[
            "render",
            plan,
            "-o",
            o_dir,
            "--mirage-root",
            root.to_str().unwrap(),
        ]);
    }
    assert!(out.path().join(".mirage-nix-render").is_file());
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("Cargo.toml"), "mine").unwrap();
    let f = foreign.path().to_str().unwrap();
    ok(&[
        "render",
        plan,
        "-o",
        f,
        "--force",
        "--mirage-root",
        root().to_str().unwrap(),
    ]);
    let cargo = std::fs::read_to_string(foreign.path().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"hello-unix\""), "{cargo}");
}

#[test]
fn render_checks_the_plan_and_names_the_command_that_regenerates_it() {
    let dir = copy_of("hello");
    let plan = std::fs::read_to_string(dir.path().join("plans/unix.json")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o_dir = out.path().to_str().unwrap();
    for (edit, expected) in [
        (
            plan.replace("\"target\": \"unix\"", "\"target\": \"vax\""),
            "unknown target `vax`",
        ),
        (
            plan.replace(
                "\"start\": \"hello::start\"",
                "\"start\": \"hello::start() } fn evil() { x\"",
            ),
            "is not a Rust path",
        ),
        (
            plan.replace("\"name\": \"hello\"", "\"name\": \"hello\\\"\\n[x]\""),
            "is not a unikernel name",
        ),
        (
            plan.replace(
                "mirage_unix::Time::new()",
                "mirage_unix::Time::new(); evil()",
            ),
            "is not one Rust expression",
        ),
    ] {
        assert_ne!(edit, plan);
        let path = elsewhere.path().join("myplan.json");
        std::fs::write(&path, edit).unwrap();
        let o = mirage_nix(&["render", path.to_str().unwrap(), "-o", o_dir]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(
            err.contains("regenerate it with `mirage-nix configure -t "),
            "{err}"
        );
        assert!(
            !err.contains("-t myplan"),
            "the hint names the file as the target: {err}"
        );
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
