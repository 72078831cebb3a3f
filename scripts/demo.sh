#!/usr/bin/env bash
# The README's first command: installs what nfsd-helper needs, builds it, and
# runs its main job against the simulated kernel (a FUSE file system playing
# nfsd's four client-tracking files; no patched kernel needed): a reboot story
# in which one client reclaims and is allowed and one whose lease expired is
# denied. Ends with `helper-ctl dump` of the database it left behind.
#
# Run as root (FUSE mounts and package installs). The database and the
# helper's log stay in $DEMO_DIR (default: a new directory under /tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

dir=${DEMO_DIR:-$(mktemp -d /tmp/nfsd-helper-demo.XXXXXX)}
mkdir -p "$dir"
echo
echo "== reboot story against the simulated kernel (files in $dir)"
"$build/tests/sim/nfsd-sim" demo --helper "$build/daemon/nfsd-helper" \
  --db "$dir/state.sqlite"
echo
echo "== helper-ctl dump --db $dir/state.sqlite"
"$build/ctl/helper-ctl" dump --db "$dir/state.sqlite"
