# renderCommand :: { plan, standIn ? null } -> string (shell)
#
# The shell steps shared by a plan's image and its target's dependency layer, run in the
# workspace laid out by mkCargoDerivation: write the plan's crate into
# <dir>/.mirage-nix/<target> (a workspace of its own, with its own [profile]), give it the
# pruned Cargo.lock, and build it with cargo. For the image the crate is what
# `mirage-nix render` makes of the plan (the plan's JSON alone, copied to
# <dir>/plans/<target>.json where the generator expects it); for the dependency layer it
# is `standIn` (mkStandInManifest) with an empty lib.rs.
# Both compile every third-party crate at the same place with the same profile, so the
# image reuses the layer's artifacts.
{ internal }:
{ plan, standIn ? null }:
let
  inherit (internal) shellEscape;
  planPath = "${plan.dir}/plans/${plan.target}.json";
  appDir = "${plan.dir}/.mirage-nix/${plan.target}";
  make =
    if standIn == null then ''
      mkdir -p "$(dirname ${shellEscape planPath})"
      cp ${plan.planFile} ${shellEscape planPath}
      mirage-nix render ${shellEscape planPath} -o ${shellEscape appDir} --mirage-root "$PWD"${if plan.mirageDir or "" == "" then "" else "/" + shellEscape plan.mirageDir}
    ''
    else ''
      mkdir -p ${shellEscape appDir}/src
      cp ${builtins.toFile "Cargo.toml" standIn} ${shellEscape appDir}/Cargo.toml
      cp ${builtins.toFile "lib.rs" (internal.standInLib plan)} ${shellEscape appDir}/src/lib.rs
    '';
in
make + ''
  cp Cargo.lock ${shellEscape appDir}/Cargo.lock
  cargo build --release --offline --manifest-path ${shellEscape appDir}/Cargo.toml \
    --message-format=json-render-diagnostics >>"$NIX_BUILD_TOP/cargo.json"
''
