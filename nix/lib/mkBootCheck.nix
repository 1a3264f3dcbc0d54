# mkBootCheck :: { image, args ? [ ], expect ? null, timeout ? 30, setup ? "" } -> derivation
#
# Boots a unix image (buildUnikernel) in the build sandbox and succeeds if it exits 0
# within `timeout` seconds and, when `expect` is given, prints that line. Its output is
# kept in $out/log. `setup` (shell) runs first in the image's working directory, for
# examples that need a file to boot on (block: a disk image). Targets that need a
# hypervisor plug their runner in here.
{ toolchain, internal }:
{ image, args ? [ ], expect ? null, timeout ? 30, setup ? "" }:
derivation ({
  name = "${image.name}-boot";
  inherit (toolchain) system;
  builder = toolchain.shell;
  PATH = toolchain.path;
  exe = "${image}/${image.image}";
  expect = if expect == null then "" else expect;
  bootArgs = map toString args;
  inherit setup;
  args = [
    "-euc"
    ''
      mkdir -p "$out" "$NIX_BUILD_TOP/run"
      cd "$NIX_BUILD_TOP/run"
      eval "$setup"
      status=0
      timeout ${toString timeout} "$exe" $bootArgs >"$out/log" 2>&1 || status=$?
      cat "$out/log"
      if [ "$status" != 0 ]; then
        echo "mirage-nix: $exe exited with status $status" >&2; exit 1
      fi
      if [ -n "$expect" ] && ! grep -qF -- "$expect" "$out/log"; then
        echo "mirage-nix: $exe did not print '$expect'" >&2; exit 1
      fi
    ''
  ];
} // (toolchain.derivationAttrs or { }))
