#!/usr/bin/env bash
# Installs the build with `cmake --install BUILD --prefix PREFIX` into a
# DESTDIR and checks that everything lands under the prefix, the unit
# included, and that the unit starts the daemon installed there.
set -u
build=$1
tmp=$(mktemp -d /tmp/nfsdh-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/nfsdh-test
dest=$tmp/dest
fail=0
if ! out=$(DESTDIR=$dest cmake --install "$build" --prefix "$prefix" 2>&1); then
  printf '%s\n' "$out" >&2
  echo "install_test.sh: cmake --install failed" >&2
  exit 1
fi
outside=$(cd "$dest" && find . -type f ! -path ".$prefix/*")
if [ -n "$outside" ]; then
  echo "install_test.sh: installed outside the prefix $prefix:" >&2
  printf '%s\n' "$outside" >&2
  fail=1
fi
unit=$dest$prefix/lib/systemd/system/nfsd-helper.service
if [ ! -f "$unit" ]; then
  echo "install_test.sh: no unit at $prefix/lib/systemd/system" >&2
  fail=1
  unit=$(find "$dest" -name nfsd-helper.service | head -n 1)
fi
if [ -n "$unit" ]; then
  exec_start=$(grep '^ExecStart=' "$unit")
  want="ExecStart=$prefix/sbin/nfsd-helper --foreground"
  if [ "$exec_start" != "$want" ]; then
    echo "install_test.sh: the unit says '$exec_start', want '$want'" >&2
    fail=1
  fi
fi
dropin=$dest$prefix/lib/systemd/system/nfsdcld.service.d/nfsd-helper.conf
if [ ! -f "$dropin" ]; then
  echo "install_test.sh: no nfsdcld drop-in at $prefix/lib/systemd/system/nfsdcld.service.d" >&2
  fail=1
else
  cond=$(grep '^ConditionPathExists=' "$dropin")
  want="ConditionPathExists=!$prefix/sbin/nfsd-helper"
  if [ "$cond" != "$want" ]; then
    echo "install_test.sh: the nfsdcld drop-in says '$cond', want '$want'" >&2
    fail=1
  fi
fi
for f in sbin/nfsd-helper sbin/helper-ctl; do
  if [ ! -x "$dest$prefix/$f" ]; then
    echo "install_test.sh: $prefix/$f is not installed" >&2
    fail=1
  fi
done
[ $fail -eq 0 ] && echo "install_test.sh: everything under $prefix"
exit $fail
