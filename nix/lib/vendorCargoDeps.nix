# vendorCargoDeps :: { lock, name ? "vendor" } -> derivation
#
# A cargo "directory source" with every registry crate of `lock` (a parsed, usually
# pruned, Cargo.lock): a directory of links `<name>-<version>/`, one per crate, each to
# that crate unpacked on its own (unpackCrate: the .crate from `toolchain.fetchCrate`,
# keyed by its Cargo.lock checksum, plus the `.cargo-checksum.json` cargo expects). A
# crate is unpacked once per toolchain and shared by every lock that has it, the way
# cargo's registry cache is shared by every project: a new dependency unpacks one crate,
# not the whole set again.
{ toolchain }:
{ lock, name ? "vendor" }:
let
  inherit (builtins) concatStringsSep filter map;
  registry = filter (p: p.kind == "registry") lock.packages;
  git = filter (p: p.kind == "git") lock.packages;
  checksumOf = p: p.checksum or (throw ''
    mirage-nix: Cargo.lock has no checksum for ${p.id}; run `cargo update -p ${p.name}`.
  '');
  # A derivation running a shell script with the toolchain's tools.
  shellStep = attrs: derivation ({
    inherit (toolchain) system;
    builder = toolchain.shell;
    PATH = toolchain.path;
    MIRAGE_NIX_TOOLCHAIN = toolchain.identity;
  } // attrs // (toolchain.derivationAttrs or { }));
  unpackCrate = p: shellStep {
    name = "${p.name}-${p.version}-src";
    crate = toolchain.fetchCrate { inherit (p) name version; checksum = checksumOf p; };
    checksum = checksumOf p;
    args = [
      "-euc"
      ''
        mkdir -p "$out"
        tar -xzf "$crate" -C "$out" --strip-components=1 --no-same-owner
        printf '{"files":{},"package":"%s"}' "$checksum" >"$out/.cargo-checksum.json"
      ''
    ];
  };
  links = concatStringsSep "\n" (map (p: "${p.name}-${p.version} ${unpackCrate p}") registry);
in
if git != [ ] then
  throw ''
    mirage-nix: Cargo.lock has git dependencies (${concatStringsSep ", " (map (p: p.id) git)}),
    which cannot be vendored offline. Depend on a registry release instead, or vendor the
    crate into the workspace as a path dependency.
  ''
else
  shellStep {
    inherit name links;
    passAsFile = [ "links" ];
    args = [
      "-euc"
      ''
        mkdir -p "$out"
        while read -r dir src || [ -n "''${dir:-}" ]; do
          [ -n "$dir" ] || continue
          ln -s "$src" "$out/$dir"
        done <"$linksPath"
      ''
    ];
  }
