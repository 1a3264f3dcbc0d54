# renderCommand :: { plan } -> string (shell)
#
# An image's build, run in the workspace laid out by mkCargoDerivation: `mirage-nix render`
# writes the plan's crate into <dir>/.mirage-nix/<target> (internal.renderedDir) from the
# plan's JSON alone (copied to <dir>/plans/<target>.json, where the generator expects
# it), its `[workspace]` table is removed, since it is a member of the build's one
# workspace (whose root carries the generator template's profile), and cargo builds it.
# Its layer wrote the plan's stand-in at the same place (layerCommand), so cargo compiles
# every crate at the same place with the same profile and reuses the layer's artifacts.
{ internal }:
{ plan }:
let
  inherit (internal) shellEscape;
  planPath = "${plan.dir}/plans/${plan.target}.json";
  appDir = internal.renderedDir plan;
in
''
  mkdir -p "$(dirname ${shellEscape planPath})"
  cp ${plan.planFile} ${shellEscape planPath}
  mirage-nix render ${shellEscape planPath} -o ${shellEscape appDir} --mirage-root "$PWD"${if plan.mirageDir or "" == "" then "" else "/" + shellEscape plan.mirageDir}
  # Drop the [workspace] table: its header and its keys, up to the next table.
  sed -i '/^\[workspace\]/,/^\[/{/^\[workspace\]/d;/^\[/!d}' ${shellEscape appDir}/Cargo.toml
  cargo build --release --offline --manifest-path ${shellEscape appDir}/Cargo.toml \
    --message-format=json-render-diagnostics >>"$NIX_BUILD_TOP/cargo.json"
''
