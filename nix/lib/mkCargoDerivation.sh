# Builder of mkCargoDerivation (see mkCargoDerivation.nix). Runs under the toolchain's
# bash with `set -e`; PATH, the texts and the layout come from the derivation.
set -euo pipefail
top=$NIX_BUILD_TOP
export HOME="$top/home" CARGO_HOME="$top/cargo-home"
export CARGO_TARGET_DIR="$top/target" CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
export CARGO_BUILD_JOBS="${NIX_BUILD_CORES:-1}" SOURCE_DATE_EPOCH=1
[ "${CARGO_BUILD_JOBS}" = 0 ] && export CARGO_BUILD_JOBS=1
# The target's flags, one a line, as cargo sees them: `@top@` stands for the build
# directory, so cargo's hashes of the flags (in every crate's -C metadata, hence in symbol
# names and code layout) do not depend on where the build runs. The wrapper below, which
# cargo does not hash, puts in the real directory and remaps it to /build: one path for
# every build, in the sandbox or not, so outputs never name the build directory.
flags=()
while IFS= read -r f; do [ -z "$f" ] || flags+=("$f"); done <<<"${extraRustflags:-}"
CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f' && echo "${flags[*]}")
export CARGO_ENCODED_RUSTFLAGS
unset RUSTFLAGS
cat >"$top/rustc-wrapper" <<WRAPPER
#!$BASH
rustc=\$1
shift
args=()
for a in "\$@"; do args+=("\${a//@top@/$top}"); done
exec "\$rustc" "\${args[@]}" "--remap-path-prefix=$top=/build"
WRAPPER
chmod +x "$top/rustc-wrapper"
export RUSTC_WRAPPER="$top/rustc-wrapper"
mkdir -p "$HOME" "$CARGO_HOME" "$top/src"
[ -z "${extraPath:-}" ] || export PATH="$extraPath:$PATH"

echo "mirage-nix: toolchain: ${MIRAGE_NIX_TOOLCHAIN%%$'\n'*}"

# 1. The workspace.
cp "$rootManifestPath" "$top/src/Cargo.toml"
cp "$cargoLockPath" "$top/src/Cargo.lock"
while read -r dir times src dummies || [ -n "${dir:-}" ]; do
  [ -n "$dir" ] || continue
  mkdir -p "$top/src/$dir"
  # "fresh": cp without -p, sources get the build's time, newer than any restored
  # artifact, so cargo recompiles the crate (and trusts the registry crates it has).
  # "keep": the store's timestamps (1), not newer than the restored artifacts of this
  # very source (the workspace layer's), so cargo reuses them.
  keep=()
  [ "$times" = keep ] && keep=(--preserve=timestamps)
  if [ -d "$src" ]; then cp -r "${keep[@]}" "$src/." "$top/src/$dir/"; else cp "${keep[@]}" "$src" "$top/src/$dir/Cargo.toml"; fi
  chmod -R u+w "$top/src/$dir"
  IFS=, read -ra files <<<"$dummies"
  for f in "${files[@]}"; do
    mkdir -p "$(dirname "$top/src/$dir/$f")"
    case "$f" in
      build.rs | */main.rs | src/bin/*) echo 'fn main() {}' >"$top/src/$dir/$f" ;;
      *) printf '%s\n' '//! Stand-in code: the dependency layer compiles what this crate uses.' \
        '#![no_std]' >"$top/src/$dir/$f" ;;
    esac
  done
done <"$crateLayoutPath"

# 2. Vendored crates, offline.
ln -s "$vendorDir" "$top/vendor"
cat >"$CARGO_HOME/config.toml" <<TOML
[source.crates-io]
replace-with = "vendored-sources"
[source.vendored-sources]
directory = "$top/vendor"
[net]
offline = true
TOML

# 3. Artifacts of an earlier layer.
if [ -n "$cargoArtifacts" ]; then
  cp -a "$cargoArtifacts/target" "$CARGO_TARGET_DIR"
  chmod -R u+w "$CARGO_TARGET_DIR"
fi

# 4. Build and install.
cd "$top/src"
eval "$buildPhase"
eval "$installPhase"
