{
  description = "mirage-nix: MirageOS/Functoria in Rust, unikernels built from committed plans";

  # The pinned nixpkgs. Fetched lazily: only the nixpkgs toolchain source touches it, so
  # offline machines using the host toolchain never need it. Its rustc (1.91) must build
  # Cargo.lock: nix/nixpkgs-pin.json records it with its source, and the toolchain checks it.
  inputs.nixpkgs-pin.url = "github:NixOS/nixpkgs/nixos-25.11";

  # What `nix develop` asks of the input called `nixpkgs` (an interactive bash), answered
  # locally, so that `nix develop` fetches nothing: nix/develop-shell/flake.nix.
  inputs.nixpkgs.url = "path:./nix/develop-shell";

  outputs = { self, nixpkgs-pin, ... }:
    let
      system = "x86_64-linux";

      # THE toolchain switch (docs/nix.md, "Toolchain sources"). The standard outputs
      # (packages, checks, apps, devShells, hydraJobs) use this source; both sources are
      # always reachable as legacyPackages.${system}.{host,nixpkgs}.<name>, e.g.
      # `nix build .#nixpkgs.hello-unix`.
      #   "host"     the rustc/cargo/cc installed on this machine, imported and identified
      #              by scripts/setup-nix (offline; run `eval "$(scripts/setup-nix)"`).
      #   "nixpkgs"  the pinned nixpkgs input (hermetic; needs it fetched once).
      defaultToolchain = "host";

      toolchains = {
        host = import ./nix/toolchains/host.nix {
          inherit system;
          identityFile = ./nix/host-toolchain.json;
        };
        nixpkgs = import ./nix/toolchains/nixpkgs.nix {
          pkgs = nixpkgs-pin.legacyPackages.${system};
          # What every build needs of rustc: the workspace's rust-version, kept at the
          # highest rust-version of Cargo.lock's crates (generator/tests/nix.rs).
          rustVersion = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.rust-version;
        };
      };

      # A boot-check probe: GET / over the sandbox's loopback must answer 200.
      httpProbe = port: ''
        exec 3<>/dev/tcp/127.0.0.1/${toString port}
        printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
        timeout 10 cat <&3 >response || true
        head -n1 response
        head -n1 response | grep -q ' 200 '
      '';

      # Everything this repository builds, for one toolchain source.
      mkOutputs = toolchain:
        let
          lib = import ./nix/lib { inherit toolchain; };
          mirage-nix = lib.buildWorkspacePackage { src = self; dir = "generator"; };
          unikernels = lib.mkUnikernelPackages {
            src = self;
            inherit mirage-nix;
            boot = {
              hello-unix.expect = "Hello World!";
              hello-xen = { expect = "INF [hello] Hi-from-PVH"; args = [ "--hello=Hi-from-PVH" ]; };
              console-xen.expect = "world";
              # Xen images with network or block devices need a domU with a toolstack (the
              # xen tests boot them with xl); through PVH under plain QEMU they must say so
              # and fail cleanly (exit code 1: QEMU status 3).
              block-xen = { expect = "this domain has no xenstore"; success = 3; };
              conduit_server-xen = { expect = "this domain has no xenstore"; success = 3; };
              network-xen = { expect = "this domain has no xenstore"; success = 3; };
              static_website-xen = { expect = "this domain has no xenstore"; success = 3; };
              block-unix.setup = "head -c 1048576 /dev/zero >disk.img";
              # Servers: started, asked for a page over the sandbox's loopback, stopped.
              conduit_server-unix = { expect = "listening on TCP port 8080"; probe = httpProbe 8080; };
              static_website-unix = { expect = "listening on TCP port 8080"; probe = httpProbe 8080; };
              # Needs a tap device (root, CAP_NET_ADMIN), which the sandbox does not give:
              # runtime/unix's end-to-end tests run it in a network namespace instead.
              network-unix = null;
            };
          };
          images = unikernels.images;
          # The same images, each on a layer of its own (mkUnikernelPackages' `layers`).
          perImage = (lib.mkUnikernelPackages { src = self; inherit mirage-nix; layers = "image"; }).images;
          packages = images // {
            inherit mirage-nix;
            default = images.hello-unix or mirage-nix;
          };
          checks = unikernels.checks // {
            inherit mirage-nix;
            nix-unit-tests = import ./nix/tests { inherit lib toolchain; };
            plans-fresh = lib.checkPlansFresh { src = self; inherit mirage-nix; extraDirs = [ "nix/template" ]; };
            nix-format = lib.checkNixFormat { src = self; inherit formatter; };
          };
          devShell = derivation {
            name = "mirage-nix-shell";
            inherit system;
            builder = toolchain.shell;
            args = [ "-c" "echo \"$MIRAGE_NIX_TOOLCHAIN\" >$out" ];
            outputs = [ "out" ];
            PATH = "${mirage-nix}/bin:${toolchain.path}";
            MIRAGE_NIX_TOOLCHAIN = toolchain.identity;
          };
          formatter = lib.mkFormatter { src = self; };
          # Every target's two shared layers, for CI to build and cache: a developer who
          # edits an example substitutes them and compiles that example only.
          layers = builtins.listToAttrs (builtins.concatMap
            (t: [
              { name = "${t}-deps"; value = unikernels.depsLayers.${t}.deps; }
              { name = "${t}-workspace"; value = unikernels.depsLayers.${t}; }
            ])
            (builtins.attrNames unikernels.depsLayers));
        in
        {
          inherit packages checks devShell formatter unikernels perImage layers;
          # What a downstream flake calls: mkUnikernel with this tree and its generator.
          lib = lib // {
            mkUnikernel = args: lib.mkUnikernel ({ mirage = self; inherit mirage-nix; } // args);
          };
          apps = builtins.mapAttrs (_: a: a) unikernels.apps // {
            mirage-nix = { type = "app"; program = "${mirage-nix}/bin/mirage-nix"; };
          };
        };

      outputsFor = builtins.mapAttrs (_: mkOutputs) toolchains;
      default = outputsFor.${defaultToolchain};
    in
    {
      packages.${system} = default.packages;
      # `.#perImage.<name>`: an image on its own layer (`layers = "image"`), e.g. for a
      # one-off build of a single image from nothing.
      legacyPackages.${system} = builtins.mapAttrs (_: o: o.packages // { inherit (o) checks perImage; }) outputsFor
        // { inherit (default) perImage; };
      checks.${system} = default.checks;
      apps.${system} = default.apps // {
        default = default.apps.hello-unix or default.apps.mirage-nix;
      };
      devShells.${system}.default = default.devShell;
      formatter.${system} = default.formatter;
      # What CI builds and scripts/publish-cache signs and copies to a binary cache.
      hydraJobs = {
        packages.${system} = default.packages;
        checks.${system} = default.checks;
        layers.${system} = default.layers;
      };
      templates.default = {
        path = ./nix/template;
        description = "A new mirage-nix unikernel: unikernel.toml, its crate, and a flake that builds its plans";
      };
      # The library for a downstream flake: `mirage-nix.lib.${system}.mkUnikernel { src = self; }`
      # builds its plans (see nix/template), and the functions it is made of, with the
      # default toolchain source;
      # `lib.${system}.withToolchain.{host,nixpkgs}` for the other.
      lib.${system} = default.lib // {
        withToolchain = builtins.mapAttrs (_: o: o.lib) outputsFor;
        inherit toolchains;
      };
    };
}
