{
  description = "A mirage-nix unikernel";

  # The mirage-nix tree, e.g. a checkout next to this folder: `path:../mirage-nix`.
  inputs.mirage-nix.url = "github:mirage-nix/mirage-nix";

  # The plans are committed: regenerate them after editing unikernel.toml with
  # `nix run .#mirage-nix -- configure --all-targets .` and `git add plans`; then
  # `nix build .#myapp-unix` (or `mirage-nix build`) builds an image from each.
  outputs = { self, mirage-nix }:
    let
      system = "x86_64-linux";
      unikernel = mirage-nix.lib.${system}.mkUnikernel { src = self; };
    in
    {
      packages.${system} = unikernel.images;
      checks.${system} = unikernel.checks;
      apps.${system} = unikernel.apps // { mirage-nix = mirage-nix.apps.${system}.mirage-nix; };
    };
}
