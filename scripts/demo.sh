#!/usr/bin/env bash
# The README's first command: installs what the demo needs (install-deps.sh
# --demo: a compiler and the daemon's libraries, not the test tools), builds
# nfsd-helper, helper-ctl and the simulated kernel (a FUSE file system playing
# nfsd's four client-tracking files; no patched kernel needed) into
# $DEMO_BUILD_DIR (default: build-demo/, without the tests), and runs a reboot
# story in which one client reclaims and is allowed and one whose lease
# expired is denied. Ends with `helper-ctl dump` of the database it left
# behind.
#
# Run as root (FUSE mounts and package installs). The database and the
# helper's control socket stay in $DEMO_DIR (default: a new directory under
# /tmp), so the demo never touches the machine's own nfsd-helper; the helper's
# log is shown as [helper] lines.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${DEMO_BUILD_DIR:-$top/build-demo}

start=$(date +%s)
"$top/scripts/install-deps.sh" --demo
installed=$(date +%s)
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=OFF -DNFSDH_SIMULATOR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target nfsd-helper helper-ctl nfsd-sim
built=$(date +%s)
echo "demo.sh: installing took $((installed - start)) s, building $((built - installed)) s"

dir=${DEMO_DIR:-$(mktemp -d /tmp/nfsd-helper-demo.XXXXXX)}
mkdir -p "$dir"
echo
echo "== reboot story against the simulated kernel (files in $dir)"
"$build/tests/sim/nfsd-sim" demo --helper "$build/daemon/nfsd-helper" \
  --db "$dir/state.sqlite" --ctl-socket "$dir/ctl.sock"
echo
echo "== helper-ctl dump --db $dir/state.sqlite"
"$build/ctl/helper-ctl" dump --db "$dir/state.sqlite"
