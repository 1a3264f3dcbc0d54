# layerCommand :: { plans, each ? false } -> string (shell)
#
# A layer's build: the stand-ins of `plans` (mkStandInManifest), each written where its
# plan's crate is rendered, all members of the build's workspace (buildDepsOnly's
# `members`), then built. By default with a single `cargo build` naming them all, so cargo
# compiles the third-party crates of all the plans in one graph, in parallel, each once
# (each plan's image compiles its third-party crates with the features its own stand-in
# asks for; where two plans want one crate with different features, cargo unifies them
# here and that plan's image compiles the crate again: slower, never wrong). With `each`,
# one `cargo build` per plan, so every plan gets mirage-nix's crates compiled with exactly
# its own features (the workspace layer, which images reuse as they are).
{ internal, mkStandInManifest }:
{ plans, each ? false }:
let
  inherit (builtins) concatStringsSep map toFile;
  inherit (internal) shellEscape;
  write = plan:
    let dir = internal.renderedDir plan; in
    ''
      mkdir -p ${shellEscape dir}/src
      cp ${toFile "Cargo.toml" (mkStandInManifest { inherit plan; })} ${shellEscape dir}/Cargo.toml
      cp ${toFile "lib.rs" (internal.standInLib plan)} ${shellEscape dir}/src/lib.rs
    '';
  build = ps: ''
    cargo build --release --offline ${concatStringsSep " " (map (p: "-p " + shellEscape "${p.name}-${p.target}-deps") ps)} \
      --message-format=json-render-diagnostics >>"$NIX_BUILD_TOP/cargo.json"
  '';
in
concatStringsSep "" (map write plans)
  + (if each then concatStringsSep "" (map (p: build [ p ]) plans) else build plans)
