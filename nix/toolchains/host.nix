# The host toolchain source: the rustc/cargo already installed on this machine (rustup),
# imported into the store by scripts/setup-nix as one content-addressed path, plus the
# machine's C toolchain and shell tools from /usr, which the sandbox exposes
# (extra-sandbox-paths = /bin /usr /lib /lib64 /etc/alternatives).
#
# Identity: nix/host-toolchain.json (written by scripts/setup-nix) holds the NAR hash of
# the imported toolchain and the full `rustc -vV`, `cargo -V`, cc, ld and libc version
# strings. The toolchain is a fixed-output path with that hash and the strings go into
# every derivation, so any change to the toolchain changes every derivation's hash.
# Nothing here reads the host at evaluation time: evaluation stays pure.
{ system ? "x86_64-linux", identityFile }:
let
  inherit (builtins) fromJSON pathExists readFile;
  setup = "scripts/setup-nix";
  id =
    if pathExists identityFile then fromJSON (readFile identityFile) else
    throw ''
      mirage-nix: nix/host-toolchain.json is missing, so the host toolchain is unknown.
      Run `eval "$(${setup})"` (it imports rustc/cargo into the Nix store and writes the
      file), then `git add nix/host-toolchain.json`; or build with the nixpkgs toolchain:
      `nix build .#nixpkgs.<package>`.
    '';

  # A fixed-output derivation that cannot build anything: it is valid only once
  # scripts/setup-nix has added the toolchain at this hash (nixpkgs' requireFile idea).
  fail = what: fix: [ "-c" "echo 'mirage-nix: ${what} is not in the Nix store. ${fix}' >&2; exit 1" ];

  rust = derivation {
    name = id.name;
    inherit system;
    builder = "/bin/sh";
    args = fail "the host toolchain ${id.name} (nar hash ${id.narHash})"
      "Run scripts/setup-nix to import it; if the toolchain changed since nix/host-toolchain.json was written, that also rewrites the file.";
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = id.narHash;
  };
in
{
  name = "host";
  inherit system rust;
  rustTarget = "x86_64-unknown-linux-gnu";
  shell = "/bin/bash";
  path = "${rust}/bin:/usr/bin:/bin";
  identity = builtins.concatStringsSep "\n" [
    id.rustc
    id.cargo
    id.cc
    id.ld
    id.libc
    "toolchain ${id.name} nar sha256:${id.narHash}"
  ];
  inherit (id) cc;
  # The emulator boot checks run bare-metal images under (Debian's qemu-system-x86).
  qemu = "/usr/bin/qemu-system-x86_64";

  # Same store path as nixpkgs' `fetchCrate { unpack = false; }`: flat sha256 of the
  # .crate, named "<name>-<version>.tar.gz".
  fetchCrate = { name, version, checksum }: derivation {
    name = "${name}-${version}.tar.gz";
    inherit system;
    builder = "/bin/sh";
    args = fail "the crate ${name} ${version} (sha256 ${checksum})"
      "Run scripts/setup-nix: it seeds the store from ~/.cargo/registry/cache, running cargo fetch for crates missing there.";
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = checksum;
  };

  derivationAttrs = { };
}
