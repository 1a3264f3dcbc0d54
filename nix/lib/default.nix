# The mirage-nix Nix library: one function per file in this directory, wired together as
# a scope (crane's layout, without nixpkgs' callPackage). Each file is
# `{ <what it needs from the scope> }: <the function>`; `toolchain` is one of
# ../toolchains/{host,nixpkgs}.nix, and nothing else differs between the two sources.
#
#   readPlan findPlans parseCargoLock cargoLockClosure writeCargoLock pathCrates
#   cleanCrateSource mkWorkspace vendorCargoDeps mkCargoDerivation buildDepsOnly
#   buildWorkspacePackage planCrateDirs planRustflags mkStandInManifest layerCommand renderCommand
#   diskCommand buildUnikernel mkBootCheck mkUnikernelPackages mkUnikernel checkPlansFresh mkFormatter checkNixFormat
{ toolchain }:
let
  callLib = path:
    let f = import path; in
    f (builtins.intersectAttrs (builtins.functionArgs f) scope);
  scope = {
    inherit toolchain;
    internal = import ./internal.nix;
    readPlan = callLib ./readPlan.nix;
    findPlans = callLib ./findPlans.nix;
    parseCargoLock = callLib ./parseCargoLock.nix;
    cargoLockClosure = callLib ./cargoLockClosure.nix;
    writeCargoLock = callLib ./writeCargoLock.nix;
    pathCrates = callLib ./pathCrates.nix;
    cleanCrateSource = callLib ./cleanCrateSource.nix;
    mkWorkspace = callLib ./mkWorkspace.nix;
    vendorCargoDeps = callLib ./vendorCargoDeps.nix;
    mkCargoDerivation = callLib ./mkCargoDerivation.nix;
    buildDepsOnly = callLib ./buildDepsOnly.nix;
    buildWorkspacePackage = callLib ./buildWorkspacePackage.nix;
    planCrateDirs = callLib ./planCrateDirs.nix;
    planRustflags = callLib ./planRustflags.nix;
    mkStandInManifest = callLib ./mkStandInManifest.nix;
    layerCommand = callLib ./layerCommand.nix;
    renderCommand = callLib ./renderCommand.nix;
    diskCommand = callLib ./diskCommand.nix;
    buildUnikernel = callLib ./buildUnikernel.nix;
    mkBootCheck = callLib ./mkBootCheck.nix;
    mkUnikernelPackages = callLib ./mkUnikernelPackages.nix;
    mkUnikernel = callLib ./mkUnikernel.nix;
    checkPlansFresh = callLib ./checkPlansFresh.nix;
    mkFormatter = callLib ./mkFormatter.nix;
    checkNixFormat = callLib ./checkNixFormat.nix;
  };
in
scope
