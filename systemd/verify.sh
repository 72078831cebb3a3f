#!/usr/bin/env bash
# Checks a unit file with systemd-analyze verify, with the drop-ins named
# after it (verify.sh UNIT [DROPIN...]: each is put in UNIT.d/ beside a copy
# of the unit, found through SYSTEMD_UNIT_PATH). verify exits 0 even when it
# ignores a misspelt key or an invalid value, so any message fails the check.
set -u
unit=$1
shift
name=$(basename "$unit")
what=$unit
if [ $# -gt 0 ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  cp "$unit" "$dir/$name"
  mkdir "$dir/$name.d"
  for d in "$@"; do cp "$d" "$dir/$name.d/"; done
  unit=$dir/$name
  what="$what with $*"
  export SYSTEMD_UNIT_PATH="$dir:"
fi
out=$(systemd-analyze verify --man=no "$unit" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  echo "verify.sh: $what: systemd-analyze verify exit $rc, $(printf '%s' "$out" | grep -c .) message(s)" >&2
  exit 1
fi
echo "verify.sh: $what: clean"
