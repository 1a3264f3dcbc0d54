# mkFormatter :: { src } -> derivation
#
# The flake's `formatter` (`nix fmt`): nixpkgs-fmt, built from crates.io sources like
# everything else here (nix/tools/nixpkgs-fmt, a small command over the `nixpkgs-fmt`
# library, in a workspace of its own at nix/tools with its own Cargo.lock, seeded by
# scripts/setup-nix), so both toolchain sources format identically and offline.
# `mirage-nix-fmt PATH...` (the binary) formats in place; `--check` lists unformatted files and fails.
{ buildWorkspacePackage }:
{ src }:
buildWorkspacePackage {
  src = src + "/nix/tools";
  dir = "nixpkgs-fmt";
}
