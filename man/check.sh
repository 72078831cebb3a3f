#!/usr/bin/env bash
# Renders a man page the way man(1) does and fails on any warning groff or
# man prints about it.
set -u
page=$1
warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
if [ -n "$warnings" ]; then
  printf '%s\n' "$warnings" >&2
  echo "check.sh: $page: $(printf '%s\n' "$warnings" | grep -c .) warning(s)" >&2
  exit 1
fi
echo "check.sh: $page: renders without warnings"
