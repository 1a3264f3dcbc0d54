# mkBootCheck :: { image, args ? [ ], expect ? null, timeout ? 30, setup ? "", probe ? null,
#                  runner ? null, success ? 0 } -> derivation
#
# Boots a unix image (buildUnikernel) in the build sandbox. Without `probe` it succeeds if
# the image exits 0 within `timeout` seconds and, when `expect` is given, prints that line.
# With `probe` (shell), for servers that do not exit: it starts the image, waits up to
# `timeout` seconds for `expect` in its output, runs `probe` (e.g. an HTTP request over
# the sandbox's loopback), stops the image and succeeds if the probe did. The output is
# kept in $out/log (and the probe's in $out/probe). `setup` (shell) runs first in the
# image's working directory, for examples that need a file to boot on (block: a disk
# image). Targets that need a hypervisor plug their runner in here: `runner` (shell) starts
# the image `$exe` with its arguments `$bootArgs` (default: run it as a process), and
# `success` is the exit status that means the unikernel succeeded.
{ toolchain, internal }:
{ image, args ? [ ], expect ? null, timeout ? 30, setup ? "", probe ? null, runner ? null, success ? 0 }:
derivation ({
  name = "${image.name}-boot";
  inherit (toolchain) system;
  builder = toolchain.shell;
  PATH = toolchain.path;
  exe = "${image}/${image.image}";
  expect = if expect == null then "" else expect;
  bootArgs = map toString args;
  probe = if probe == null then "" else probe;
  runner = if runner == null then ''"$exe" $bootArgs'' else runner;
  success = toString success;
  inherit setup;
  args = [
    "-euc"
    ''
      mkdir -p "$out" "$NIX_BUILD_TOP/run"
      cd "$NIX_BUILD_TOP/run"
      eval "$setup"
      if [ -z "$probe" ]; then
        status=0
        timeout ${toString timeout} sh -c "$runner" >"$out/log" 2>&1 || status=$?
        cat "$out/log"
        if [ "$status" != "$success" ]; then
          echo "mirage-nix: $exe exited with status $status" >&2; exit 1
        fi
        if [ -n "$expect" ] && ! grep -qF -- "$expect" "$out/log"; then
          echo "mirage-nix: $exe did not print '$expect'" >&2; exit 1
        fi
      else
        "$exe" $bootArgs >"$out/log" 2>&1 &
        pid=$!
        waited=0
        until grep -qF -- "$expect" "$out/log"; do
          if ! kill -0 "$pid" 2>/dev/null; then
            cat "$out/log"; echo "mirage-nix: $exe exited before printing '$expect'" >&2; exit 1
          fi
          if [ "$waited" -ge ${toString (timeout * 10)} ]; then
            cat "$out/log"; kill "$pid"; echo "mirage-nix: $exe did not print '$expect' in ${toString timeout} s" >&2; exit 1
          fi
          sleep 0.1; waited=$((waited + 1))
        done
        status=0
        (eval "$probe") >"$out/probe" 2>&1 || status=$?
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        cat "$out/log" "$out/probe"
        if [ "$status" != 0 ]; then
          echo "mirage-nix: the probe of $exe failed (status $status)" >&2; exit 1
        fi
      fi
    ''
  ];
} // (toolchain.derivationAttrs or { }))
