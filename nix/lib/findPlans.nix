# findPlans :: { src, examplesDir ? "examples", unikernelDirs ? null }
#              -> { "<example>-<target>" = { dir; target; }; }
#
# Lists the committed plans, `<examplesDir>/<example>/plans/<target>.json` (or, given
# `unikernelDirs`, `<dir>/plans/<target>.json` for each of those folders), by reading
# directories only: a broken plan fails when its package is evaluated, not when the flake
# is listed. A unikernel with a unikernel.toml and no plan at all is listed as
# `<example>-unix`, whose evaluation fails naming the missing plan and the command that
# writes it (readPlan).
{ internal }:
{ src, examplesDir ? "examples", unikernelDirs ? null }:
let
  inherit (builtins) attrNames concatMap listToAttrs pathExists readDir;
  inherit (internal) at hasSuffix removeSuffix;
  examples =
    if unikernelDirs != null then unikernelDirs
    else if pathExists (at src examplesDir) then
      map (n: "${examplesDir}/${n}")
        (builtins.filter (n: (readDir (at src examplesDir)).${n} == "directory")
          (attrNames (readDir (at src examplesDir))))
    else [ ];
  plansOf = dir:
    let
      d = at src "${dir}/plans";
      files = if pathExists d then builtins.filter (f: hasSuffix ".json" f) (attrNames (readDir d)) else [ ];
      unplanned = files == [ ] && pathExists (at src "${dir}/unikernel.toml");
    in
    map
      (target: {
        name = "${baseNameOf dir}-${target}";
        value = { inherit dir target; };
      })
      (if unplanned then [ "unix" ] else map (removeSuffix ".json") files);
in
listToAttrs (concatMap plansOf examples)
