# buildUnikernel :: { src, plan, mirage-nix, depsArtifacts, rustflags ? <the plan's>,
#                    keepTimesDirs ? [ ] } -> derivation
#
# One image from one plan (readPlan): renders the specialised crate with
# `mirage-nix render` inside the build (no import-from-derivation), builds it in the
# workspace slice the plan needs on top of the target's layers (`depsArtifacts`; the
# crates of `keepTimesDirs`, compiled there, are reused as they are), and installs
# the image: `bin/<name>` for unix (so `nix run` works), `<image.file>` otherwise, with the
# disk images its stores read beside it (diskCommand).
# Inputs: the plan's JSON alone, the sources of the crates it uses, the pruned lock, the
# dependency layer, the generator and the toolchain; nothing else.
{ internal, mkCargoDerivation, mkWorkspace, planCrateDirs, planRustflags, renderCommand, diskCommand }:
{ src, plan, mirage-nix, depsArtifacts, rustflags ? planRustflags plan, keepTimesDirs ? [ ] }:
let
  inherit (internal) shellEscape;
  ws = mkWorkspace { inherit src keepTimesDirs; dirs = planCrateDirs plan; };
  file = plan.image.file or plan.name;
  dest = if plan.target == "unix" then "bin/${file}" else file;
in
mkCargoDerivation
  {
    name = "${plan.name}-${plan.target}";
    crates = ws.layout;
    inherit (ws) rootManifest cargoLock;
    inherit (depsArtifacts) vendorDir;
    cargoArtifacts = depsArtifacts;
    inherit rustflags;
    extraPath = "${mirage-nix}/bin";
    buildPhase = renderCommand { inherit plan; };
    installPhase = ''
      exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$NIX_BUILD_TOP/cargo.json" | tail -n1)
      [ -n "$exe" ] || { echo "mirage-nix: cargo built no executable for ${plan.name}" >&2; exit 1; }
      mkdir -p "$out/$(dirname ${shellEscape dest})"
      cp "$exe" "$out/"${shellEscape dest}
    '' + diskCommand { inherit plan dest; };
  } // {
  inherit plan depsArtifacts;
  image = "${dest}";
}
