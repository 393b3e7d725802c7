#!/usr/bin/env bash
# tools/setup.sh installs every Debian package that this configured and built tree uses
# (tools/check_setup_packages.py), and the check is not one that cannot fail: without
# nlohmann-json3-dev in a copy of setup.sh it must fail, naming that package.
# Usage: setup_packages.sh <build folder>
set -euo pipefail
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 "$top/tools/check_setup_packages.py" "$build"

grep -v 'nlohmann-json3-dev' "$top/tools/setup.sh" > "$work/setup.sh"
if /usr/bin/python3 "$top/tools/check_setup_packages.py" "$build" --setup "$work/setup.sh" > "$work/out.txt"; then
  echo "FAIL: the check passed with nlohmann-json3-dev removed from setup.sh"; cat "$work/out.txt"; exit 1
fi
grep -q "package 'nlohmann-json3-dev' is used but" "$work/out.txt" || {
  echo "FAIL: the check failed without naming nlohmann-json3-dev"; cat "$work/out.txt"; exit 1; }
echo "without nlohmann-json3-dev in setup.sh the check fails as it should, with:"
grep nlohmann "$work/out.txt" | sed 's/^FAIL: /  /'
