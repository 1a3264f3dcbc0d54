//! `mirage-nix`: the command line. Each command parses its arguments and calls `mirage_nix::ops`.
//!
//! Commands that take keys (describe, configure, query, build) read the unikernel's config
//! first, so that `--help` and the accepted flags list exactly the keys reachable for the
//! target and the keys already given, as Functoria does.

mod args;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use mirage_nix::diag::Report;
use mirage_nix::ops::{self, DescribeFormat, Outcome, QueryInfo};
use mirage_nix::render::{self, Roots};
use mirage_nix::Unikernel;

use args::KeyedCommand;
use mirage_nix::ops::completions::{self, Shell};

/// The commands that take the unikernel's keys as flags.
const KEYED: &[&str] = &["describe", "configure", "query", "build", "run"];

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match run(&argv) {
        Ok(code) => code,
        Err(Failure::Report(report)) => {
            eprint!("{}", report.render());
            ExitCode::from(1)
        }
        Err(Failure::Clap(e)) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
    }
}

/// Why a command failed.
enum Failure {
    /// Problems with the configuration, plans or build.
    Report(Report),
    /// Problems with the command line (or a request for help).
    Clap(clap::Error),
}

impl From<Report> for Failure {
    fn from(r: Report) -> Self {
        Failure::Report(r)
    }
}

impl From<clap::Error> for Failure {
    fn from(e: clap::Error) -> Self {
        Failure::Clap(e)
    }
}

fn cli() -> Command {
    Command::new("mirage-nix")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Specialise a unikernel's device graph for a target: describe it, write its plans, build its images")
        .long_about(
            "mirage-nix reads a unikernel's unikernel.toml (its devices and how they are built), \
             evaluates the device graph for a target and keys, and writes deterministic JSON plans \
             (plans/<target>.json) from which Nix or cargo build the image.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(args::keyed("describe", "Show a unikernel: its keys and output, or its device graph as Graphviz dot")
            .arg(Arg::new("dot").long("dot").action(ArgAction::SetTrue).help("Print the device graph in Graphviz dot (render it with `dot -Tsvg`)"))
            .arg(Arg::new("eval").long("eval").action(ArgAction::SetTrue).conflicts_with("no-eval").help("Draw the evaluated graph: the devices the image connects (the default once the unikernel is configured for the target)"))
            .arg(Arg::new("no-eval").long("no-eval").action(ArgAction::SetTrue).help("Draw the graph before evaluation, with its choices and every case, those the target and keys close greyed with why (the default before the unikernel is configured for the target, as Mirage does)"))
            .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).conflicts_with("dot").help("Print the summary as JSON")))
        .subcommand(args::keyed("configure", "Write the plan of each target to DIR/plans/<target>.json")
            .arg(Arg::new("all-targets").long("all-targets").action(ArgAction::SetTrue).conflicts_with("target").help("Write one plan per target that can build the unikernel"))
            .arg(Arg::new("check").long("check").action(ArgAction::SetTrue).help("Write nothing; fail if a committed plan differs from what the config gives"))
            .arg(Arg::new("dry-run").long("dry-run").action(ArgAction::SetTrue).conflicts_with("check").help("Write nothing; say what would be written, with the lines of each plan that would change")))
        .subcommand(args::keyed("query", "Print one fact about the plan: plan, crates, keys, main, cargo-toml, nix-attr, manifest, xl or xl-pv")
            .mut_arg("dir", |a| a.index(2))
            .arg(Arg::new("info").index(1).required(true).value_parser(QueryInfo::ALL.map(|(_, n)| n)).help("What to print"))
            .arg(Arg::new("mirage-root").long("mirage-root").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The mirage-nix tree (default: $MIRAGE_NIX_ROOT or the tree mirage-nix was built from)")))
        .subcommand(build_args(args::keyed("build", "Build the image of the committed plan with `nix build` (or with cargo: --cargo), print its path and how to boot it")
            .long_about("Build the image of the plan for the target with `nix build` of the flake that builds it (the unikernel's own flake.nix, else the mirage-nix tree's), as package <name>-<target>. Nix builds committed plans: run `mirage-nix configure` first when the config or keys changed. Prints the image's path on stdout and how to boot it on stderr. Without Nix on PATH, or with --cargo, the crate is rendered and compiled with cargo into DIR/dist/ instead. Without -t, the target is the last configured (else unix), and a line on stderr says which.")))
        .subcommand(build_args(args::keyed("run", "Build the image (as `build` does) and boot it where it runs, streaming its console; exit with the unikernel's own status")
            .long_about("Build the image of the plan for the target as `build` does, then boot it: a unix image is executed; a Solo5 image runs under its tender (SOLO5_SPT/SOLO5_HVT, else solo5-spt/solo5-hvt on PATH) with --mem and every device of its manifest attached; a xen image boots through its PVH entry under QEMU (--xen=dom0: as dom0 on Xen under QEMU; inside a Xen dom0: as a domU through `xl create`). Configure keys choose the plan; runtime keys given here, and the words after --, are the image's boot arguments. The exit status is the unikernel's: 0 success, 1 failure, 63 after --help, 64 on bad arguments (a crashed Xen domain is 1).")
            .arg(Arg::new("mem").long("mem").value_name("MIB").value_parser(clap::value_parser!(u64).range(2..=1 << 20)).help("Memory of a Solo5 or Xen guest, in MiB [default: 64]"))
            .arg(Arg::new("disk").long("disk").value_name("NAME=FILE|SIZE").action(ArgAction::Append).value_parser(clap::value_parser!(ops::run::DiskOption)).help("Attach FILE as the block device NAME of a Solo5 image, or an empty disk of SIZE (64M, 1G) for this run; without it, the disk the build made beside the image"))
            .arg(Arg::new("tap").long("tap").value_name("[NAME=]IFACE").action(ArgAction::Append).value_parser(clap::value_parser!(ops::run::TapOption)).help("Attach the host's tap IFACE as the network device NAME (the only one if NAME is left out); without it, a tap is made for the run (root only)"))
            .arg(Arg::new("xen").long("xen").value_name("HOW").value_parser(ops::run::XenMode::ALL.map(|(_, n)| n)).help("How a xen image boots: pvh (directly under QEMU), dom0 or pvh-dom0 (on Xen under QEMU), xl (a domU, inside a Xen dom0) [default: xl in a Xen dom0, else pvh]"))
            .arg(Arg::new("verbose").long("verbose").action(ArgAction::SetTrue).help("Show Xen's and xl's own log lines too"))
            .arg(Arg::new("image").long("image").value_name("FILE").value_parser(clap::value_parser!(PathBuf)).conflicts_with_all(["cargo", "rebuild", "print-build-logs", "toolchain"]).help("Boot FILE, an image of this plan built before (by Nix or cargo, here or elsewhere), instead of building; the disks the build made are looked for beside it"))
            .arg(Arg::new("image-args").value_name("IMAGE-ARGS").num_args(0..).last(true).allow_hyphen_values(true).help("Boot arguments passed to the image as they are (after --)"))))
        .subcommand(Command::new("explain")
            .visible_alias("why-rebuild")
            .about("Name the inputs that make two builds different derivations, down to where the change starts")
            .long_about("Compare the derivations of A and B and name what differs: sources (with the files that differ), environment variables, builders, and input derivations, explained the same way recursively. A and B are each a .drv path, a flake installable (FLAKE#ATTR), a plan file (its image), or with --attr a git revision of the mirage-nix tree (`.` for the working tree).")
            .arg(Arg::new("a").required(true).value_name("A").help("The old side: .drv, FLAKE#ATTR, plan file, or git revision (with --attr)"))
            .arg(Arg::new("b").required(true).value_name("B").help("The new side, the same kinds as A"))
            .arg(Arg::new("attr").long("attr").short('a').value_name("PACKAGE").help("The package to compare when A or B is a git revision, e.g. hello-unix"))
            .arg(Arg::new("mirage-root").long("mirage-root").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The mirage-nix tree (default: $MIRAGE_NIX_ROOT or the tree mirage-nix was built from)")))
        .subcommand(Command::new("render")
            .about("Render the specialised crate of a plan (Cargo.toml, src/main.rs, embedded files) from the plan alone")
            .arg(Arg::new("plan").required(true).value_name("PLAN").value_parser(clap::value_parser!(PathBuf)).help("A plan file, e.g. examples/hello/plans/unix.json"))
            .arg(Arg::new("output").short('o').long("output").required(true).value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The folder to write the crate to: missing, empty, or holding a previous render of the same unikernel"))
            .arg(Arg::new("force").long("force").action(ArgAction::SetTrue).help("Write into DIR even if it holds files no render of this unikernel wrote, overwriting those the crate needs"))
            .arg(Arg::new("mirage-root").long("mirage-root").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The mirage-nix tree (default: $MIRAGE_NIX_ROOT or the tree mirage-nix was built from)"))
            .arg(Arg::new("unikernel-dir").long("unikernel-dir").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The unikernel's directory (default: the folder above the plan's plans/)")))
        .subcommand(Command::new("disks")
            .about("Make the disk images a plan's stores read (DIR.tar, DIR.fat), deterministically, from the unikernel's folders")
            .long_about("Make the disk images a plan's stores over block devices read: for `tar_archive(\"DIR\")` the tar archive DIR.tar, for `fat_image(\"DIR\")` the FAT filesystem DIR.fat, of the files crunch would embed (sorted, fixed times, owners and volume id: the same folder gives the same bytes). A unix image finds them beside itself; a Solo5 tender attaches them with --block:DIR=FILE.")
            .arg(Arg::new("plan").required(true).value_name("PLAN").value_parser(clap::value_parser!(PathBuf)).help("A plan file, e.g. examples/kv_ro/plans/unix.json"))
            .arg(Arg::new("output").short('o').long("output").required(true).value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The folder to write the images to"))
            .arg(Arg::new("unikernel-dir").long("unikernel-dir").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The unikernel's directory (default: the folder above the plan's plans/)")))
        .subcommand(Command::new("clean")
            .about("Remove a unikernel's local state and built images (.mirage-nix/, dist/); committed plans stay")
            .arg(args::dir_arg()))
        .subcommand(Command::new("completions")
            .about("Print a shell completion script: commands, options, targets, and the keys of the unikernel a line names (or of the current directory's)")
            .long_about("Print the completion script of a shell. bash: `eval \"$(mirage-nix completions bash)\"` (or save it in /usr/share/bash-completion/completions/mirage-nix); zsh: `eval \"$(mirage-nix completions zsh)\"` after compinit (or save it as _mirage-nix in $fpath); fish: `mirage-nix completions fish | source` (or save it in ~/.config/fish/completions/mirage-nix.fish). The scripts complete key flags by asking `mirage-nix completions keys -- WORDS...`, which prints the keys the line may still add, so they follow the unikernel, the target and the keys typed.")
            .arg(Arg::new("shell").required(true).value_name("SHELL").value_parser([
                clap::builder::PossibleValue::new("bash"),
                clap::builder::PossibleValue::new("zsh"),
                clap::builder::PossibleValue::new("fish"),
                clap::builder::PossibleValue::new("keys").hide(true),
            ]).help("The shell: bash, zsh or fish"))
            .arg(Arg::new("words").value_name("WORDS").num_args(0..).last(true).allow_hyphen_values(true).hide(true).help("With `keys`: the command line being completed")))
        .subcommand(Command::new("targets").about("List the targets images can be built for"))
        .subcommand(Command::new("catalogue").about("List the built-in signatures, constructors (with the targets they exist on) and keys"))
        .subcommand(Command::new("schema").about("Print the JSON Schema of plans"))
}

/// The options of commands that build images (`build`, `run`).
fn build_args(c: Command) -> Command {
    c
            .arg(Arg::new("mirage-root").long("mirage-root").value_name("DIR").value_parser(clap::value_parser!(PathBuf)).help("The mirage-nix tree (default: $MIRAGE_NIX_ROOT or the tree mirage-nix was built from)"))
            .arg(Arg::new("cargo").long("cargo").action(ArgAction::SetTrue).help("Build with cargo directly, not Nix (the default when nix is not on PATH)"))
            .arg(Arg::new("print-build-logs").long("print-build-logs").short('L').action(ArgAction::SetTrue).conflicts_with("cargo").help("Show the builders' logs (nix build -L) instead of nix's progress"))
            .arg(Arg::new("rebuild").long("rebuild").action(ArgAction::SetTrue).conflicts_with("cargo").help("Build again although the image is in the store, and fail unless it is bit-for-bit the same"))
            .arg(Arg::new("toolchain").long("toolchain").value_name("SOURCE").value_parser(["host", "nixpkgs"]).conflicts_with("cargo").help("The toolchain source (default: the flake's, see docs/nix.md)"))
            .arg(Arg::new("quiet").long("quiet").short('q').action(ArgAction::SetTrue).help("Hide cargo's progress (with --cargo)"))
}

/// `plan_and_unikernel(m)` is the plan named by `m`'s `plan` argument and the unikernel's
/// directory: `--unikernel-dir`, else the folder above the plan's `plans/`.
fn plan_and_unikernel(m: &clap::ArgMatches) -> Result<(mirage_nix::plan::Plan, PathBuf), Failure> {
    let plan_path = m.get_one::<PathBuf>("plan").expect("required");
    let plan = ops::read_plan(plan_path)?;
    let unikernel = match m.get_one::<PathBuf>("unikernel-dir") {
        Some(d) => d.clone(),
        None => plan_path
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    Ok((plan, unikernel))
}

fn run(argv: &[String]) -> Result<ExitCode, Failure> {
    let sub = argv
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);
    if let Some(name) = sub.filter(|s| KEYED.contains(s)) {
        let keyed = KeyedCommand::prepare(name, argv)?;
        let command = cli().mut_subcommand(name, |c| keyed.add_keys(c));
        let matches = command.try_get_matches_from(argv)?;
        let (_, m) = matches.subcommand().expect("a subcommand is required");
        let uk = keyed.unikernel.ok_or_else(|| {
            keyed
                .load_error
                .clone()
                .expect("a load error when there is no unikernel")
        })?;
        return keyed_command(name, &uk, &keyed.dir, m);
    }
    let matches = cli().try_get_matches_from(argv)?;
    match matches.subcommand().expect("a subcommand is required") {
        ("disks", m) => {
            let (plan, unikernel) = plan_and_unikernel(m)?;
            let out = m.get_one::<PathBuf>("output").expect("required");
            let written = ops::write_disks(&plan, &unikernel, out)?;
            for path in &written {
                eprintln!("wrote {}", path.display());
            }
            if written.is_empty() {
                eprintln!("{} for {} reads no disk image", plan.name, plan.target);
            }
        }
        ("render", m) => {
            let (plan, unikernel) = plan_and_unikernel(m)?;
            let plan_path = m.get_one::<PathBuf>("plan").expect("required");
            let out = m.get_one::<PathBuf>("output").expect("required");
            let roots = Roots {
                mirage: ops::mirage_root(
                    m.get_one::<PathBuf>("mirage-root").map(PathBuf::as_path),
                )?,
                unikernel,
            };
            let files = render::crate_files(&plan, &roots, out).map_err(|e| {
                let mut r = args::report("render", e.to_string());
                if let render::RenderError::Plan { .. } = e {
                    r.diagnostics[0].help = Some(ops::regenerate_hint(plan_path, Some(&plan)));
                }
                r
            })?;
            let overwrite = if m.get_flag("force") {
                render::Overwrite::Force
            } else {
                render::Overwrite::Refuse
            };
            render::write_into(&files, out, &plan.name, overwrite)
                .map_err(|e| args::report("output", e.to_string()))?;
            eprintln!(
                "rendered {} for {} into {} ({} files)",
                plan.name,
                plan.target,
                out.display(),
                files.len()
            );
        }
        ("explain", m) => {
            let nix = ops::find_nix().ok_or_else(|| {
                args::report(
                    "no-nix",
                    "explain compares Nix derivations and there is no `nix` on PATH: set it up with `eval \"$(scripts/setup-nix)\"`".into(),
                )
            })?;
            let opts = ops::ExplainOptions {
                mirage_root: ops::mirage_root(
                    m.get_one::<PathBuf>("mirage-root").map(PathBuf::as_path),
                )?,
                attr: m.get_one::<String>("attr").cloned(),
                nix,
            };
            let a = m.get_one::<String>("a").expect("required");
            let b = m.get_one::<String>("b").expect("required");
            print!("{}", ops::explain_specs(a, b, &opts)?.render());
        }
        ("clean", m) => {
            let dir = args::dir_of(m);
            let removed = ops::clean(&dir)
                .map_err(|e| args::report("io", format!("cannot clean {}: {e}", dir.display())))?;
            for r in removed {
                println!("removed {}", r.display());
            }
        }
        ("completions", m) => {
            let shell = m.get_one::<String>("shell").expect("required");
            if shell == "keys" {
                let words: Vec<String> = m
                    .get_many::<String>("words")
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let sub = words
                    .iter()
                    .skip(1)
                    .find(|w| !w.starts_with('-'))
                    .map(String::as_str);
                if let Some(name) = sub.filter(|s| KEYED.contains(s)) {
                    if let Ok(keyed) = KeyedCommand::peek(name, &words) {
                        print!("{}", keyed.key_lines());
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let shell = Shell::from_name(shell).expect("clap checked the value");
            print!(
                "{}",
                completions::script(shell, "mirage-nix", &command_specs(&cli()))
            );
        }
        ("targets", _) => print!("{}", ops::targets(&catalogue_only()?.config)),
        ("catalogue", _) => print!("{}", ops::catalogue(&catalogue_only()?.config)),
        ("schema", _) => print!("{}", mirage_nix::plan::schema()),
        (other, _) => unreachable!("clap accepted unknown subcommand {other}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The catalogue alone, through a minimal unikernel that uses nothing.
fn catalogue_only() -> Result<Unikernel, Report> {
    Unikernel::from_str(
        Path::new("."),
        "<none>",
        "[unikernel]\nname = \"none\"\nsignature = \"job\"\nreporter = false\n",
    )
}

/// The commands of `cli` as completion scripts see them.
fn command_specs(cli: &Command) -> Vec<completions::CommandSpec> {
    cli.get_subcommands()
        .map(|c| {
            let help = completions::OptionSpec {
                long: Some("help".into()),
                short: Some('h'),
                takes_value: false,
                values: Vec::new(),
                path: false,
                help: "Print help (keys included)".into(),
            };
            let options = c
                .get_arguments()
                .filter(|a| !a.is_positional() && !a.is_hide_set())
                .map(|a| {
                    let takes_value = a.get_action().takes_values();
                    let value_name = a
                        .get_value_names()
                        .and_then(|n| n.first())
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    completions::OptionSpec {
                        long: a.get_long().map(str::to_string),
                        short: a.get_short(),
                        takes_value,
                        values: a
                            .get_possible_values()
                            .iter()
                            .filter(|v| !v.is_hide_set())
                            .map(|v| v.get_name().to_string())
                            .collect(),
                        path: takes_value
                            && (value_name.contains("DIR") || value_name.contains("FILE")),
                        help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
                    }
                })
                .chain(std::iter::once(help))
                .collect();
            let mut positionals: Vec<&Arg> = c
                .get_positionals()
                .filter(|a| !a.is_hide_set() && !a.is_last_set())
                .collect();
            positionals.sort_by_key(|a| a.get_index());
            let positionals = positionals
                .into_iter()
                .map(|a| match a.get_id().as_str() {
                    "dir" => completions::Positional::Dir,
                    _ if !a.get_possible_values().is_empty() => completions::Positional::Words(
                        a.get_possible_values()
                            .iter()
                            .filter(|v| !v.is_hide_set())
                            .map(|v| v.get_name().to_string())
                            .collect(),
                    ),
                    _ => completions::Positional::File,
                })
                .collect();
            completions::CommandSpec {
                name: c.get_name().to_string(),
                about: c.get_about().map(|h| h.to_string()).unwrap_or_default(),
                options,
                positionals,
                keyed: KEYED.contains(&c.get_name()),
            }
        })
        .collect()
}

/// The build options of `build` and `run`.
fn image_build(m: &ArgMatches) -> ops::ImageBuild {
    ops::ImageBuild {
        cargo: m.get_flag("cargo"),
        mirage_root: m.get_one::<PathBuf>("mirage-root").cloned(),
        toolchain: m.get_one::<String>("toolchain").cloned(),
        print_build_logs: m.get_flag("print-build-logs"),
        rebuild: m.get_flag("rebuild"),
        quiet: m.get_flag("quiet"),
    }
}

fn keyed_command(
    name: &str,
    uk: &Unikernel,
    dir: &Path,
    m: &ArgMatches,
) -> Result<ExitCode, Failure> {
    let given = args::given_keys(uk, m);
    let choice = ops::choose_target(dir, m.get_one::<String>("target").map(String::as_str));
    if matches!(name, "build" | "run") {
        if let Some(line) = choice.explain(dir, uk.config.targets.keys().map(String::as_str)) {
            eprintln!("{line}");
        }
    }
    let target = choice.target;
    let pairs = || given.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match name {
        "describe" => {
            let ctx = ops::context_with_plan(uk, dir, &target, pairs())?;
            let format = match (m.get_flag("dot"), m.get_flag("eval"), m.get_flag("no-eval")) {
                (false, _, _) => DescribeFormat::Text,
                (true, true, _) => DescribeFormat::DotEvaluated,
                (true, _, true) => DescribeFormat::DotUnevaluated,
                (true, false, false) => {
                    let (format, why) = ops::default_drawing(dir, &target);
                    eprintln!("{why}");
                    format
                }
            };
            if m.get_flag("json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&ops::describe_json(uk, &ctx))
                        .expect("JSON values serialise")
                );
            } else {
                print!("{}", ops::describe(uk, &ctx, format));
            }
        }
        "configure" => {
            if m.get_flag("check") {
                let stale = ops::check_plans(uk, dir);
                for s in &stale {
                    eprintln!(
                        "stale plan {}: {}\n  fix: {}",
                        s.path.display(),
                        s.reason,
                        s.fix
                    );
                }
                if !stale.is_empty() {
                    return Ok(ExitCode::from(1));
                }
                eprintln!("plans of {} are up to date", uk.config.main.name);
                return Ok(ExitCode::SUCCESS);
            }
            let targets: Vec<String> = if m.get_flag("all-targets") {
                uk.config.targets.keys().cloned().collect()
            } else {
                vec![target]
            };
            let writes = if m.get_flag("dry-run") {
                ops::Writes::DryRun
            } else {
                ops::Writes::Files
            };
            for outcome in ops::configure_with(uk, dir, &targets, &given, writes)? {
                match outcome {
                    Outcome::Written(p) => eprintln!("wrote {}", p.display()),
                    Outcome::Unchanged(p) => eprintln!("unchanged {}", p.display()),
                    Outcome::WouldWrite { path, diff } => {
                        eprintln!("would write {}:", path.display());
                        print!("{diff}");
                    }
                    Outcome::WouldKeep(p) => eprintln!("would leave {} unchanged", p.display()),
                    Outcome::WouldRemember(t) => eprintln!(
                        "would remember {t} as the target of later commands ({}/{}/context.json)",
                        dir.display(),
                        ops::STATE_DIR
                    ),
                    Outcome::Skipped { target, reason } => eprintln!("skipped {target}: {reason}"),
                }
            }
        }
        "query" => {
            let ctx = ops::context_with_plan(uk, dir, &target, pairs())?;
            let info = m.get_one::<String>("info").expect("required");
            let info = QueryInfo::ALL
                .iter()
                .find(|(_, n)| n == info)
                .expect("clap checked the value")
                .0;
            let roots = Roots {
                mirage: ops::mirage_root(
                    m.get_one::<PathBuf>("mirage-root").map(PathBuf::as_path),
                )?,
                unikernel: dir.to_path_buf(),
            };
            let out_dir = ops::crate_dir(dir, &target);
            print!("{}", ops::query(uk, &ctx, info, &roots, &out_dir)?);
        }
        "build" => {
            let ctx = ops::context_with_plan(uk, dir, &target, pairs())?;
            let plan = uk.plan(&ctx)?;
            let built = ops::build_image(&plan, dir, &image_build(m), &mut |l| eprintln!("{l}"))?;
            println!("{}", built.image.display());
            eprintln!("{}", built.run_hint);
        }
        "run" => {
            let (configure_keys, mut boot_args) = ops::run::split_keys(uk, &given);
            let ctx = ops::context_with_plan(
                uk,
                dir,
                &target,
                configure_keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            let plan = uk.plan(&ctx)?;
            boot_args.extend(
                m.get_many::<String>("image-args")
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            let opts = ops::run::RunOptions {
                mem_mib: m.get_one::<u64>("mem").copied(),
                disks: m
                    .get_many::<ops::run::DiskOption>("disk")
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                taps: m
                    .get_many::<ops::run::TapOption>("tap")
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                xen: m
                    .get_one::<String>("xen")
                    .and_then(|x| ops::run::XenMode::from_name(x)),
                args: boot_args,
                verbose: m.get_flag("verbose"),
            };
            let host = ops::run::Host::probe();
            ops::run::preflight(&plan, &opts, &host)?;
            let image = match m.get_one::<PathBuf>("image") {
                Some(given) => given.clone(),
                None => {
                    ops::build_image(&plan, dir, &image_build(m), &mut |l| eprintln!("{l}"))?.image
                }
            };
            let launch = ops::run::prepare(&plan, &image, &opts, &host)?;
            for note in &launch.notes {
                eprintln!("{note}");
            }
            eprintln!("booting {}: {}", plan.image.file, launch.command_text());
            return Ok(ExitCode::from(launch.boot()?));
        }
        other => unreachable!("{other} is not a keyed command"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use mirage_nix::config::{RESERVED_FLAGS, RESERVED_SHORTS};

    #[test]
    fn the_command_line_is_well_formed() {
        super::cli().debug_assert();
    }

    /// Keys become flags of the same commands, so every option of every command must be
    /// reserved (or be the `target` key), or a key could collide with it.
    #[test]
    fn every_option_is_reserved_for_keys() {
        let cli = super::cli();
        let commands = std::iter::once(&cli).chain(cli.get_subcommands());
        for c in commands {
            for a in c.get_arguments() {
                if let Some(long) = a.get_long() {
                    assert!(
                        RESERVED_FLAGS.contains(&long) || long == "target",
                        "--{long} of {} is not in RESERVED_FLAGS",
                        c.get_name()
                    );
                }
                if let Some(short) = a.get_short() {
                    assert!(
                        RESERVED_SHORTS.contains(&short) || short == 't',
                        "-{short} of {} is not in RESERVED_SHORTS",
                        c.get_name()
                    );
                }
            }
        }
    }
}
