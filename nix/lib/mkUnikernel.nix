# mkUnikernel :: { src, mirage, mirage-nix, name ? <from unikernel.toml>, boot ? { },
#                 layers ? "image" }
#                -> { images; depsLayers; checks; apps; plans; unavailable; }
#
# A downstream flake's unikernel: `src` is its own folder (unikernel.toml, Cargo.toml,
# src/, plans/), `mirage` the mirage-nix tree. The builds lay the two out side by side,
# `mirage-nix/` and `<name>/`, so the unikernel's Cargo.toml reaches mirage-nix crates as
# `../mirage-nix/<crate>`, the same as in a checkout next to a mirage-nix checkout.
# Packages are "<name>-<target>" for every committed plans/<target>.json (what
# `mirage-nix build` asks for). mkUnikernelPackages does the rest, with both roots; with
# one plan per target, one layer per image holds what the target's layers would, in one
# cargo run instead of two (mirage-nix's crates are a pinned input here, not edited).
{ mkUnikernelPackages }:
{ src
, mirage
, mirage-nix
, name ? (builtins.fromTOML (builtins.readFile (src + "/unikernel.toml"))).unikernel.name or (throw ''
    mirage-nix: ${toString src}/unikernel.toml has no [unikernel] name (or no unikernel.toml).
    Create it (`nix flake init -t <mirage-nix>` writes one), or pass `name`.
  '')
, boot ? { }
, layers ? "image"
}:
mkUnikernelPackages {
  src = {
    mirageNixTree = true;
    root = "mirage-nix";
    mounts = { "mirage-nix" = mirage; ${name} = src; };
  };
  mirageDir = "mirage-nix";
  unikernelDirs = [ name ];
  inherit mirage-nix boot layers;
}
