# renderCommand :: { plan } -> string (shell)
#
# An image's build, run in the workspace laid out by mkCargoDerivation: `mirage-nix render`
# writes the plan's crate into <dir>/.mirage-nix/<target> (internal.renderedDir) from the
# plan's JSON alone (copied to <dir>/plans/<target>.json, where the generator expects
# it), its `[workspace]` and `[profile.*]` tables are removed, since it is a member of the
# build's one workspace (whose root carries the generator template's profile), and cargo
# builds it.
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
  # Drop the [workspace] and [profile.*] tables (headers and keys, up to the next table):
  # the workspace root holds them.
  skip=0
  while IFS= read -r line; do
    case "$line" in
      '[workspace]' | '[profile.'*) skip=1 ;;
      '['*) skip=0 ;;
    esac
    [ "$skip" = 1 ] || printf '%s\n' "$line"
  done <${shellEscape appDir}/Cargo.toml >"$NIX_BUILD_TOP/rendered.toml"
  mv "$NIX_BUILD_TOP/rendered.toml" ${shellEscape appDir}/Cargo.toml
  cargo build --release --offline --manifest-path ${shellEscape appDir}/Cargo.toml \
    --message-format=json-render-diagnostics >>"$NIX_BUILD_TOP/cargo.json"
''
