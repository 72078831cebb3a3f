#!/usr/bin/env bash
# Every build dependency debian/control declares is one that
# scripts/install-deps.sh installs for the demo (which builds the same
# programs), so the package, the demo and CI build with the same libraries.
set -u
top=$1
deps=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$top/debian/control" |
  sed -e '$d' -e 's/^Build-Depends://' | tr ',' '\n' |
  sed -e 's/([^)]*)//g' -e 's/<[^>]*>//g' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' |
  grep -v '^$' | grep -v '^debhelper-compat')
demo=$(sed -n '/^demo=(/,/^)/p' "$top/scripts/install-deps.sh")
fail=0
n=0
for d in $deps; do
  n=$((n + 1))
  if ! grep -qw -- "$d" <<<"$demo"; then
    echo "deps_test.sh: debian/control builds with $d, which install-deps.sh --demo does not install" >&2
    fail=1
  fi
done
[ "$n" -gt 5 ] || { echo "deps_test.sh: read only $n build dependencies from debian/control" >&2; fail=1; }
[ $fail -eq 0 ] && echo "deps_test.sh: all $n build dependencies of debian/control are in install-deps.sh --demo"
exit $fail
