# mkWorkspace :: { src, dirs, dummy ? false, extraCrates ? [ ] } -> workspace
#
# The slice of the repository a build needs, as inputs for mkCargoDerivation:
#   crates        the workspace crates `dirs` need (pathCrates), each with its own source
#                 path (cleanCrateSource; only manifests when `dummy` or for crates only
#                 dev-dependencies reach, plus the list of empty programs to write in place
#                 of its sources);
#   rootManifest  a root Cargo.toml with the repository's [workspace.package],
#                 [workspace.lints], [workspace.dependencies] and [profile] and only these
#                 members, so adding a crate elsewhere in the repository changes nothing;
#   cargoLock     the repository's Cargo.lock pruned to what these crates reach.
# `extraCrates` ({ dir; src; dummyFiles; } with `src` a directory or a Cargo.toml file)
# become members too (buildDepsOnly's stand-ins), and so do `extraMembers`, directories
# the build itself creates (the crate `mirage-nix render` writes).
{ internal, pathCrates, cleanCrateSource, parseCargoLock, cargoLockClosure, writeCargoLock }:
{ src, dirs, dummy ? false, extraCrates ? [ ], extraMembers ? [ ] }:
let
  inherit (builtins) attrNames elem filter fromTOML map pathExists readFile;
  inherit (internal) filterAttrs toTOML unique;

  crates = pathCrates { inherit src dirs; };

  root =
    if pathExists (src + "/Cargo.toml") then fromTOML (readFile (src + "/Cargo.toml")) else { };
  ws = root.workspace or { };
  rootManifest = toTOML ({
    workspace = filterAttrs (n: _: elem n [ "package" "lints" "dependencies" "metadata" ]) ws // {
      resolver = ws.resolver or "2";
      members = map (c: c.dir) crates ++ map (c: c.dir) extraCrates ++ extraMembers;
    };
  } // filterAttrs (n: _: n == "profile") root);

  lockFile = src + "/Cargo.lock";
  lock =
    if pathExists lockFile then parseCargoLock lockFile else
    throw ''
      mirage-nix: the repository has no Cargo.lock, so its crates cannot be vendored.
      Run `cargo generate-lockfile` at the repository root and `git add Cargo.lock`.
    '';
  pruned = cargoLockClosure { inherit lock; roots = unique (map (c: c.name) crates); };

  # Which files the dependency layer writes as empty programs in place of a crate's code.
  dummyFilesOf = c:
    let
      m = c.manifest;
      has = f: pathExists (src + "/${c.dir}/${f}");
      lib =
        if m ? lib then [ (m.lib.path or "src/lib.rs") ]
        else if has "src/lib.rs" then [ "src/lib.rs" ] else [ ];
      binPath = b:
        b.path or (if has "src/bin/${b.name}.rs" then "src/bin/${b.name}.rs" else "src/main.rs");
      bins = map binPath (m.bin or [ ]) ++ (if has "src/main.rs" then [ "src/main.rs" ] else [ ]);
      others = kind: dir: map (t: t.path or "${dir}/${t.name}.rs") (m.${kind} or [ ]);
      build =
        let b = m.package.build or null; in
        if builtins.isString b then [ b ]
        else if b == false then [ ]
        else if has "build.rs" then [ "build.rs" ] else [ ];
    in
    unique (lib ++ bins ++ build ++ others "example" "examples" ++ others "test" "tests"
      ++ others "bench" "benches");
in
{
  inherit crates rootManifest;
  lock = pruned;
  cargoLock = writeCargoLock pruned;
  layout = map
    (c: {
      inherit (c) dir;
      src = cleanCrateSource { inherit src; inherit (c) dir; dummy = dummy || c.devOnly; };
      dummyFiles = if dummy || c.devOnly then dummyFilesOf c else [ ];
    })
    crates ++ extraCrates;
}
