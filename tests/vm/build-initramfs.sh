#!/usr/bin/env bash
# Builds the test VM's initramfs: static busybox, the virtio/9p/overlay modules
# of kernel KV and tests/vm/init.  Usage: build-initramfs.sh KV OUTPUT.cpio.gz
set -euo pipefail
kv=${1:?usage: build-initramfs.sh KV OUTPUT}
out=${2:?usage: build-initramfs.sh KV OUTPUT}
here=$(cd "$(dirname "$0")" && pwd)
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  9pnet netfs fscache 9pnet_virtio 9p overlay)

busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-initramfs: $busybox is not the static busybox (package busybox-static)" >&2
  exit 1
fi

stage="$out.d"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,modules,newroot}
cp "$busybox" "$stage/bin/busybox"
for m in "${modules[@]}"; do
  f=$(modinfo -k "$kv" -F filename "$m" 2>/dev/null || true)
  case "$f" in
    "" | "(builtin)")
      # Built into this kernel: nothing to load, but /init insmods it, so fail loudly.
      echo "build-initramfs: module $m not found for kernel $kv" >&2
      exit 1 ;;
    *.ko) cp "$f" "$stage/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$stage/modules/$m.ko" ;;
    *.ko.zst) zstd -dqc "$f" >"$stage/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$stage/modules/$m.ko" ;;
    *) echo "build-initramfs: unexpected module file $f" >&2; exit 1 ;;
  esac
done
install -m 0755 "$here/init" "$stage/init"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$stage"
