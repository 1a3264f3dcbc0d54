# The library's unit tests, `{ expr; expected; }` tables over the fixture workspace in
# ./fixtures/ws, run at evaluation time. The result is a derivation (a flake check) that
# builds only if every test passes; a failure aborts evaluation listing each failing test
# with what it got and what it expected. `nix eval .#checks.x86_64-linux.nix-unit-tests`
# runs them without building anything.
{ lib, toolchain }:
let
  inherit (builtins) attrNames filter length map tryEval deepSeq toJSON;
  src = ./fixtures/ws;
  throws = e: !(tryEval (deepSeq e e)).success;

  lock = lib.parseCargoLock (src + "/Cargo.lock");
  hello = lib.readPlan { inherit src; dir = "examples/hello"; target = "unix"; };

  tests = {
    # readPlan
    testReadPlanFields = {
      expr = { inherit (hello) name target dir; version = hello.version; };
      expected = { name = "hello"; target = "unix"; dir = "examples/hello"; version = 2; };
    };
    testReadPlanUnknownVersionThrows = {
      expr = throws (lib.readPlan { inherit src; dir = "examples/hello"; target = "future"; });
      expected = true;
    };
    testReadPlanMissingThrows = {
      expr = throws (lib.readPlan { inherit src; dir = "examples/hello"; target = "xen"; });
      expected = true;
    };
    testReadPlanStaleThrows = {
      expr = throws (lib.readPlan { inherit src; dir = "examples/hello"; target = "stale"; });
      expected = true;
    };
    testFindPlans = {
      expr = lib.findPlans { inherit src; };
      expected = {
        hello-future = { dir = "examples/hello"; target = "future"; };
        hello-stale = { dir = "examples/hello"; target = "stale"; };
        hello-unix = { dir = "examples/hello"; target = "unix"; };
        # A config without plans is listed, so its package names the missing plan.
        unplanned-unix = { dir = "examples/unplanned"; target = "unix"; };
      };
    };
    testReadPlanUnplannedThrows = {
      expr = throws (lib.readPlan { inherit src; dir = "examples/unplanned"; target = "unix"; });
      expected = true;
    };
    testPlanCrateDirs = {
      expr = lib.planCrateDirs hello;
      expected = [ "runtime/core" "runtime/unix" "examples/hello" ];
    };

    # Cargo.lock
    testParseCargoLockKinds = {
      expr = map (p: "${p.id} ${p.kind}") lock.packages;
      expected = [
        "hello 0.1.0 path"
        "libc 0.2.170 registry"
        "log 0.4.26 registry"
        "mirage-runtime 0.1.0 path"
        "mirage-unix 0.1.0 path"
        "mirage-xen 0.1.0 path"
        "spin 0.5.2 registry"
        "spin 0.9.8 registry"
      ];
    };
    testParseCargoLockResolvesVersionedDeps = {
      expr = lock.byId."mirage-xen 0.1.0".deps;
      expected = [ "mirage-runtime 0.1.0" "spin 0.9.8" ];
    };
    testParseCargoLockOldFormatThrows = {
      expr = throws (lib.parseCargoLock { text = "[[package]]\nname = \"a\"\nversion = \"1\"\n"; });
      expected = true;
    };
    testClosureLeavesOutOtherTargets = {
      expr = map (p: p.id) (lib.cargoLockClosure { inherit lock; roots = [ "mirage-unix" "hello" ]; }).packages;
      expected = [ "hello 0.1.0" "libc 0.2.170" "log 0.4.26" "mirage-runtime 0.1.0" "mirage-unix 0.1.0" ];
    };
    testClosureUnknownRootThrows = {
      expr = throws (lib.cargoLockClosure { inherit lock; roots = [ "nope" ]; });
      expected = true;
    };
    testWriteCargoLockRoundTrips = {
      expr =
        let pruned = lib.cargoLockClosure { inherit lock; roots = [ "mirage-xen" ]; }; in
        map (p: p.id) (lib.parseCargoLock { text = lib.writeCargoLock pruned; }).packages;
      expected = [ "log 0.4.26" "mirage-runtime 0.1.0" "mirage-xen 0.1.0" "spin 0.9.8" ];
    };

    # Workspace crates and source filtering
    testPathCratesFollowsPathAndWorkspaceDeps = {
      expr = map (c: "${c.dir}=${c.name}") (lib.pathCrates { inherit src; dirs = [ "runtime/unix" ]; });
      expected = [ "examples/hello=hello" "runtime/core=mirage-runtime" "runtime/unix=mirage-unix" ];
    };
    testPathCratesMarksDevOnlyCrates = {
      # runtime/unix's tests link examples/hello: its manifest is needed, its code is not.
      expr = map (c: "${c.dir} ${builtins.toJSON c.devOnly}") (lib.pathCrates { inherit src; dirs = [ "runtime/unix" ]; });
      expected = [ "examples/hello true" "runtime/core false" "runtime/unix false" ];
    };
    testDevOnlyCratesAreManifestsInImageBuilds = {
      expr = map (c: c.dummyFiles) (lib.mkWorkspace { inherit src; dirs = [ "runtime/unix" ]; }).layout;
      expected = [ [ "src/lib.rs" ] [ ] [ ] ];
    };
    testCleanCrateSourceDropsPlansAndConfig = {
      expr = builtins.attrNames (builtins.readDir (lib.cleanCrateSource { inherit src; dir = "examples/hello"; }));
      expected = [ "Cargo.toml" "src" ];
    };
    testCleanCrateSourceDummyKeepsManifest = {
      expr = builtins.attrNames (builtins.readDir (lib.cleanCrateSource { inherit src; dir = "examples/hello"; dummy = true; }));
      expected = [ "Cargo.toml" ];
    };
    testCrateSourceIgnoresSiblings = {
      # runtime/xen's source path does not depend on runtime/unix: same path either way.
      expr = lib.cleanCrateSource { inherit src; dir = "runtime/unix"; }
        == lib.cleanCrateSource { src = ./fixtures/ws; dir = "runtime/unix"; };
      expected = true;
    };
    testWorkspaceMembersAreTheSlice = {
      expr = (builtins.fromTOML (lib.mkWorkspace { inherit src; dirs = [ "examples/hello" ]; }).rootManifest).workspace.members;
      expected = [ "examples/hello" "runtime/core" ];
    };
    testWorkspaceKeepsProfile = {
      expr = (builtins.fromTOML (lib.mkWorkspace { inherit src; dirs = [ "runtime/core" ]; }).rootManifest).profile;
      expected = { release.panic = "abort"; };
    };
    testDummyFiles = {
      expr = map (c: c.dummyFiles) (lib.mkWorkspace { inherit src; dirs = [ "examples/hello" ]; dummy = true; }).layout;
      expected = [ [ "src/lib.rs" ] [ ] ];
    };

    # The dependency layer's stand-in manifest: a member of the build's workspace, so
    # no [profile] or [workspace] of its own
    testStandInManifest = {
      expr =
        let m = builtins.fromTOML (lib.mkStandInManifest { plan = hello; }); in
        { profile = m.profile or null; workspace = m.workspace or null; deps = m.dependencies.mirage-unix; };
      expected = { profile = null; workspace = null; deps = { path = "../../../../runtime/unix"; features = [ "std" ]; }; };
    };
    testStandInElsewhere = {
      expr = (builtins.fromTOML (lib.mkStandInManifest { plan = hello; at = "a/b"; })).dependencies.mirage-unix.path;
      expected = "../../runtime/unix";
    };
    # Unikernel builds put the generator template's profile at the workspace root.
    testWorkspaceTakesAProfile = {
      expr = (builtins.fromTOML (lib.mkWorkspace { inherit src; dirs = [ "runtime/core" ]; profile.release.lto = true; }).rootManifest).profile;
      expected = { release.lto = true; };
    };

    testStandInBareMetalIsALibrary = {
      expr =
        let
          m = builtins.fromTOML (lib.mkStandInManifest {
            plan = hello // { image = hello.image // { std = false; }; };
          });
        in
        { lib = m.lib or null; bin = m.bin or null; };
      expected = { lib.path = "src/lib.rs"; bin = null; };
    };

    # The target's rustc flags, with {runtime} at the runtime crate's folder in the build
    testPlanRustflags = {
      expr = lib.planRustflags (hello // {
        image = hello.image // { runtime = "mirage-unix"; rustflags = [ "-C" "link-arg=-T{runtime}/link.ld" ]; };
      });
      expected = [ "-C" "link-arg=-T@top@/src/runtime/unix/link.ld" ];
    };
    testPlanRustflagsNone = {
      expr = lib.planRustflags hello;
      expected = [ ];
    };

    # Helpers
    # Source filters find paths relative to their root in any store: the default one, and
    # a chroot store (`--store DIR`), where filters see DIR/nix/store/... paths.
    testRelativeTo = {
      expr = map (lib.internal.relativeTo "/nix/store/0a-source/examples/my.app+x") [
        "/nix/store/0a-source/examples/my.app+x/src/lib.rs"
        "/tmp/store root/nix/store/0a-source/examples/my.app+x/plans"
      ];
      expected = [ "src/lib.rs" "plans" ];
    };
    testNormalizePath = {
      expr = lib.internal.normalizePath "examples/hello/./../../runtime/core";
      expected = "runtime/core";
    };
    testToTOMLParsesBack = {
      expr = builtins.fromTOML (lib.internal.toTOML { a.b = [ "x" ]; c = { d = 1; "e.f" = true; }; });
      expected = { a.b = [ "x" ]; c = { d = 1; "e.f" = true; }; };
    };
  };

  failures = filter (n: tests.${n}.expr != tests.${n}.expected) (attrNames tests);
  report = map (n: "${n}:\n  got      ${toJSON tests.${n}.expr}\n  expected ${toJSON tests.${n}.expected}") failures;
  summary = "${toString (length (attrNames tests) - length failures)} passed, ${toString (length failures)} failed";
in
if failures != [ ] then throw ("mirage-nix: Nix unit tests failed (${summary}):\n" + builtins.concatStringsSep "\n" report)
else derivation
  {
    name = "nix-unit-tests";
    inherit (toolchain) system;
    builder = toolchain.shell;
    inherit summary;
    args = [ "-c" "echo \"$summary\"; echo \"$summary\" >$out" ];
  } // { inherit tests summary; }
