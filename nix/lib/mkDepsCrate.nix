# mkDepsCrate :: plan -> { dir; src; dummyFiles; }
#
# A stand-in for a plan's rendered crate in the dependency layer: a library with the same
# dependencies and features (from the plan's `crates`, nothing else: a key's value or the
# app's code never reach the dependency layer), so cargo resolves and compiles the
# third-party crates exactly as the real build will.
{ internal, planCrateDirs, pathCrates }:
{ src, plan }:
let
  inherit (builtins) genList length listToAttrs map;
  dir = ".mirage-nix/deps/${plan.name}-${plan.target}";
  up = builtins.concatStringsSep "/" (genList (_: "..") 3);
  dirs = planCrateDirs plan;
  dep = c: d:
    let pkg = (builtins.head (pathCrates { inherit src; dirs = [ d ]; })).name; in
    {
      name = c.name;
      value = { path = "${up}/${d}"; features = c.features or [ ]; }
        // (if pkg != c.name then { package = pkg; } else { })
        // (if c ? default_features then { default-features = c.default_features; } else { });
    };
  manifest = internal.toTOML {
    package = {
      name = "mirage-deps-${plan.name}-${plan.target}";
      version = "0.0.0";
      edition = "2021";
      publish = false;
    };
    lib.path = "lib.rs";
    dependencies = listToAttrs (genList (i: dep (builtins.elemAt plan.crates i) (builtins.elemAt dirs i)) (length dirs));
  };
in
{
  inherit dir;
  src = builtins.toFile "Cargo.toml" manifest;
  dummyFiles = [ "lib.rs" ];
}
