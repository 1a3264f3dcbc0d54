# buildUnikernel :: { src, plan, mirage-nix, depsArtifacts } -> derivation
#
# One image from one plan (readPlan): renders the specialised crate with
# `mirage-nix render` inside the build (no import-from-derivation), builds it in the
# workspace slice the plan needs on top of the target's dependency layer, and installs
# the image: `bin/<name>` for unix (so `nix run` works), `<image.file>` otherwise.
# Inputs: the plan's JSON alone, the sources of the crates it uses, the pruned lock, the
# dependency layer, the generator and the toolchain; nothing else.
{ internal, mkCargoDerivation, mkWorkspace, planCrateDirs }:
{ src, plan, mirage-nix, depsArtifacts, rustflags ? "" }:
let
  inherit (internal) shellEscape;
  appDir = "${plan.dir}/.mirage-nix/${plan.target}";
  planPath = "${plan.dir}/plans/${plan.target}.json";
  ws = mkWorkspace { inherit src; dirs = planCrateDirs plan; extraMembers = [ appDir ]; };
  file = plan.image.file or plan.name;
  dest = if plan.target == "unix" then "bin/${file}" else file;
in
mkCargoDerivation {
  name = "${plan.name}-${plan.target}";
  crates = ws.layout;
  inherit (ws) rootManifest cargoLock;
  inherit (depsArtifacts) vendorDir;
  cargoArtifacts = depsArtifacts;
  inherit rustflags;
  planFile = plan.planFile;
  PATH_PREFIX = "${mirage-nix}/bin";
  buildPhase = ''
    mkdir -p "$(dirname ${shellEscape planPath})"
    cp "$planFile" ${shellEscape planPath}
    "$PATH_PREFIX/mirage-nix" render ${shellEscape planPath} -o ${shellEscape appDir}
    # The rendered crate is a member of this workspace: one [profile], shared with the
    # dependency layer, so cargo's fingerprints of the third-party crates match.
    sed -i '/^\[workspace\]/,/^\[/{/^\[workspace\]/d;/^\[/!d}' ${shellEscape appDir}/Cargo.toml
    cargo build --release --offline --manifest-path ${shellEscape appDir}/Cargo.toml \
      --message-format=json-render-diagnostics >"$NIX_BUILD_TOP/cargo.json"
  '';
  installPhase = ''
    exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$NIX_BUILD_TOP/cargo.json" | tail -n1)
    [ -n "$exe" ] || { echo "mirage-nix: cargo built no executable for ${plan.name}" >&2; exit 1; }
    mkdir -p "$out/$(dirname ${shellEscape dest})"
    cp "$exe" "$out/"${shellEscape dest}
  '';
} // {
  inherit plan depsArtifacts;
  image = "${dest}";
}
