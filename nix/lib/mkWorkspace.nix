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
# With `dummy`, the crates in `realDirs` keep their code (the workspace layer compiles
# mirage-nix's own crates over the dependency layer); crates in `keepTimesDirs` keep the
# store's timestamps (mkCargoDerivation), so an image reuses their compiled artifacts.
# `extraCrates` ({ dir; src; dummyFiles; } with `src` a directory or a Cargo.toml file)
# become members too (buildDepsOnly's stand-ins), and so do `extraMembers`, directories
# the build itself creates (the crate `mirage-nix render` writes, a plan's stand-in).
# `profile` (an attribute set, e.g. the generator template's profile for unikernel builds)
# replaces the repository's [profile].
{ internal, pathCrates, cleanCrateSource, parseCargoLock, cargoLockClosure, writeCargoLock }:
{ src, dirs, dummy ? false, realDirs ? [ ], keepTimesDirs ? [ ], extraCrates ? [ ], extraMembers ? [ ], profile ? null }:
let
  inherit (builtins) attrNames elem filter fromTOML map pathExists readFile;
  inherit (internal) filterAttrs toTOML unique;

  crates = pathCrates { inherit src dirs; };

  root =
    let f = internal.rootFile src "Cargo.toml"; in
    if pathExists f then fromTOML (readFile f) else { };
  ws = root.workspace or { };
  rootManifest = toTOML ({
    workspace = filterAttrs (n: _: elem n [ "package" "lints" "dependencies" "metadata" ]) ws // {
      resolver = ws.resolver or "2";
      members = map (c: c.dir) crates ++ map (c: c.dir) extraCrates ++ extraMembers;
    };
  } // (if profile != null then { inherit profile; } else filterAttrs (n: _: n == "profile") root));

  # The lock: the root's Cargo.lock, plus the packages only other roots' locks have (a
  # downstream unikernel's own Cargo.lock, if it has one).
  locks = map parseCargoLock (internal.lockFiles src);
  lock =
    if locks == [ ] then
      throw ''
        mirage-nix: the repository has no Cargo.lock, so its crates cannot be vendored.
        Run `cargo generate-lockfile` at the repository root and `git add Cargo.lock`.
      ''
    else
      let
        first = builtins.head locks;
        extra = builtins.concatMap (l: filter (p: !(first.byId ? ${p.id})) l.packages) (builtins.tail locks);
        packages = first.packages ++ extra;
      in
      first // {
        inherit packages;
        byId = builtins.listToAttrs (map (p: { name = p.id; value = p; }) packages);
      };
  # A crate the lock does not list (a downstream unikernel without a Cargo.lock of its
  # own) roots the closure at its registry dependencies; cargo, run without --locked,
  # adds its entry at build time from the vendored crates.
  lockRoots = c:
    if builtins.any (p: p.name == c.name && p.kind == "path") lock.packages then [ c.name ]
    else
      let
        m = c.manifest;
        tables = [ (m.dependencies or { }) (m.build-dependencies or { }) ]
          ++ map (t: t.dependencies or { }) (builtins.attrValues (m.target or { }));
        registryDeps = builtins.concatMap
          (t: map (n: if builtins.isAttrs t.${n} then t.${n}.package or n else n)
            (filter (n: !(builtins.isAttrs t.${n} && t.${n} ? path)) (attrNames t)))
          tables;
        idsOf = n:
          let found = filter (p: p.name == n && p.kind == "registry") lock.packages; in
          if found != [ ] then map (p: p.id) found
          else
            throw ''
              mirage-nix: ${c.dir} (crate ${c.name}) is not in Cargo.lock and depends on
              "${n}", which no Cargo.lock of the build lists. Run `cargo generate-lockfile`
              in ${c.dir} and commit its Cargo.lock.
            '';
      in
      builtins.concatMap idsOf registryDeps;
  pruned = cargoLockClosure { inherit lock; roots = unique (builtins.concatMap lockRoots crates); };

  isDummy = c: (dummy && !(elem c.dir realDirs)) || c.devOnly;

  # Which files the dependency layer writes as empty programs in place of a crate's code.
  dummyFilesOf = c:
    let
      m = c.manifest;
      has = f: pathExists (internal.at src "${c.dir}/${f}");
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
      src = cleanCrateSource { inherit src; inherit (c) dir; dummy = isDummy c; };
      dummyFiles = if isDummy c then dummyFilesOf c else [ ];
      keepTimes = elem c.dir keepTimesDirs && !(isDummy c);
    })
    crates ++ extraCrates;
}
