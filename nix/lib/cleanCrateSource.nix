# cleanCrateSource :: { src, dir, dummy ? false } -> store path
#
# One workspace crate's directory as its own content-addressed store path, so a
# derivation that uses `runtime/unix` is not invalidated by an edit in `runtime/xen`.
# Left out: build outputs, Nix result links, editor droppings, and what only the
# generator reads (`plans/`, `unikernel.toml`, `.mirage-nix/`), so a plan for another
# target or a config edit does not touch the crate.
#
# With `dummy = true` only the manifest (and `build.rs`, which the dependency layer
# replaces anyway) is kept: the slice of a crate that decides which third-party crates it
# needs, used by buildDepsOnly.
{ internal }:
{ src, dir, dummy ? false }:
let
  inherit (internal) hasPrefix hasSuffix;
  relative = internal.relativeTo (internal.at src dir);
  droppedTop = [ "target" "result" ".mirage-nix" "plans" "unikernel.toml" ];
  droppedAnywhere = [ ".git" ".direnv" ];
  filter = path: type:
    let
      rel = relative path;
      base = baseNameOf path;
    in
    if dummy then rel == "Cargo.toml" || rel == "build.rs"
    else !(builtins.elem rel droppedTop
      || builtins.elem base droppedAnywhere
      || hasPrefix "result-" base
      || hasSuffix "~" base
      || hasSuffix ".swp" base
      || (type == "directory" && hasSuffix ".rendered" base));
  slug = builtins.replaceStrings [ "/" ] [ "-" ] dir;
in
builtins.path {
  path = internal.at src dir;
  name = "${slug}-${if dummy then "manifest" else "src"}";
  inherit filter;
}
