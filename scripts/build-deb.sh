#!/usr/bin/env bash
# Builds the Debian package of nfsd-helper from the working tree with
# `dpkg-buildpackage -us -uc -b` and checks it with lintian.
#
#   scripts/build-deb.sh
#
# The tree (the files git knows, as they are now) is copied to
# $DEB_BUILD_DIR/src (default: build-deb/src), so the build leaves nothing
# in the source tree; the .deb, the -dbgsym .deb, the .buildinfo and
# .changes land in $DEB_BUILD_DIR, lintian's report in
# $DEB_BUILD_DIR/lintian.txt. Fails if the build fails or lintian reports
# an error (E:); warnings and informational tags are printed and kept.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${DEB_BUILD_DIR:-$top/build-deb}

for tool in dpkg-buildpackage dh lintian fakeroot; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-deb: $tool is missing (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done

rm -rf "$out"
mkdir -p "$out/src"
# The files git tracks, plus new ones not yet committed (not ignored).
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 cp --parents -t "$out/src")
cd "$out/src"
start=$(date +%s)
DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=$(nproc)} \
  dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1 || {
  tail -n 40 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
  exit 1
}
echo "build-deb: built in $(($(date +%s) - start)) s:"
(cd "$out" && ls -1 ./*.deb | sed 's|^\./|  |')

changes=$(ls "$out"/*.changes)
# --fail-on error: only errors fail. The warnings the package means to have
# are overridden, each with its reason, in debian/nfsd-helper.lintian-overrides;
# what else lintian says is printed and kept in lintian.txt.
if lintian --fail-on error --display-info --tag-display-limit 0 "$changes" \
  >"$out/lintian.txt" 2>&1; then
  rc=0
else
  rc=$?
fi
if [ -s "$out/lintian.txt" ]; then
  echo "build-deb: lintian:"
  sed 's/^/  /' "$out/lintian.txt"
else
  echo "build-deb: lintian: no tags"
fi
if [ $rc -ne 0 ]; then
  echo "build-deb: lintian reports errors" >&2
  exit 1
fi
