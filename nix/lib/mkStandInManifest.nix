# mkStandInManifest :: { plan, at ? <the rendered crate's folder> } -> string
#
# The Cargo.toml of a plan's stand-in in the dependency layer: the same dependencies and
# features as the crate `mirage-nix render` writes for the plan. Written here rather than
# by the generator so the layer depends on the plan's crates only: a change to the
# generator's code does not rebuild third-party crates. `at` is the folder the stand-in is
# written to (path dependencies are relative to it). Like the rendered crate in an image
# build, it is a member of the build's one workspace, whose root holds the [profile] of
# generator/profile.toml, which render reads too (mkWorkspace's `profile`): one workspace
# root for every crate keeps cargo's hashes of path crates relative to it, so they do not
# depend on where the build runs.
{ internal, planCrateDirs }:
{ plan, at ? internal.renderedDir plan }:
let
  inherit (builtins) concatStringsSep elemAt filter genList isString length split;
  inherit (internal) tomlValue;
  appDepth = length (filter (p: isString p && p != "") (split "/" at));
  up = concatStringsSep "/" (genList (_: "..") appDepth);
  dirs = planCrateDirs plan;
  # A stand-in is a library: its dependencies compile exactly as for the image (cargo
  # reuses them there), and nothing is linked (no LTO of an empty program, and no link
  # flags naming files the layer does not have).
  target = "[lib]\npath = \"src/lib.rs\"";
  dep = i:
    let c = elemAt plan.crates i; in
    "${c.name} = { path = ${tomlValue "${up}/${elemAt dirs i}"}, features = ${tomlValue (c.features or [ ])} }";
in
''
  # Stand-in for the crate rendered from ${plan.dir}/plans/${plan.target}.json (mirage-nix).
  [package]
  name = ${tomlValue "${plan.name}-${plan.target}-deps"}
  version = "0.0.0"
  edition = "2021"
  publish = false

  ${target}

  [dependencies]
  ${concatStringsSep "\n" (genList dep (length dirs))}
''
