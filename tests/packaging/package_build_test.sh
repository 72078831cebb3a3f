#!/usr/bin/env bash
# The build a distribution package does, on a machine without the test
# dependencies: the source tree is configured into a temporary directory with
# -DBUILD_TESTING=OFF -DNFSDH_SIMULATOR=OFF, find_package(Catch2) disabled and
# fuse3 hidden from pkg-config, and the daemon and helper-ctl are built (as
# debhelper does, CMAKE_BUILD_TYPE=None: no optimisation, which keeps this
# quick). Checks that neither the test binary nor the simulator is a target.
set -u
src=$1
tmp=$(mktemp -d /tmp/nfsdh-package-build-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "package_build_test.sh: $*" >&2
  exit 1
}

# pkg-config sees every .pc file of this machine but FUSE's.
pc=$tmp/pkgconfig
mkdir "$pc"
IFS=: read -ra dirs <<<"$(pkg-config --variable pc_path pkg-config)"
for d in "${dirs[@]}"; do
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    case ${f##*/} in fuse.pc | fuse3.pc) continue ;; esac
    [ -e "$pc/${f##*/}" ] || ln -s "$f" "$pc/"
  done
done
export PKG_CONFIG_LIBDIR=$pc
unset PKG_CONFIG_PATH
pkg-config --exists fuse3 && fail "fuse3 is still visible to pkg-config"
pkg-config --exists sqlite3 || fail "hiding fuse3 hid sqlite3 too"

build=$tmp/build
if ! out=$(cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=None \
  -DBUILD_TESTING=OFF -DNFSDH_SIMULATOR=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON 2>&1); then
  printf '%s\n' "$out" >&2
  fail "configuring without Catch2 and FUSE failed"
fi
targets=$(cmake --build "$build" --target help 2>&1)
for t in nfsd-helper-tests nfsd-helper-scenario-tests nfsd-sim nfsd_sim; do
  if printf '%s\n' "$targets" | grep -qw -- "$t"; then
    fail "$t is a target with BUILD_TESTING=OFF and NFSDH_SIMULATOR=OFF"
  fi
done
if ! out=$(cmake --build "$build" -j"$(nproc)" \
  --target nfsd-helper helper-ctl 2>&1); then
  printf '%s\n' "$out" >&2
  fail "building nfsd-helper and helper-ctl failed"
fi
for f in daemon/nfsd-helper ctl/helper-ctl; do
  [ -x "$build/$f" ] || fail "$f was not built"
done
echo "package_build_test.sh: nfsd-helper and helper-ctl built without Catch2 and FUSE"
