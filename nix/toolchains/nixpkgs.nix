# The nixpkgs toolchain source: rustc, cargo, the C toolchain and the shell tools from
# the flake's pinned nixpkgs input, crates downloaded by nixpkgs' own fetchCrate. Fully
# hermetic: nothing of the host is used, so it needs no sandbox paths and works on
# Hydra and on any networked machine. Same interface as ./host.nix.
{ pkgs }:
let
  inherit (pkgs) lib;
  tools = [
    pkgs.rustc
    pkgs.cargo
    pkgs.clippy
    pkgs.rustfmt
    pkgs.stdenv.cc
    pkgs.bash
    pkgs.coreutils
    pkgs.findutils
    pkgs.diffutils
    pkgs.gnugrep
    pkgs.gnused
    pkgs.gnutar
    pkgs.gzip
  ];
in
{
  name = "nixpkgs";
  inherit (pkgs.stdenv.hostPlatform) system;
  rust = pkgs.rustc;
  rustTarget = pkgs.stdenv.hostPlatform.rust.rustcTarget or pkgs.stdenv.hostPlatform.config;
  shell = "${pkgs.bash}/bin/bash";
  path = lib.makeBinPath tools;
  # The store paths in `path` already identify every tool; the versions are for humans.
  identity = "nixpkgs rustc ${pkgs.rustc.version} cargo ${pkgs.cargo.version} cc ${pkgs.stdenv.cc.name}";
  cc = pkgs.stdenv.cc.name;
  # The emulator boot checks run bare-metal images under.
  qemu = "${pkgs.qemu}/bin/qemu-system-x86_64";

  fetchCrate = { name, version, checksum }: pkgs.fetchCrate {
    crateName = name;
    inherit version;
    unpack = false;
    sha256 = checksum;
  };

  derivationAttrs = { };
}
