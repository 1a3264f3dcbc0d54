# mkUnikernelPackages :: { src, mirage-nix, examplesDir ? "examples", unikernelDirs ? null,
#                          mirageDir ? "", cargoTemplate ? <the generator's>, boot ? { },
#                          layers ? "target" }
#                        -> { images; depsLayers; checks; apps; }
#
# Everything the committed plans describe, for one toolchain source:
#   images      "<example>-<target>" = buildUnikernel, one per plans/<target>.json;
#   depsLayers  "<target>" = the layers every plan of that target shares, built with a
#               stand-in crate per plan (mkStandInManifest): `.deps`, third-party crates
#               from manifests only (buildDepsOnly, one cargo run: layerCommand), and on
#               top of it the layer itself,
#               mirage-nix's own crates (devices, runtime/*) compiled from their code;
#   checks      "<example>-<target>-boot" = mkBootCheck, for the unix images;
#   apps        "<example>-<target>" = { type = "app"; program; }, for the unix images.
# A downstream flake calls this on its own directory (see templates/ and docs/nix.md).
{ toolchain
, internal
, pathCrates
, findPlans
, readPlan
, planCrateDirs
, planRustflags
, layerCommand
, buildDepsOnly
, buildUnikernel
, mkBootCheck
}:
{ src
, mirage-nix
, examplesDir ? "examples"
  # Explicit unikernel folders instead of <examplesDir>/* (mkUnikernel).
, unikernelDirs ? null
  # Where the mirage-nix tree is in `src`'s layout ("" when `src` is the tree itself).
, mirageDir ? ""
  # The generator's [profile] sections (generator/profile.toml), which the dependency layer copies.
, cargoTemplate ? builtins.readFile (internal.at src "${mirageDir}/generator/profile.toml")
  # "<example>-<target>" = { setup; args; expect; probe; } for its boot check
  # (mkBootCheck), or null for none.
, boot ? { }
  # Which layers images are built on:
  #   "target"  the two layers every plan of a target shares (depsLayers): third-party
  #             crates compiled once per target, mirage-nix's crates once per feature set;
  #             best for a tree of many unikernels, and for editing mirage-nix's crates;
  #   "image"   one layer per image with exactly what its plan needs, third-party and
  #             mirage-nix's crates in one cargo run: the fastest way to one image from
  #             nothing (mkUnikernel's choice: its tree has one plan per target).
, layers ? "target"
}:
let
  inherit (builtins) attrNames attrValues concatMap filter head length listToAttrs map mapAttrs
    tryEval;
  inherit (internal) unique filterAttrs;

  found = findPlans { inherit src examplesDir unikernelDirs; };
  plans = mapAttrs (_: p: readPlan { inherit src mirageDir; inherit (p) dir target; }) found;
  # A plan that does not read (unknown version, stale...) or names a crate that does not
  # exist yet fails on its own package only, not on the layer its target shares.
  usable = p: builtins.all (d: builtins.pathExists (internal.at src "${d}/Cargo.toml")) (planCrateDirs p);
  healthy = filterAttrs (n: _: (tryEval (usable plans.${n})).success && usable plans.${n}) plans;
  targets = unique (map (n: found.${n}.target) (attrNames found));

  # The crates of mirage-nix itself that plans use, and what they need (not the
  # unikernels' own crates, nor crates only dev-dependencies reach).
  mirageDirsOf = ps: map (c: c.dir) (filter (c: !c.devOnly) (pathCrates {
    inherit src;
    dirs = unique (concatMap
      (p: map (c: internal.normalizePath "${mirageDir}/${c.source.mirage}")
        (filter (c: c.source ? mirage) p.crates))
      ps);
  }));

  # The [profile] of every unikernel build (layers and images alike): the generator
  # template's, at the root of the build's one workspace.
  profile = (builtins.fromTOML (internal.profileSections cargoTemplate)).profile or { };

  depsLayers = listToAttrs (map
    (target:
      let
        ofTarget = filter (p: p.target == target) (attrValues healthy);
        # The target's rustc flags (the same in every plan of a target: they come from
        # the catalogue), so the layer compiles crates exactly as its images do.
        flagSets = unique (map planRustflags ofTarget);
        rustflags =
          if length flagSets <= 1 then (if flagSets == [ ] then [ ] else head flagSets)
          else
          throw ''
            mirage-nix: the plans for ${target} disagree on the target's rustc flags
            (${builtins.toJSON flagSets}): some are stale.
            Regenerate them: `mirage-nix configure -t ${target} <dir>` for each example.
          '';
        dirs = unique (concatMap planCrateDirs ofTarget);
        cargoCommands = [ (layerCommand { plans = ofTarget; each = true; }) ];
        members = map internal.renderedDir ofTarget;
        # Third-party crates: manifests only, so code edits never rebuild them; every
        # plan's stand-in in one cargo run.
        deps = buildDepsOnly {
          name = "mirage-${target}";
          inherit src rustflags dirs members profile;
          cargoCommands = [ (layerCommand { plans = ofTarget; }) ];
        };
      in
      {
        name = target;
        # mirage-nix's own crates (devices, runtime/*) with their code, on top: an edit to
        # an example then recompiles that example and the image's crate only.
        value = buildDepsOnly
          {
            name = "mirage-${target}";
            suffix = "workspace";
            inherit src rustflags dirs cargoCommands members profile;
            realDirs = mirageDirsOf ofTarget;
            cargoArtifacts = deps;
          } // { inherit deps; };
      })
    targets);

  # Plans whose crates do not all exist yet (a target still being written) get no image;
  # a plan that fails to read keeps its entry, so its fix-it error shows.
  buildable = filterAttrs (n: _: let r = tryEval (usable plans.${n}); in !r.success || r.value) plans;
  # The layer of one image ("image" layers): the plan's stand-in with mirage-nix's crates
  # from their code, the unikernel's as manifests.
  imageLayer = plan: buildDepsOnly {
    name = "${plan.name}-${plan.target}";
    suffix = "layer";
    inherit src;
    rustflags = planRustflags plan;
    dirs = planCrateDirs plan;
    realDirs = mirageDirsOf [ plan ];
    cargoCommands = [ (layerCommand { plans = [ plan ]; }) ];
    members = [ (internal.renderedDir plan) ];
    inherit profile;
  };
  layerOf = n: plan:
    if layers == "target" then depsLayers.${found.${n}.target}
    else if layers == "image" then imageLayer plan
    else throw ''mirage-nix: layers = "${toString layers}" is not a kind of layer; use "target" or "image".'';
  images = mapAttrs
    (n: plan: buildUnikernel {
      inherit src plan mirage-nix profile;
      depsArtifacts = layerOf n plan;
      keepTimesDirs = mirageDirsOf [ plan ];
    })
    buildable;

  unix = filterAttrs (n: _: found.${n}.target == "unix") images;

  # Xen images boot through their PVH entry directly under QEMU (TCG; the hypervisor itself is
  # outside the sandbox): the image ends QEMU through isa-debug-exit, status 2 * code + 1.
  xen = filterAttrs (n: _: found.${n}.target == "xen") images;
  pvhBoot = {
    runner = ''${toolchain.qemu} -accel tcg -m 32 -display none -serial stdio -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$exe" -append "$bootArgs"'';
    success = 1;
    timeout = 120;
  };
in
{
  inherit images depsLayers plans;
  unavailable = attrNames (removeAttrs plans (attrNames buildable));
  # `boot.<name> = null` leaves an image without a boot check (one that needs what the
  # sandbox lacks, such as a tap device).
  checks = listToAttrs (map
    (n: {
      name = "${n}-boot";
      value = mkBootCheck ({ image = images.${n}; } // (if xen ? ${n} then pvhBoot else { }) // boot.${n} or { });
    })
    (filter (n: boot.${n} or { } != null) (attrNames (unix // xen))));
  apps = mapAttrs (_: img: { type = "app"; program = "${img}/${img.image}"; }) unix;
}
