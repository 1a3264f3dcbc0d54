# cargoLockClosure :: { lock, roots } -> lock
#
# The part of a parsed Cargo.lock (see parseCargoLock) reachable from the packages named
# in `roots` (package names, workspace crates first, or "name version" ids). Cargo.lock lists every dependency
# kind and platform, so the closure is what cargo needs to resolve those packages offline.
# A derivation that takes the closure instead of the whole lock is not invalidated by a
# dependency added to an unrelated crate of the workspace.
{ internal }:
{ lock, roots }:
let
  inherit (builtins) filter genericClosure head length map;
  rootId = r:
    if lock.byId ? ${r} then r else
    let
      named = filter (p: p.name == r) lock.packages;
      # A workspace crate may share its name with a registry crate (examples/console
      # and the `console` crate): roots are workspace crates when one matches.
      local = filter (p: p.kind == "path") named;
      found = if local != [ ] then local else named;
    in
    if length found == 1 then (head found).id
    else
      throw ''
        mirage-nix: the crate "${r}" is ${if found == [ ] then "not in" else "ambiguous in"} Cargo.lock.
        Run `cargo update --workspace` (or `cargo generate-lockfile`) at the repository root
        so the lock file covers every crate the plans use, and commit Cargo.lock.
      '';
  closure = genericClosure {
    startSet = map (r: { key = rootId r; }) roots;
    operator = item: map (d: { key = d; }) lock.byId.${item.key}.deps;
  };
  packages = map (item: lock.byId.${item.key}) closure;
in
lock // {
  packages = builtins.sort (a: b: a.id < b.id) packages;
  byId = builtins.listToAttrs (map (p: { name = p.id; value = p; }) packages);
}
