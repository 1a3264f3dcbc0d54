//! The shape of the `main.rs` that `mirage-nix` renders for examples/hello on unix, kept
//! here so that `cargo test` proves the generated-code contract compiles and runs (see
//! tests/generated.rs). The logs reporter is a node nothing consumes, hence the underscore.
#![forbid(unsafe_code)]
// Generated code is uniform rather than idiomatic: every shared device is cloned, every
// result goes through JobOutput.
#![allow(clippy::unit_arg, clippy::clone_on_copy)]
#[allow(dead_code)]
mod keys {
    pub const TARGET: &str = "unix";
}
static RUNTIME_KEYS: &[mirage_runtime::KeySpec] = &[
    mirage_runtime::KeySpec {
        name: "hello",
        kind: mirage_runtime::KeyKind::String,
        default: Some("Hello World!"),
        doc: "The message to log.",
    },
    mirage_runtime::KeySpec {
        name: "logs",
        kind: mirage_runtime::KeyKind::Enum(&["error", "warn", "info", "debug", "trace"]),
        default: Some("info"),
        doc: "The log level.",
    },
];
mirage_unix::main!("hello", RUNTIME_KEYS, unikernel);
async fn unikernel(args: mirage_runtime::BootArgs) -> Result<(), mirage_runtime::Failure> {
    let default_console_0 = mirage_unix::Console::connect();
    let _logs_1 = mirage_devices::logs::Reporter::install(default_console_0, args.enum_("logs"));
    let default_time_2 = mirage_unix::Time::new();
    mirage_runtime::JobOutput::into_outcome(
        hello::start(default_time_2, args.string("hello")).await,
    )
}
