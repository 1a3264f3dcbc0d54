{
  description = "A mirage-nix unikernel";

  inputs.mirage-nix.url = "github:mirage-nix/mirage-nix";

  # Generate the plans with `nix run .#mirage-nix -- configure --all-targets .` and commit
  # them; `nix build .#<name>-<target>` then builds an image from each.
  outputs = { self, mirage-nix }:
    let
      system = "x86_64-linux";
      mlib = mirage-nix.lib.${system};
      unikernels = mlib.mkUnikernelPackages {
        src = self;
        examplesDir = ".";
        mirage-nix = mirage-nix.packages.${system}.mirage-nix;
      };
    in
    {
      packages.${system} = unikernels.images;
      checks.${system} = unikernels.checks;
      apps.${system} = unikernels.apps // { mirage-nix = mirage-nix.apps.${system}.mirage-nix; };
    };
}
