# The flake input `nixpkgs` of mirage-nix: only what `nix develop` asks of it.
#
# `nix develop` takes the interactive bash it starts from the flake's input called `nixpkgs`
# (its `legacyPackages.<system>.bashInteractive`), whatever the flake itself uses. Were that
# input the pinned nixpkgs (now `nixpkgs-pin`), an offline machine would try to fetch it for
# every `nix develop` and print the network error. This local flake answers instead, with no
# fetch and no build: `bin/bash` starts the bash on the caller's PATH, as the host toolchain
# source's shell is the host's.
#
# The lock records this folder's hash: after editing it, run
# `nix flake lock --update-input nixpkgs` in the repository's root.
{
  description = "mirage-nix's nix develop shell: the host's bash, fetched from nowhere";

  outputs = { self }:
    let
      # A profile of one package, made by Nix's built-in builder: no shell, no tools.
      hostBash = derivation {
        name = "host-bash";
        system = "builtin";
        builder = "builtin:buildenv";
        manifest = "none";
        derivations = [ "true" 5 1 "${./shell}" ];
      };
    in
    {
      legacyPackages.x86_64-linux.bashInteractive = hostBash;
    };
}
