#!/usr/bin/env bash
# Builds nfsd.ko with the patch series of kernel-patches/ (the four client
# tracking files of nfsdfs-proto/PROTOCOL.md): applies kernel-patches/series
# to a fresh copy of fs/nfsd from Debian's linux-source-6.1 and builds it out
# of tree against linux-headers-<KV>. Installs nothing; see
# kernel-patches/README.md.
#
#   scripts/build-kmod.sh
#
# Environment:
#   KMOD_KERNEL_VERSION  kernel to build for (default: newest /boot/vmlinuz-6.1.*
#                        with /lib/modules/<KV>/build: the sources are 6.1's, so
#                        the module is for a 6.1 kernel even when 6.12 is
#                        installed too)
#   KMOD_BUILD_DIR       output directory (default: <repo>/build-kmod); the
#                        module ends up in $KMOD_BUILD_DIR/nfsd.ko
#   LINUX_SOURCE         source tarball (default /usr/src/linux-source-6.1.tar.xz)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
patches=$repo/kernel-patches
out=${KMOD_BUILD_DIR:-$repo/build-kmod}
tarball=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
top=linux-source-6.1

kv=${KMOD_KERNEL_VERSION:-}
if [ -z "$kv" ]; then
  for k in $(find /boot -maxdepth 1 -name "vmlinuz-6.1.*" -printf "%f\n" 2>/dev/null | sed "s/^vmlinuz-//" | sort -V -r); do
    if [ -e "/lib/modules/$k/build/Makefile" ]; then kv=$k; break; fi
  done
fi
missing=()
[ -n "$kv" ] || missing+=("a 6.1 kernel with headers: /boot/vmlinuz-6.1.<KV> and /lib/modules/<KV>/build (packages linux-image-amd64 and linux-headers-<KV>)")
[ -z "$kv" ] || [ -e "/lib/modules/$kv/build/Makefile" ] ||
  missing+=("/lib/modules/$kv/build (package linux-headers-$kv)")
[ -r "$tarball" ] || missing+=("$tarball (package linux-source-6.1)")
for c in make gcc patch tar xz; do
  command -v "$c" >/dev/null 2>&1 || missing+=("command $c (packages build-essential patch xz-utils)")
done
[ -r "$patches/series" ] || missing+=("$patches/series")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-kmod: FAIL: missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
# The source must be the one the headers (and the running image) were built
# from, or the module may not match the kernel it is loaded into.
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
hdr_ver=$(dpkg-query -W -f='${Version}' "linux-headers-$kv" 2>/dev/null || echo unknown)
if [ "$src_ver" != "$hdr_ver" ]; then
  echo "build-kmod: FAIL: linux-source-6.1 is $src_ver but linux-headers-$kv is $hdr_ver; install matching versions" >&2
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
    echo "build-kmod: FAIL: $p does not apply to linux-source-6.1 $src_ver" >&2
    exit 1
  fi
  echo "build-kmod: applied $p"
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
