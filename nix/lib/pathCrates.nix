# pathCrates :: { src, dirs } -> [ { dir; name; manifest; devOnly; } ]
#
# The workspace crates (directories relative to `src`, holding a Cargo.toml) that `dirs`
# need, following path dependencies of every kind ([dependencies], [build-dependencies],
# [dev-dependencies], their [target.*] forms, and `workspace = true` entries that the root
# manifest gives a path), sorted by directory. Manifests are read at evaluation time from
# the flake's own source: no import-from-derivation.
# `devOnly` marks crates reached only through [dev-dependencies] (runtime/unix's tests link
# examples/hello): cargo needs their manifests to resolve the workspace but never compiles
# them in a release build, so mkWorkspace gives them as manifests only, and an edit to
# examples/hello does not touch the images of other examples.
{ internal }:
{ src, dirs }:
let
  inherit (builtins) attrValues concatMap filter fromTOML genericClosure isAttrs map
    pathExists readFile sort;
  inherit (internal) normalizePath;

  rootManifest =
    let f = internal.rootFile src "Cargo.toml"; in if pathExists f then fromTOML (readFile f) else { };
  workspaceDeps = rootManifest.workspace.dependencies or { };

  manifestOf = dir:
    let file = internal.at src "${dir}/Cargo.toml"; in
    if pathExists file then fromTOML (readFile file) else
    throw ''
      mirage-nix: there is no crate at '${dir}' (no ${dir}/Cargo.toml), but a plan or a
      Cargo.toml names it. Create the crate, or fix the path and regenerate the plans with
      `mirage-nix configure`.
    '';

  depTables = withDev: m:
    let
      kinds = t: [ (t.dependencies or { }) (t.build-dependencies or { }) ]
        ++ (if withDev then [ (t.dev-dependencies or { }) ] else [ ]);
    in
    kinds m ++ concatMap kinds (attrValues (m.target or { }));

  pathDepsOf = withDev: dir:
    let
      m = manifestOf dir;
      pathOf = name: spec:
        if !isAttrs spec then null
        else if spec ? path then normalizePath "${dir}/${spec.path}"
        else if spec.workspace or false && isAttrs (workspaceDeps.${name} or null)
          && workspaceDeps.${name} ? path then normalizePath "${internal.rootDir src}/${workspaceDeps.${name}.path}"
        else null;
    in
    filter (p: p != null)
      (concatMap (t: map (n: pathOf n t.${n}) (builtins.attrNames t)) (depTables withDev m));

  closureWith = withDev: genericClosure {
    startSet = map (d: { key = normalizePath d; }) dirs;
    operator = item: map (d: { key = d; }) (pathDepsOf withDev item.key);
  };
  closure = closureWith true;
  built = map (item: item.key) (closureWith false);
in
sort (a: b: a.dir < b.dir) (map
  (item:
  let m = manifestOf item.key; in
  {
    dir = item.key;
    name = m.package.name or (throw ''
      mirage-nix: ${item.key}/Cargo.toml has no [package] name; a plan can only use
      package crates.
    '');
    manifest = m;
    devOnly = !(builtins.elem item.key built);
  })
  closure)
