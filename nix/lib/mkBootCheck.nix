# mkBootCheck :: { image, args ? [ ], expect ? null, timeout ? 30 } -> derivation
#
# Boots a unix image (buildUnikernel) in the build sandbox and succeeds if it exits 0
# within `timeout` seconds and, when `expect` is given, prints that line. Its output is
# kept in $out/log. Targets that need a hypervisor plug their runner in here.
{ toolchain, internal }:
{ image, args ? [ ], expect ? null, timeout ? 30 }:
derivation ({
  name = "${image.name}-boot";
  inherit (toolchain) system;
  builder = toolchain.shell;
  PATH = toolchain.path;
  exe = "${image}/${image.image}";
  expect = if expect == null then "" else expect;
  bootArgs = map toString args;
  args = [
    "-euc"
    ''
      mkdir -p "$out"
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
