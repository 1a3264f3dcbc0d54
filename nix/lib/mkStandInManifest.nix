# mkStandInManifest :: { plan, template, at ? <the rendered crate's folder>, member ? false }
#                      -> string
#
# The Cargo.toml of a plan's stand-in in the dependency layer: the same dependencies,
# features and [profile] as the crate `mirage-nix render` writes for the plan, with the
# profile sections taken from the generator's own template (`template`, the text of
# generator/profile.toml, which render reads too), so the two cannot drift apart. Written here rather
# than by the generator so the layer depends on the plan's crates and the template's
# profile only: a change to the generator's code does not rebuild third-party crates.
# `at` is the folder the stand-in is written to (path dependencies are relative to it);
# with `member` it is a member of a workspace that holds the profile (layerCommand), so it
# has neither [profile] nor [workspace] of its own.
{ internal, planCrateDirs }:
{ plan, template, at ? "${plan.dir}/.mirage-nix/${plan.target}", member ? false }:
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

  ${if member then "" else internal.profileSections template + "\n[workspace]"}
''
