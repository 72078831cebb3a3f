#!/usr/bin/env bash
# Builds nfsd.ko with a patch series of kernel-patches/ (the four client
# tracking files of nfsdfs-proto/PROTOCOL.md): applies
# kernel-patches/<series>/series to a fresh copy of fs/nfsd from Debian's
# linux-source-<series> and builds it out of tree against linux-headers-<KV>
# of a kernel of that series. Installs nothing; see kernel-patches/README.md.
#
#   scripts/build-kmod.sh [--kernel 6.1|6.12]
#
# --kernel names the kernel series (default 6.1): the patches of
# kernel-patches/<series>/, the source /usr/src/linux-source-<series>.tar.xz
# and the newest installed kernel of that series. The module ends up in
# build-kmod/<series>/nfsd.ko (scripts/vm-test.sh --kernel <series> loads it).
#
# The source, the headers and the installed image of the kernel must be the
# same Debian version (scripts/install-deps.sh installs them so): a module
# built from another version's source may not match the kernel it is
# loaded into, so the build is refused.
#
# Environment:
#   KMOD_KERNEL_VERSION  kernel to build for (default: newest
#                        /boot/vmlinuz-<series>.* with /lib/modules/<KV>/build;
#                        6.1 never picks a 6.12 kernel, nor the reverse)
#   KMOD_BUILD_DIR       output directory (default: <repo>/build-kmod/<series>);
#                        the module ends up in $KMOD_BUILD_DIR/nfsd.ko
#   LINUX_SOURCE         source tarball
#                        (default /usr/src/linux-source-<series>.tar.xz)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
series=6.1
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) series=${2:?--kernel needs a kernel series: 6.1 or 6.12}; shift 2 ;;
    -h | --help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "build-kmod: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$series" in
  6.1 | 6.12) ;;
  *) echo "build-kmod: unknown kernel series '$series' (known: 6.1, 6.12)" >&2; exit 2 ;;
esac
patches=$repo/kernel-patches/$series
out=${KMOD_BUILD_DIR:-$repo/build-kmod/$series}
srcpkg=linux-source-$series
tarball=${LINUX_SOURCE:-/usr/src/$srcpkg.tar.xz}
top=$srcpkg

kv=${KMOD_KERNEL_VERSION:-}
if [ -z "$kv" ]; then
  for k in $(find /boot -maxdepth 1 -name "vmlinuz-$series.*" -printf "%f\n" 2>/dev/null | sed "s/^vmlinuz-//" | sort -V -r); do
    if [ -e "/lib/modules/$k/build/Makefile" ]; then kv=$k; break; fi
  done
fi
missing=()
[ -n "$kv" ] || missing+=("a $series kernel with headers: /boot/vmlinuz-$series.<rest> and /lib/modules/<KV>/build (scripts/install-deps.sh installs them)")
[ -z "$kv" ] || [ -e "/lib/modules/$kv/build/Makefile" ] ||
  missing+=("/lib/modules/$kv/build (package linux-headers-$kv)")
[ -r "$tarball" ] || missing+=("$tarball (package $srcpkg)")
for c in make gcc patch tar xz; do
  command -v "$c" >/dev/null 2>&1 || missing+=("command $c (packages build-essential patch xz-utils)")
done
[ -r "$patches/series" ] || missing+=("$patches/series")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-kmod: FAIL: missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
# The source must be the one the headers and the image were built from, or
# the module may not match the kernel it is loaded into. Debian keeps older
# linux-source-6.12 versions in the archive, and a Debian release of the
# same kernel ABI name (6.1.0-57-amd64) can change the image without
# changing the name.
src_ver=$(dpkg-query -W -f='${Version}' "$srcpkg" 2>/dev/null || echo unknown)
hdr_ver=$(dpkg-query -W -f='${Version}' "linux-headers-$kv" 2>/dev/null || echo unknown)
if [ "$src_ver" != "$hdr_ver" ]; then
  echo "build-kmod: FAIL: $srcpkg is $src_ver but linux-headers-$kv is $hdr_ver; install matching versions (scripts/install-deps.sh)" >&2
  exit 1
fi
img_ver=$(dpkg-query -W -f='${Version}' "linux-image-$kv" 2>/dev/null || true)
if [ -n "$img_ver" ] && [ "$img_ver" != "$src_ver" ]; then
  echo "build-kmod: FAIL: $srcpkg is $src_ver but linux-image-$kv is $img_ver; install matching versions (scripts/install-deps.sh)" >&2
  exit 1
fi

mkdir -p "$out"
start=$(date +%s)
# A pristine extraction is kept and copied for each build (extracting from the
# .tar.xz takes most of the time); it is redone when the tarball changes.
pristine=$out/pristine
stamp="$(stat -c '%s %Y' "$tarball") $src_ver"
if [ "$(cat "$pristine/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "build-kmod: extracting fs/nfsd from $tarball ($src_ver)"
  rm -rf "$pristine"
  mkdir -p "$pristine"
  tar -xJf "$tarball" -C "$pristine" --strip-components=1 --wildcards \
    "$top/fs/nfsd/*" "$top/fs/*.h" "$top/fs/nfs_common/*"
  echo "$stamp" >"$pristine/.stamp"
fi
src=$out/src
rm -rf "$src"
mkdir -p "$src/fs"
cp -r "$pristine/fs/nfsd" "$pristine"/fs/*.h "$src/fs/"
while read -r p; do
  case "$p" in '' | '#'*) continue ;; esac
  if ! patch -p1 -s -d "$src" --no-backup-if-mismatch <"$patches/$p"; then
    echo "build-kmod: FAIL: $series/$p does not apply to $srcpkg $src_ver" >&2
    exit 1
  fi
  echo "build-kmod: applied $series/$p"
done <"$patches/series"

log=$out/build.log
if ! make -C "/lib/modules/$kv/build" M="$src/fs/nfsd" -j2 modules >"$log" 2>&1; then
  grep -E 'error|warning' "$log" | head -40 >&2 || tail -40 "$log" >&2
  echo "build-kmod: FAIL: the module did not build against linux-headers-$kv; full log: $log" >&2
  exit 1
fi
if grep -q 'warning:' "$log"; then
  grep 'warning:' "$log" >&2
  echo "build-kmod: FAIL: the patched module builds with warnings; full log: $log" >&2
  exit 1
fi
cp "$src/fs/nfsd/nfsd.ko" "$out/nfsd.ko"
echo "build-kmod: $out/nfsd.ko for $kv ($(modinfo -F vermagic "$out/nfsd.ko" | cut -d' ' -f1)), built in $(( $(date +%s) - start )) s"
