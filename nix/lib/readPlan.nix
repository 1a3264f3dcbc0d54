# readPlan :: { src, dir, target, mirageDir ? "" } -> plan
#
# Reads `<src>/<dir>/plans/<target>.json`, the committed output of `mirage-nix configure`,
# with `builtins.fromJSON` (committed data: no import-from-derivation), and checks what
# the rest of the library relies on. Every failure names the file and the command that
# fixes it. The result carries `planFile` (the JSON alone, as a store path keyed by its
# content, so a derivation that takes it depends on this plan and nothing else),
# `dir` and `mirageDir` (where the mirage-nix tree is in the build layout: "" in this
# repository, "mirage-nix" for a downstream unikernel) besides the plan's own fields.
{ internal }:
{ src, dir, target, mirageDir ? "" }:
let
  supportedVersions = [ 2 ];
  rel = "${dir}/plans/${target}.json";
  path = internal.at src rel;
  configure = "mirage-nix configure -t ${target} ${dir}";
  configFile = internal.at src "${dir}/unikernel.toml";

  plan =
    if !builtins.pathExists path then
      throw ''
        mirage-nix: no plan '${rel}'.
        Generate it with `${configure}` and commit it (flakes only see files tracked by git:
        `git add ${rel}`).
      ''
    else builtins.fromJSON (builtins.readFile path);

  version = plan.version or (throw ''
    mirage-nix: '${rel}' has no "version" field: it was not written by `mirage-nix configure`.
    Regenerate it with `${configure}`.
  '');

  requireField = field:
    if plan ? ${field} then true else
    throw ''
      mirage-nix: '${rel}' (plan version ${toString version}) has no "${field}" field.
      Regenerate it with `${configure}`; if that does not add it, the generator and this
      flake disagree on the plan schema: update both from the same revision.
    '';

  # A plan records the hash of the unikernel.toml it was made from; a mismatch means the
  # config changed after the plan was generated.
  recorded = plan.config_sha256 or null;
  fresh =
    recorded == null
    || !builtins.pathExists configFile
    || builtins.hashFile "sha256" configFile == recorded
    || throw ''
      mirage-nix: '${rel}' is stale: ${dir}/unikernel.toml changed after the plan was made.
      Regenerate it with `${configure}` and commit the new plan.
    '';

  checked =
    if !builtins.elem version supportedVersions then
      throw ''
        mirage-nix: '${rel}' has plan version ${builtins.toJSON version}, but this flake reads
        plan versions ${builtins.toJSON supportedVersions}.
        Either regenerate the plan with the mirage-nix of this revision (`nix run .#mirage-nix --
        configure -t ${target} ${dir}`) or update the flake to the revision of your mirage-nix.
      ''
    else if plan.target or target != target then
      throw ''
        mirage-nix: '${rel}' is a plan for target "${plan.target}", not "${target}".
        Plans live at plans/<target>.json: move it, or regenerate it with `${configure}`.
      ''
    else builtins.all requireField [ "name" "target" "crates" "unikernel" ] && fresh;
in
assert checked;
plan // {
  inherit dir mirageDir;
  planFile = builtins.path {
    inherit path;
    name = "${baseNameOf dir}-${target}-plan.json";
  };
}
