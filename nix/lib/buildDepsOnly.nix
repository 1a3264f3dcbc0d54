# buildDepsOnly :: { name, src, dirs, cargoCommands, extraCrates ? [ ], realDirs ? [ ],
#                   suffix ? "deps", cargoArtifacts ? null, ... } -> derivation
#
# The dependency layer (crane's buildDepsOnly): the workspace slice `dirs` with every
# crate's code replaced by empty programs, built with `cargoCommands`, so the output's
# `target/` holds every third-party crate compiled once. It depends only on the crates'
# manifests, the pruned Cargo.lock, the vendored crates and the toolchain: editing code
# never rebuilds it. Later builds take it as `cargoArtifacts`; its `vendorDir` attribute
# is the vendored-crate directory they must use too (the same path keeps cargo's
# fingerprints valid). With `realDirs` and the first layer as `cargoArtifacts` it makes
# the second, the workspace layer: those crates' real code compiled on top of it.
{ mkCargoDerivation, mkWorkspace, vendorCargoDeps }:
{ name, src, dirs, cargoCommands, extraCrates ? [ ], realDirs ? [ ], suffix ? "deps", members ? [ ], profile ? null, ... }@args:
let
  ws = mkWorkspace { inherit src dirs extraCrates realDirs profile; dummy = true; extraMembers = members; };
  vendorDir = vendorCargoDeps { inherit (ws) lock; name = "${name}-vendor"; };
  drv = mkCargoDerivation (removeAttrs args [ "src" "dirs" "cargoCommands" "extraCrates" "realDirs" "suffix" "members" "profile" ] // {
    name = "${name}-${suffix}";
    crates = ws.layout;
    inherit (ws) rootManifest cargoLock;
    inherit vendorDir;
    buildPhase = builtins.concatStringsSep "\n" cargoCommands;
    installPhase = ''
      rm -f "$CARGO_TARGET_DIR"/.rustc_info.json "$CARGO_TARGET_DIR"/*/.cargo-lock \
        "$CARGO_TARGET_DIR"/*/*/.cargo-lock
      mkdir -p "$out"
      cp -a "$CARGO_TARGET_DIR" "$out/target"
    '';
  });
in
drv // { inherit vendorDir; workspace = ws; }
