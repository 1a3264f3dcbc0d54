# planCrateDirs :: plan -> [ dir ]
#
# The workspace directories of the crates a plan's rendered crate depends on:
# `{"mirage": "runtime/unix"}` is relative to the mirage-nix tree (the repository root, or
# `plan.mirageDir` in a downstream layout), `{"local": "."}` to the plan's directory.
{ internal }:
plan:
map
  (c:
  let s = c.source or { }; in
  if s ? mirage then internal.normalizePath "${plan.mirageDir or ""}/${s.mirage}"
  else if s ? local then internal.normalizePath "${plan.dir}/${s.local}"
  else
    throw ''
      mirage-nix: the crate "${c.name or "?"}" of ${plan.dir}/plans/${plan.target}.json has a
      source this flake does not know (${builtins.toJSON s}); known: {"mirage": "<dir>"},
      {"local": "<dir>"}. Update the flake to the generator's revision, or regenerate the
      plan with `mirage-nix configure -t ${plan.target} ${plan.dir}`.
    '')
  plan.crates
