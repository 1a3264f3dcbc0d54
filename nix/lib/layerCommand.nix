# layerCommand :: { plans, template } -> string (shell)
#
# The dependency layer's build: the stand-ins of every plan of a target (mkStandInManifest)
# as members of one workspace, `.mirage-nix-layer/` (holding the generator's [profile]),
# built by a single `cargo build --workspace`, so cargo compiles the third-party crates
# of all the plans in one graph, in parallel, each once. Each plan's image compiles its
# third-party crates with the features its own stand-in asks for; where two plans want
# one crate with different features, cargo unifies them here and that plan's image
# compiles the crate again (slower, never wrong).
{ internal, mkStandInManifest }:
{ plans, template }:
let
  inherit (builtins) concatStringsSep map toFile;
  inherit (internal) shellEscape tomlValue;
  root = ".mirage-nix-layer";
  member = plan: "${plan.name}-${plan.target}";
  write = plan:
    let
      dir = "${root}/${member plan}";
      manifest = mkStandInManifest { inherit plan template; at = dir; member = true; };
    in
    ''
      mkdir -p ${shellEscape dir}/src
      cp ${toFile "Cargo.toml" manifest} ${shellEscape dir}/Cargo.toml
      cp ${toFile "lib.rs" (internal.standInLib plan)} ${shellEscape dir}/src/lib.rs
    '';
  rootManifest = ''
    # The stand-ins of every plan of the target (mirage-nix's dependency layer).
    [workspace]
    resolver = "2"
    members = ${tomlValue (map member plans)}

    ${internal.profileSections template}
  '';
in
concatStringsSep "" (map write plans) + ''
  cp ${toFile "Cargo.toml" rootManifest} ${root}/Cargo.toml
  cp Cargo.lock ${root}/Cargo.lock
  cargo build --release --offline --workspace --manifest-path ${root}/Cargo.toml \
    --message-format=json-render-diagnostics >>"$NIX_BUILD_TOP/cargo.json"
''
