# mkStandInManifest :: { plan, template } -> string
#
# The Cargo.toml of a plan's stand-in in the dependency layer: the same dependencies,
# features and [profile] as the crate `mirage-nix render` writes for the plan, with the
# profile sections taken from the generator's own template (`template`, the text of
# generator/templates/Cargo.toml.tera), so the two cannot drift apart. Written here rather
# than by the generator so the layer depends on the plan's crates and the template's
# profile only: a change to the generator's code does not rebuild third-party crates.
{ internal, planCrateDirs }:
{ plan, template }:
let
  inherit (builtins) concatStringsSep elemAt filter foldl' genList isString length match split;
  inherit (internal) toTOML tomlValue;
  appDepth = length (filter (p: isString p && p != "") (split "/" plan.dir)) + 2;
  up = concatStringsSep "/" (genList (_: "..") appDepth);
  dirs = planCrateDirs plan;
  # A stand-in is a library: its dependencies compile exactly as for the image (cargo
  # reuses them there), and nothing is linked (no LTO of an empty program, and no link
  # flags naming files the layer does not have).
  target = "[lib]\npath = \"src/lib.rs\"";
  dep = i:
    let c = elemAt plan.crates i; in
    "${c.name} = { path = ${tomlValue "${up}/${elemAt dirs i}"}, features = ${tomlValue (c.features or [ ])} }";

  # Lines from the first [profile.*] header up to the next line that is neither a
  # profile header nor a key of one (a comment, [workspace], the end).
  lines = filter isString (split "\n" template);
  profile = (foldl'
    (acc: l:
      if acc.done then acc
      else if match "[[]profile[.].*[]]" l != null then acc // { inside = true; out = acc.out ++ [ l ]; }
      else if acc.inside && (l == "" || match "[A-Za-z0-9_-]+ *=.*" l != null) then acc // { out = acc.out ++ [ l ]; }
      else if acc.inside then acc // { done = true; }
      else acc)
    { inside = false; done = false; out = [ ]; }
    lines).out;
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

  ${concatStringsSep "\n" profile}
  [workspace]
''
