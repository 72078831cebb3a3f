#!/usr/bin/env bash
# Installs the Debian packages nfsd-helper needs. Idempotent; run as root on
# Debian 12.
#
#   install-deps.sh          everything: build, run and every test
#                            (scripts/test.sh, CI)
#   install-deps.sh --demo   only what scripts/demo.sh needs: a compiler and
#                            the libraries of the daemon, helper-ctl and the
#                            simulated kernel (FUSE)
set -euo pipefail

# scripts/demo.sh: builds nfsd-helper, helper-ctl and tests/sim/nfsd-sim
# (cmake -DBUILD_TESTING=OFF -DNFSDH_SIMULATOR=ON) and runs the simulator.
demo=(
  build-essential cmake pkg-config
  libevent-dev libsqlite3-dev
  libnfsidmap-dev
  libsystemd-dev
  libtirpc-dev rpcsvc-proto
  libcap-ng-dev
  nlohmann-json3-dev
  # The etcd client of the cluster mode (daemon/etcd/): libcurl for etcd's
  # JSON gateway, OpenSSL's libcrypto for the gateway's base64.
  libcurl4-openssl-dev libssl-dev
  libfuse3-dev fuse3
)
# Everything else is for the tests (scripts/test.sh).
tests=(
  catch2
  # The QEMU tests read the databases (tests/vm/guest/).
  sqlite3
  # systemd-analyze verify (systemd/verify.sh).
  systemd
  # Debian's nfsdcld: the reference tracker of the cld tests
  # (tests/sim/cld_pipe_story.h) and of the QEMU tests.
  nfs-kernel-server
  # The man pages render without a warning (man/check.sh).
  man-db groff-base
  # scripts/vm-test.sh: Debian's own kernels under QEMU (tests/vm/README.md;
  # the kernels themselves are in kernel_sets below).
  qemu-system-x86 busybox-static cpio python3
  # scripts/build-kmod.sh: the patched nfsd.ko of kernel-patches/.
  patch xz-utils
  # scripts/fuzz.sh: clang with libFuzzer and its sanitizer runtimes
  # (libclang-rt-14-dev, not pulled in without recommends), and
  # llvm-symbolizer (llvm) for readable sanitizer stack traces.
  clang libclang-rt-14-dev llvm
  # scripts/build.sh: clang-tidy in the build (.clang-tidy).
  clang-tidy
  # scripts/bench.sh: perf counts the trackers' fsync calls (tests/bench/).
  linux-perf
  # scripts/build-deb.sh: the Debian package (debian/), built with
  # dpkg-buildpackage and checked with lintian.
  debhelper dpkg-dev fakeroot lintian
  # The cluster tests start their own etcd members on loopback
  # (tests/etcd/etcd_cluster.h); etcdctl is for looking at them by hand.
  etcd-server etcd-client
)

# The kernels the QEMU tests boot (scripts/vm-test.sh --kernel 6.1|6.12),
# each with the headers and the source scripts/build-kmod.sh builds its
# patched nfsd.ko from. The three of a set are installed at one Debian
# version, the candidate of the image's meta-package: the archive keeps
# older linux-source-6.12 versions and may publish a source before the
# image (linux-source-6.12 6.12.118 next to linux-image-6.12-amd64
# 6.12.117), and a module built from another version's source may not
# match the kernel it is loaded into. The meta-packages depend on their
# kernel's image and headers at exactly their own version. The host keeps
# booting its own kernel; only the QEMU guest boots these.
kernel_sets=(
  "linux-image-amd64 linux-headers-amd64 linux-source-6.1"
  "linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12"
)

case "${1:-}" in
  "") packages=("${demo[@]}" "${tests[@]}") ;;
  --demo) packages=("${demo[@]}"); kernel_sets=() ;;
  *)
    echo "usage: install-deps.sh [--demo]" >&2
    exit 2
    ;;
esac

installed_version() {
  dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null |
    sed -n 's/^install ok installed //p'
}
candidate() {
  apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}
# Sets pins to PACKAGE=VERSION for every package of a kernel set that is
# not installed at its image's candidate version; pins_unknown to the
# images apt knows no candidate of.
kernel_pins() {
  pins=()
  pins_unknown=()
  local set image want p
  for set in "${kernel_sets[@]}"; do
    image=${set%% *}
    want=$(candidate "$image")
    if [ -z "$want" ]; then
      pins_unknown+=("$image")
      continue
    fi
    for p in $set; do
      [ "$(installed_version "$p")" = "$want" ] || pins+=("$p=$want")
    done
  done
}

missing=()
for p in "${packages[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
kernel_pins
count=$((${#packages[@]} + 3 * ${#kernel_sets[@]}))
if [ ${#missing[@]} -eq 0 ] && [ ${#pins[@]} -eq 0 ] && [ ${#pins_unknown[@]} -eq 0 ]; then
  kernels=
  for set in "${kernel_sets[@]}"; do
    kernels+=" ${set%% *}=$(installed_version "${set%% *}")"
  done
  echo "install-deps: all $count packages present${kernels:+ (kernel sets at their image version:$kernels)}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} ${pins[*]} ${pins_unknown[*]}; run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages such as nfs-kernel-server start their services when installed.
# Where no init system runs them (a container, a build machine), forbid the
# start for the duration of the install, as Debian's policy-rc.d allows.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ "$(ps -p 1 -o comm= 2>/dev/null)" != systemd ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
# The candidates again, as the update may have changed them.
kernel_pins
if [ ${#pins_unknown[@]} -gt 0 ]; then
  echo "install-deps: apt knows no version of ${pins_unknown[*]} (Debian 12 with bookworm-security in its sources is needed)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]} ${pins[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}" "${pins[@]}"
# etcd-server enables and starts a single-member etcd on 127.0.0.1:2379
# under systemd. The tests start their own members; a database service the
# tests did not ask for is not left running where this script installed it.
if [[ " ${missing[*]} " == *" etcd-server "* ]] &&
  [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
  echo "install-deps: etcd-server installed for the tests only: disabling its etcd.service"
  systemctl disable --now etcd.service || true
fi
