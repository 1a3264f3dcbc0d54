# checkPlansFresh :: { src, mirage-nix, examplesDir ? "examples", extraDirs ? [ ] } -> derivation
#
# `mirage-nix configure --check` on every example that has plans: fails, naming the
# plans and the command that regenerates them, when a committed plan differs from what
# its unikernel.toml gives with this revision of the generator.
{ toolchain, internal, findPlans }:
{ src, mirage-nix, examplesDir ? "examples", extraDirs ? [ ] }:
let
  dirs = internal.unique (map (p: p.dir) (builtins.attrValues (findPlans { inherit src examplesDir; })) ++ extraDirs);
in
derivation ({
  name = "plans-fresh";
  inherit (toolchain) system;
  builder = toolchain.shell;
  PATH = "${mirage-nix}/bin:${toolchain.path}";
  MIRAGE_NIX_TOOLCHAIN = toolchain.identity;
  MIRAGE_NIX_ROOT = src;
  dirs = builtins.concatStringsSep " " dirs;
  inherit src;
  args = [
    "-euc"
    ''
      cd "$src"
      failed=""
      for d in $dirs; do
        mirage-nix configure --check "$d" || failed="$failed $d"
      done
      if [ -n "$failed" ]; then
        echo "mirage-nix: stale plans in:$failed" >&2
        echo "regenerate them: for d in$failed; do mirage-nix configure --all-targets \$d; done" >&2
        exit 1
      fi
      echo "$dirs" >"$out"
    ''
  ];
} // (toolchain.derivationAttrs or { }))
