# mkCargoDerivation :: { name, crates, rootManifest, cargoLock, vendorDir, buildPhase,
#                        installPhase, cargoArtifacts ? null, rustflags ? [ ], ... }
#                     -> derivation
#
# The one core every build of this library lowers to (crane's mkCargoDerivation, minus
# stdenv): a plain `derivation` whose builder is the toolchain's bash, running
# mkCargoDerivation.sh, which
#   1. lays out a cargo workspace in $NIX_BUILD_TOP/src from `crates` (each
#      `{ dir; src; dummyFiles ? [ ]; keepTimes ? false; }`, `src` a store path from
#      cleanCrateSource, the `dummyFiles` written as empty programs; a crate with
#      `keepTimes` keeps the store's timestamps, so cargo trusts the artifacts of it that
#      `cargoArtifacts` holds, the others get the build's time and are compiled),
#      `rootManifest` and `cargoLock` (texts);
#   2. points cargo at `vendorDir` (vendorCargoDeps) through $CARGO_HOME/config.toml,
#      offline;
#   3. restores `cargoArtifacts` (a previous derivation's `target/`, e.g. buildDepsOnly's)
#      keeping its timestamps, so cargo reuses every unit whose inputs did not change;
#   4. runs `buildPhase` then `installPhase` (shell text) in the workspace.
# `rustflags` (planRustflags) apply to every crate built for the target, through
# CARGO_ENCODED_RUSTFLAGS (not to build scripts: CARGO_BUILD_TARGET is set).
# Every derivation gets the toolchain's PATH and identity (MIRAGE_NIX_TOOLCHAIN), so a
# toolchain change invalidates all of them. Outputs do not depend on where the build ran
# (/build in the sandbox, $TMPDIR/nix-build-* outside it): every crate of a build is a
# member of one workspace rooted in it (cargo hashes path crates relative to that root),
# cargo sees the build directory in no flag, and a rustc wrapper remaps it to /build.
{ toolchain, internal }:
{ name
, crates
, rootManifest
, cargoLock
, vendorDir
, buildPhase
, installPhase
, cargoArtifacts ? null
, rustflags ? [ ]
, ...
}@args:
let
  inherit (builtins) concatStringsSep map removeAttrs;
  crateLines = concatStringsSep "\n" (map
    (c: "${c.dir} ${if c.keepTimes or false then "keep" else "fresh"} ${c.src} ${concatStringsSep "," (c.dummyFiles or [ ])}")
    crates);
in
derivation ((removeAttrs args [ "crates" "cargoArtifacts" "rustflags" ]) // {
  inherit name buildPhase installPhase rootManifest cargoLock vendorDir;
  inherit (toolchain) system;
  builder = toolchain.shell;
  args = [ "-e" ./mkCargoDerivation.sh ];
  outputs = [ "out" ];
  PATH = toolchain.path;
  MIRAGE_NIX_TOOLCHAIN = toolchain.identity;
  CARGO_BUILD_TARGET = toolchain.rustTarget;
  cargoArtifacts = if cargoArtifacts == null then "" else cargoArtifacts;
  crateLayout = crateLines;
  extraRustflags = concatStringsSep "\n" rustflags;
  passAsFile = [ "rootManifest" "cargoLock" "crateLayout" ];
} // (toolchain.derivationAttrs or { }))
