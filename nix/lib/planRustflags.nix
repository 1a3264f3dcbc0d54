# planRustflags :: plan -> [ string ]
#
# The rustc flags a plan's target needs (`image.rustflags`, from the target's `rustflags`
# in generator/catalogue.toml), for every crate of its image and of its target's
# dependency layer alike, so both compile third-party crates identically. `{runtime}`
# (the runtime crate's folder) becomes `@top@/src/<runtime dir>`; the rustc wrapper of
# mkCargoDerivation.sh replaces `@top@` with the build directory, where the workspace is
# laid out (cargo sees `@top@` only, so its hashes do not depend on that directory).
{ planCrateDirs }:
plan:
let
  inherit (builtins) elemAt filter genList length replaceStrings;
  dirs = planCrateDirs plan;
  runtime = plan.image.runtime or null;
  runtimeDirs = filter (d: d != null)
    (genList (i: if (elemAt plan.crates i).name == runtime then elemAt dirs i else null) (length dirs));
  flags = plan.image.rustflags or [ ];
  usesRuntime = builtins.any (f: builtins.match ".*[{]runtime[}].*" f != null) flags;
  runtimeDir =
    if runtimeDirs != [ ] then builtins.head runtimeDirs else
    throw ''
      mirage-nix: ${plan.dir}/plans/${plan.target}.json has rustc flags naming {runtime}, but
      its runtime crate "${toString runtime}" is not among its crates.
      Regenerate it with `mirage-nix configure -t ${plan.target} ${plan.dir}`.
    '';
in
map (f: if usesRuntime then replaceStrings [ "{runtime}" ] [ "@top@/src/${runtimeDir}" ] f else f) flags
