# buildWorkspacePackage :: { src, dir, pname ? <package name>, depsArtifacts ? <built> }
#                          -> derivation
#
# A binary crate of the repository's own workspace (the generator, `mirage-nix`), built
# like everything else: buildDepsOnly for its third-party crates, then one derivation for
# its own code. Installs the executables cargo reports (read from its JSON messages).
{ internal, mkCargoDerivation, mkWorkspace, buildDepsOnly }:
{ src
, dir
, pname ? null
, depsArtifacts ? null
, cargoBuildFlags ? "--release"
}:
let
  ws = mkWorkspace { inherit src; dirs = [ dir ]; };
  package = if pname != null then pname else (builtins.head
    (builtins.filter (c: c.dir == internal.normalizePath dir) ws.crates)).name;
  deps = if depsArtifacts != null then depsArtifacts else
  buildDepsOnly {
    name = package;
    inherit src;
    dirs = [ dir ];
    cargoCommands = [ "cargo build ${cargoBuildFlags} --offline --locked -p ${package}" ];
  };
in
mkCargoDerivation
  {
    name = package;
    crates = ws.layout;
    inherit (ws) rootManifest cargoLock;
    inherit (deps) vendorDir;
    cargoArtifacts = deps;
    buildPhase = ''
      cargo build ${cargoBuildFlags} --offline --locked -p ${package} \
        --message-format=json-render-diagnostics >"$NIX_BUILD_TOP/cargo.json"
    '';
    installPhase = ''
      mkdir -p "$out/bin"
      sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$NIX_BUILD_TOP/cargo.json" |
        while read -r exe; do cp "$exe" "$out/bin/"; done
    '';
  } // { depsArtifacts = deps; }
