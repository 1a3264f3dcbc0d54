# A stand-in for the pinned nixpkgs, with only the attributes nix/toolchains/nixpkgs.nix
# uses, each a derivation that is never built. The nixpkgs toolchain source can then be
# evaluated on a machine without nixpkgs (this project's, which is offline), to show that
# every derivation it makes is free of host paths: generator/tests/nix.rs passes it with
# `--override-input nixpkgs-pin`. It proves nothing about nixpkgs itself; on a machine with the
# pinned input, `nix eval .#nixpkgs.<package>.drvPath` evaluates the real thing.
{
  outputs = { self }:
    let
      system = "x86_64-linux";
      # A package: a derivation whose builder does not exist, so it can be named in
      # other derivations but never realised.
      package = name: version: derivation
        {
          name = "${name}-${version}";
          inherit system;
          builder = "stub-nixpkgs-never-builds";
        } // { inherit version; };
      tools = [ "bash" "coreutils" "findutils" "diffutils" "gnugrep" "gnused" "gnutar" "gzip" "qemu" ];
    in
    {
      legacyPackages.${system} = builtins.listToAttrs (map (n: { name = n; value = package n "0"; }) tools) // {
        # The pin's rustc (nix/nixpkgs-pin.json; a test keeps them equal, and writes an
        # older one to see the toolchain's check fail).
        rustc = package "rustc" (builtins.replaceStrings [ "\n" ] [ "" ] (builtins.readFile ./rustc-version));
        cargo = package "cargo" "1.0.0";
        clippy = package "clippy" "1.0.0";
        rustfmt = package "rustfmt" "1.0.0";
        stdenv = {
          cc = package "gcc-wrapper" "1.0.0";
          hostPlatform = {
            inherit system;
            config = "x86_64-unknown-linux-gnu";
            rust.rustcTarget = "x86_64-unknown-linux-gnu";
          };
        };
        lib.makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
        # nixpkgs' fetchCrate { unpack = false; }: a fixed-output download of the .crate.
        fetchCrate = { crateName, version, sha256, ... }: derivation {
          name = "${crateName}-${version}.tar.gz";
          inherit system;
          builder = "stub-nixpkgs-never-builds";
          outputHashMode = "flat";
          outputHashAlgo = "sha256";
          outputHash = sha256;
        };
      };
    };
}
