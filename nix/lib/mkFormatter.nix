# mkFormatter :: { } -> derivation
#
# The flake's `formatter` (`nix fmt`): nixpkgs-fmt. The nixpkgs toolchain source provides
# it; offline, this is a wrapper that runs the one on PATH and says how to get it.
{ toolchain }:
{ }:
if toolchain ? formatter then toolchain.formatter
else derivation {
  name = "nixpkgs-fmt-wrapper";
  inherit (toolchain) system;
  builder = toolchain.shell;
  script = ''
    #!/bin/sh
    if command -v nixpkgs-fmt >/dev/null 2>&1; then exec nixpkgs-fmt "$@"; fi
    echo "mirage-nix: no nixpkgs-fmt on PATH: install it with 'cargo install nixpkgs-fmt'," >&2
    echo "or format with the nixpkgs toolchain source." >&2
    exit 1
  '';
  PATH = toolchain.path;
  args = [ "-euc" "mkdir -p $out/bin; printf '%s' \"$script\" >$out/bin/nixpkgs-fmt; chmod +x $out/bin/nixpkgs-fmt" ];
}
