//! Images built from plans the way `nix build` builds them: the generator renders the plan's
//! crate, then `cargo build --release` compiles it with only the rustc flags the plan records
//! (the crate's `.cargo/config.toml`; `RUSTFLAGS` and friends are removed), once per process.
//!
//! A [`Builder`] owns a scratch folder: rendered crates under `crates/`, one cargo target
//! folder per target under `target-<target>/` (the targets' flags differ, so sharing one would
//! rebuild everything each time), and the built images under `images/<key>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use mirage_nix::plan::Plan;
use mirage_nix::render::{self, Roots};

use crate::tree::root;

/// The host triple, which Solo5 builds pass to cargo as `--target` (as Nix does) so that the
/// plan's image flags reach the image but not build scripts.
pub const HOST: &str = "x86_64-unknown-linux-gnu";

/// A built image: its file and the plan it was built from.
#[derive(Clone, Debug)]
pub struct Image {
    /// The image file, a copy that later builds do not overwrite.
    pub path: PathBuf,
    /// The plan it was built from.
    pub plan: Plan,
}

/// Where and how a harness builds images.
#[derive(Clone, Debug)]
pub struct Builder {
    work: PathBuf,
    host_target: bool,
}

impl Builder {
    /// `Builder::new(work)` builds in the folder `work` (e.g. [`crate::tree::scratch`]'s).
    pub fn new(work: impl Into<PathBuf>) -> Builder {
        Builder {
            work: work.into(),
            host_target: false,
        }
    }

    /// `host_target()` passes `--target` [`HOST`] to cargo, as the Solo5 targets need.
    pub fn host_target(mut self) -> Builder {
        self.host_target = true;
        self
    }

    /// `committed(dir, target)` is the image of the committed plan `DIR/plans/TARGET.json`,
    /// `dir` relative to the tree (`examples/hello`, `runtime/xen/tests/fixtures/crash`).
    pub fn committed(&self, dir: &str, target: &str) -> Image {
        let key = format!("{dir}/{target}");
        self.cached(&key, || {
            let path = root()
                .join(dir)
                .join("plans")
                .join(format!("{target}.json"));
            let plan = mirage_nix::ops::read_plan(&path)
                .unwrap_or_else(|e| panic!("cannot read {}:\n{e}", path.display()));
            (plan, root().join(dir))
        })
    }

    /// `configured(dir, target, keys)` is the image of the plan that
    /// `mirage-nix query plan -t TARGET KEYS... DIR` gives, keys written `--NAME=VALUE`; the
    /// committed plan is left alone.
    pub fn configured(&self, dir: &str, target: &str, keys: &[&str]) -> Image {
        let variant = keys.join("_").replace(['-', '=', '/'], "");
        let key = format!("{dir}-{variant}/{target}");
        self.cached(&key, || {
            let unikernel = root().join(dir);
            let pairs: Vec<(&str, &str)> = keys
                .iter()
                .map(|k| {
                    k.strip_prefix("--")
                        .and_then(|k| k.split_once('='))
                        .unwrap_or_else(|| panic!("a key is written --NAME=VALUE, not {k}"))
                })
                .collect();
            let uk = mirage_nix::Unikernel::load(&unikernel)
                .unwrap_or_else(|e| panic!("cannot load {dir}:\n{e}"));
            let plan = uk
                .context(target, pairs)
                .and_then(|ctx| uk.plan(&ctx))
                .unwrap_or_else(|e| panic!("cannot plan {dir} for {target} with {keys:?}:\n{e}"));
            (plan, unikernel)
        })
    }

    /// `cached(key, plan)` builds the image of the plan `plan()` gives, once per process and
    /// `key`. Builds run one at a time (the machine's cores are cargo's); an image already
    /// built is handed out at once, even while another builds.
    fn cached(&self, key: &str, plan: impl FnOnce() -> (Plan, PathBuf)) -> Image {
        type Slot = Arc<OnceLock<Image>>;
        static SLOTS: Mutex<Option<HashMap<(PathBuf, String), Slot>>> = Mutex::new(None);
        static BUILDING: Mutex<()> = Mutex::new(());
        let slot = {
            let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
            let slots = slots.get_or_insert_with(HashMap::new);
            slots
                .entry((self.work.clone(), key.to_string()))
                .or_default()
                .clone()
        };
        slot.get_or_init(|| {
            let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
            let (plan, unikernel) = plan();
            let path = self.build(&plan, &unikernel, key);
            Image { path, plan }
        })
        .clone()
    }

    /// `build(plan, unikernel, key)` renders and compiles the plan; it returns the image's path.
    fn build(&self, plan: &Plan, unikernel: &Path, key: &str) -> PathBuf {
        let slug = key.replace('/', "_");
        let krate = self.work.join("crates").join(&slug);
        let roots = Roots {
            mirage: root(),
            unikernel: unikernel.to_path_buf(),
        };
        let files = render::crate_files(plan, &roots, &krate)
            .unwrap_or_else(|e| panic!("cannot render {key}:\n{e}"));
        render::write(&files, &krate)
            .unwrap_or_else(|e| panic!("cannot write {key}'s crate:\n{e}"));
        let cargo_target = self.work.join(format!("target-{}", plan.target));
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .current_dir(&krate)
            .args(["build", "--release", "--quiet"])
            .env("CARGO_TARGET_DIR", &cargo_target)
            // Only the crate's .cargo/config.toml (the plan's flags) may set rustc flags.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS");
        let mut out = cargo_target.clone();
        if self.host_target {
            cargo.args(["--target", HOST]);
            out.push(HOST);
        }
        let status = cargo
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
        assert!(status.success(), "cargo build of {key} failed");
        let image = self.work.join("images").join(&slug).join(&plan.image.file);
        std::fs::create_dir_all(image.parent().unwrap()).unwrap();
        // Copy, then rename: the previous image may still be running.
        let fresh = image.with_extension("new");
        std::fs::copy(out.join("release").join(&plan.name), &fresh)
            .unwrap_or_else(|e| panic!("cannot copy {key}'s image: {e}"));
        std::fs::rename(&fresh, &image).unwrap();
        image
    }
}
