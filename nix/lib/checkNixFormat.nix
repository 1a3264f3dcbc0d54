# checkNixFormat :: { src, formatter } -> derivation
#
# Fails, listing them, when Nix files of `src` are not as `formatter` (mkFormatter) writes
# them; `nix fmt` fixes them. Only the .nix files are inputs, so other edits do not rerun it.
{ toolchain, internal }:
{ src, formatter }:
let
  nixFiles = builtins.path {
    path = src;
    name = "nix-files";
    filter = path: type:
      let base = baseNameOf path; in
      if type == "directory" then !(builtins.elem base [ ".git" "target" ".mirage-nix" ])
      else internal.hasSuffix ".nix" base;
  };
in
derivation ({
  name = "nix-format";
  inherit (toolchain) system;
  builder = toolchain.shell;
  PATH = "${formatter}/bin:${toolchain.path}";
  inherit nixFiles;
  args = [
    "-euc"
    ''
      cd "$nixFiles"
      mirage-nix-fmt --check . || { echo "run: nix fmt" >&2; exit 1; }
      echo formatted >"$out"
    ''
  ];
} // (toolchain.derivationAttrs or { }))
