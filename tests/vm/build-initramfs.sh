#!/usr/bin/env bash
# Builds the test VM's initramfs: static busybox, the virtio/9p/overlay modules
# of kernel KV and tests/vm/init.  Usage: build-initramfs.sh KV OUTPUT.cpio.gz
#
# Which of those drivers are modules, and what they depend on, differs from
# kernel to kernel: 6.1 has virtio and virtio_pci as modules and a separate
# fscache module; 6.12 has virtio built in and fscache merged into netfs. So
# the list is not fixed: it is the modules the roots below need under KV,
# found with modinfo's "depends", each after its dependencies, built-in ones
# left out. The order goes into /modules/order, which /init loads in turn.
set -euo pipefail
kv=${1:?usage: build-initramfs.sh KV OUTPUT}
out=${2:?usage: build-initramfs.sh KV OUTPUT}
here=$(cd "$(dirname "$0")" && pwd)
# What /init needs: the virtio PCI transport, 9p over virtio, and overlayfs.
roots=(virtio_pci 9pnet_virtio 9p overlay)

busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-initramfs: $busybox is not the static busybox (package busybox-static)" >&2
  exit 1
fi

stage="$out.d"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,modules,newroot}
cp "$busybox" "$stage/bin/busybox"

order=()
declare -A seen=()
# add MODULE: its dependencies first, then itself (unless built in).
add() {
  local m=$1 f d
  [ -z "${seen[$m]:-}" ] || return 0
  seen[$m]=1
  f=$(modinfo -k "$kv" -F filename "$m" 2>/dev/null || true)
  case "$f" in
    "")
      echo "build-initramfs: module $m not found for kernel $kv (neither a module nor built in)" >&2
      exit 1 ;;
    "(builtin)") return 0 ;;
  esac
  for d in $(modinfo -k "$kv" -F depends "$m" | tr ',' ' '); do add "$d"; done
  case "$f" in
    *.ko) cp "$f" "$stage/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$stage/modules/$m.ko" ;;
    *.ko.zst) zstd -dqc "$f" >"$stage/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$stage/modules/$m.ko" ;;
    *) echo "build-initramfs: unexpected module file $f" >&2; exit 1 ;;
  esac
  order+=("$m")
}
for m in "${roots[@]}"; do add "$m"; done
printf '%s\n' "${order[@]}" >"$stage/modules/order"
install -m 0755 "$here/init" "$stage/init"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$stage"
echo "build-initramfs: kernel $kv, modules: ${order[*]:-none (all built in)}"
