# findPlans :: { src, examplesDir ? "examples" } -> { "<example>-<target>" = { dir; target; }; }
#
# Lists the committed plans, `<examplesDir>/<example>/plans/<target>.json`, by reading
# directories only: a broken plan fails when its package is evaluated, not when the flake
# is listed.
{ internal }:
{ src, examplesDir ? "examples" }:
let
  inherit (builtins) attrNames concatMap listToAttrs pathExists readDir;
  inherit (internal) hasSuffix removeSuffix;
  dirOf' = name: "${examplesDir}/${name}";
  examples =
    if pathExists (src + "/${examplesDir}") then
      builtins.filter (n: (readDir (src + "/${examplesDir}")).${n} == "directory")
        (attrNames (readDir (src + "/${examplesDir}")))
    else [ ];
  plansOf = name:
    let d = src + "/${dirOf' name}/plans"; in
    if !pathExists d then [ ] else
    map
      (file: let target = removeSuffix ".json" file; in {
        name = "${name}-${target}";
        value = { dir = dirOf' name; inherit target; };
      })
      (builtins.filter (f: hasSuffix ".json" f) (attrNames (readDir d)));
in
listToAttrs (concatMap plansOf examples)
