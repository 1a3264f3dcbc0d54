# The nixpkgs toolchain source: rustc, cargo, the C toolchain and the shell tools from
# the flake's pinned nixpkgs input, crates downloaded by nixpkgs' own fetchCrate. Fully
# hermetic: nothing of the host is used, so it needs no sandbox paths and works on
# Hydra and on any networked machine. Same interface as ./host.nix.
# `rustVersion` is the workspace's rust-version: a pinned rustc older than that cannot
# build Cargo.lock, so every derivation of this source fails to evaluate, naming the fix.
{ pkgs, rustVersion ? null }:
let
  inherit (pkgs) lib;
  tooOld = rustVersion != null && builtins.compareVersions pkgs.rustc.version rustVersion < 0;
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
  toolchain = {
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
  };
in
if tooOld then
  throw ''
    mirage-nix: the pinned nixpkgs has rustc ${pkgs.rustc.version}, but the workspace needs
    rust-version ${rustVersion} (Cargo.toml: the highest rust-version of Cargo.lock's crates).
    Move the pin to a nixpkgs whose rustc is at least ${rustVersion}: `nix flake lock
    --override-input nixpkgs-pin github:NixOS/nixpkgs/<rev>` (or `nix flake lock --update-input
    nixpkgs-pin` after changing the branch in flake.nix), then record its rev, narHash and rustc in
    nix/nixpkgs-pin.json (docs/nix.md, "The nixpkgs pin"). Or resolve Cargo.lock to
    rustc ${pkgs.rustc.version}: set rust-version = "${pkgs.rustc.version}" in Cargo.toml and run
    `CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo update`.
  ''
else toolchain
