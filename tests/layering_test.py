#!/usr/bin/env python3
"""Checks that no #include runs back up the layering.

Every C++ source of the project belongs to a module (a folder, or one of a
few files that stand alone); each module may include only itself and the
modules listed for it below, which are all beneath it. Tests (*_test.cc and
everything under tests/) may include anything.

    python3 tests/layering_test.py [SOURCE_DIR]

Prints each include that breaks the rules and exits 1 if there is any.
"""

import os
import re
import sys

# The leaves: they include nothing of the project, and every other module
# may include them (nfsdfs-proto's EscapeForLog is how every log line
# shows bytes from outside).
BASE = ["nfsdfs-proto", "common"]

# From the bottom up. A module may include the modules named for it, and
# BASE.
ALLOWED = {
    "nfsdfs-proto": [],
    "common": [],
    "control-proto": [],
    "daemon/util": ["common"],
    "daemon/recovery": [],
    "daemon/stats.h": ["daemon/util"],
    "daemon/options": ["common", "daemon/util"],
    "daemon/store": ["common", "daemon/util", "daemon/recovery"],
    "daemon/tracker": ["daemon/store", "daemon/recovery", "daemon/util",
                       "daemon/stats.h"],
    "daemon/config": ["common", "daemon/util", "daemon/options"],
    "daemon/migrate": ["common", "daemon/util", "daemon/store",
                       "daemon/recovery", "daemon/tracker", "nfsdfs-proto"],
    "daemon/loop": ["daemon/util"],
    "daemon/etcd": ["common", "daemon/util", "daemon/store", "daemon/options"],
    "daemon/channels": ["daemon/tracker", "daemon/store", "daemon/recovery",
                        "daemon/util", "daemon/stats.h", "daemon/loop",
                        "nfsdfs-proto"],
    "daemon/batch": ["daemon/channels", "daemon/tracker", "daemon/store",
                     "daemon/recovery", "daemon/util", "daemon/stats.h",
                     "nfsdfs-proto"],
    "daemon/callout": ["daemon/store", "daemon/util", "daemon/loop"],
    "daemon/idmap": ["common", "daemon/util", "daemon/options",
                     "daemon/config", "daemon/loop"],
    "daemon/control": ["common", "control-proto", "daemon/tracker",
                       "daemon/store", "daemon/recovery", "daemon/util",
                       "daemon/stats.h", "daemon/idmap", "daemon/loop",
                       "nfsdfs-proto"],
    # The daemon itself (daemon.cc, main.cc) ties everything of daemon/.
    "daemon": ["common", "nfsdfs-proto", "control-proto", "daemon/*"],
    # helper-ctl may use the daemon's libraries, never the daemon's serving
    # parts (its loop, channels, batches, control procedures).
    "ctl": ["common", "control-proto", "nfsdfs-proto", "daemon/util",
            "daemon/recovery", "daemon/store", "daemon/tracker",
            "daemon/migrate", "daemon/config", "daemon/options",
            "daemon/etcd", "daemon/stats.h", "daemon/idmap/idmap_stats.h"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    """The module of a project path ("daemon/store/store.h"), or None."""
    parts = path.split("/")
    if parts[0] in ("nfsdfs-proto", "common", "control-proto", "ctl"):
        return parts[0]
    if parts[0] != "daemon":
        return None
    if len(parts) == 2:
        if parts[1] == "stats.h":
            return "daemon/stats.h"
        if parts[1].startswith("options"):
            return "daemon/options"
        return "daemon"
    return "daemon/" + parts[1]


def allowed(src_mod, inc_path):
    inc_mod = module_of(inc_path)
    if inc_mod is None or inc_mod == src_mod:
        return inc_mod == src_mod
    rules = ALLOWED.get(src_mod, [])
    if src_mod not in BASE:
        rules = rules + BASE
    for a in rules:
        if a == inc_mod or inc_path == a or inc_path.startswith(a + "/"):
            return True
        if a == "daemon/*" and inc_path.startswith("daemon/"):
            return True
    return False


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    bad = []
    unknown = set()
    checked = 0
    for root in ("nfsdfs-proto", "common", "control-proto", "daemon", "ctl"):
        for dirpath, _, files in os.walk(os.path.join(top, root)):
            for name in files:
                if not name.endswith((".cc", ".h")) or name.endswith(
                        "_test.cc"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), top)
                mod = module_of(rel)
                if mod not in ALLOWED:
                    unknown.add(mod)
                    continue
                with open(os.path.join(top, rel), encoding="utf-8") as f:
                    text = f.read()
                checked += 1
                for inc in INCLUDE.findall(text):
                    # Includes of the project start with one of its folders;
                    # others ("nfsdh_ctl.h" inside control-proto) are local.
                    if "/" not in inc:
                        continue
                    if not allowed(mod, inc):
                        bad.append("%s (%s) includes %s (%s)" %
                                   (rel, mod, inc, module_of(inc)))
    for m in sorted(unknown, key=str):
        bad.append("module %s has no rule in tests/layering_test.py" % m)
    for b in bad:
        print("layering: " + b)
    print("layering: %d files checked, %d problem(s)" % (checked, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
