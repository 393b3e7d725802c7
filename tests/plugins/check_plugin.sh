#!/usr/bin/env bash
# `nanoattn check-plugin` fails each deliberately flawed fixture (tests/plugins/fixtures/flawed_*)
# naming the check that catches its flaw, passes the same fixture without a flaw and a bundled
# plugin, and refuses bad arguments with a message naming them.
# Usage: check_plugin.sh <nanoattn binary> <fixture dir> <bundled plugin dir>
set -uo pipefail
nanoattn=$1
fixtures=$2
bundled=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "check_plugin: $*"; status=1; }

# expect_fail <fixture> <check>: exit 1, a FAIL row for <check>, and <check> in the summary.
expect_fail() {
  local so=$fixtures/$1/$1.so log=$work/$1.log
  "$nanoattn" check-plugin "$so" --quick > "$log" 2>&1
  local rc=$?
  if [ $rc -ne 1 ]; then fail "$1: exit code $rc, want 1"; cat "$log"; return; fi
  grep -Eq "^$2 .* FAIL$" "$log" || { fail "$1: no FAIL row for '$2'"; cat "$log"; return; }
  grep -q "FAILED: .*$2" "$log" || { fail "$1: the summary does not name '$2'"; cat "$log"; return; }
  echo "check_plugin: $1 fails '$2': $(grep "FAILED" "$log")"
}
expect_fail leaks_future causality
expect_fail drops_gradient gradient
expect_fail step_lags recurrent
expect_fail state_grows state_bytes

# expect_pass <name> <so> [args]: exit 0 and no FAIL row.
expect_pass() {
  local name=$1 so=$2 log=$work/$1.pass.log
  shift 2
  "$nanoattn" check-plugin "$so" "$@" > "$log" 2>&1 || { fail "$name should pass:"; cat "$log"; return; }
  ! grep -q FAIL "$log" || { fail "$name: a FAIL row in a passing run"; cat "$log"; return; }
  echo "check-plugin: $name passes ($(grep -c ' pass$' "$log") rows)"
}
expect_pass sound "$fixtures/sound/sound.so" --quick
expect_pass linear "$bundled/linear.so" --quick --variant feature_map=elu
cat "$work/linear.pass.log"

# Bad arguments: a missing file, an unknown option, a value of the wrong type.
expect_error() {  # <what the message must contain> <args...>
  local want=$1
  shift
  if "$nanoattn" check-plugin "$@" > "$work/err.log" 2>&1; then fail "check-plugin $* should fail"; return; fi
  grep -q -- "$want" "$work/err.log" || { fail "check-plugin $*: message lacks '$want':"; cat "$work/err.log"; }
}
expect_error "no such file" "$work/missing.so"
expect_error "nope" "$bundled/linear.so" --variant nope=1
expect_error "feature_map" "$bundled/linear.so" --variant feature_map=cubic
expect_error "key=value" "$bundled/linear.so" --variant feature_map
exit $status
