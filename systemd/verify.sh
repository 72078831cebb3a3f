#!/usr/bin/env bash
# Checks a unit file with systemd-analyze verify. verify exits 0 even when it
# ignores a misspelt key or an invalid value, so any message fails the check.
set -u
unit=$1
out=$(systemd-analyze verify --man=no "$unit" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  echo "verify.sh: $unit: systemd-analyze verify exit $rc, $(printf '%s' "$out" | grep -c .) message(s)" >&2
  exit 1
fi
echo "verify.sh: $unit: clean"
