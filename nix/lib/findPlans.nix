# findPlans :: { src, examplesDir ? "examples" } -> { "<example>-<target>" = { dir; target; }; }
#
# Lists the committed plans, `<examplesDir>/<example>/plans/<target>.json`, by reading
# directories only: a broken plan fails when its package is evaluated, not when the flake
# is listed. An example with a unikernel.toml and no plan at all is listed as
# `<example>-unix`, whose evaluation fails naming the missing plan and the command that
# writes it (readPlan).
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
    let
      d = src + "/${dirOf' name}/plans";
      files = if pathExists d then builtins.filter (f: hasSuffix ".json" f) (attrNames (readDir d)) else [ ];
      unplanned = files == [ ] && pathExists (src + "/${dirOf' name}/unikernel.toml");
    in
    map
      (target: {
        name = "${name}-${target}";
        value = { dir = dirOf' name; inherit target; };
      })
      (if unplanned then [ "unix" ] else map (removeSuffix ".json") files);
in
listToAttrs (concatMap plansOf examples)
