# vendorCargoDeps :: { lock, name ? "vendor" } -> derivation
#
# A cargo "directory source" with every registry crate of `lock` (a parsed, usually
# pruned, Cargo.lock): each crate unpacked into `<name>-<version>/` next to the
# `.cargo-checksum.json` cargo expects. The .crate files come from `toolchain.fetchCrate`,
# one fixed-output path per crate keyed by its Cargo.lock checksum (the host source
# finds them seeded by scripts/setup-nix; the nixpkgs source downloads them).
{ toolchain, internal }:
{ lock, name ? "vendor" }:
let
  inherit (builtins) concatStringsSep filter map;
  registry = filter (p: p.kind == "registry") lock.packages;
  git = filter (p: p.kind == "git") lock.packages;
  crateFile = p: toolchain.fetchCrate {
    inherit (p) name version;
    checksum = p.checksum or (throw ''
      mirage-nix: Cargo.lock has no checksum for ${p.id}; run `cargo update -p ${p.name}`.
    '');
  };
  lines = concatStringsSep "\n"
    (map (p: "${p.name}-${p.version} ${p.checksum} ${crateFile p}") registry);
in
if git != [ ] then
  throw ''
    mirage-nix: Cargo.lock has git dependencies (${concatStringsSep ", " (map (p: p.id) git)}),
    which cannot be vendored offline. Depend on a registry release instead, or vendor the
    crate into the workspace as a path dependency.
  ''
else
  derivation ({
    inherit name;
    inherit (toolchain) system;
    builder = toolchain.shell;
    PATH = toolchain.path;
    MIRAGE_NIX_TOOLCHAIN = toolchain.identity;
    crates = lines;
    passAsFile = [ "crates" ];
    args = [
      "-euc"
      ''
        mkdir -p "$out"
        while read -r dir sum file || [ -n "''${dir:-}" ]; do
          [ -n "$dir" ] || continue
          mkdir "$out/$dir"
          tar -xzf "$file" -C "$out/$dir" --strip-components=1 --no-same-owner
          printf '{"files":{},"package":"%s"}' "$sum" >"$out/$dir/.cargo-checksum.json"
        done <"$cratesPath"
      ''
    ];
  } // (toolchain.derivationAttrs or { }))
