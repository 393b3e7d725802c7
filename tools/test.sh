#!/usr/bin/env bash
# Builds and runs the whole test suite twice: an optimised build, then one under
# AddressSanitizer + UndefinedBehaviorSanitizer (at -O1 -g1: it compiles much faster than -O2 -g
# and still reports file:line). Exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_suite() {  # folder, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" > "$dir.cmake.log" 2>&1 || { cat "$dir.cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -V -j1 | grep -vE "^(UpdateCTestConfiguration|Parse Config|Test project|Constructing|Checking test|Updating test|Added test|Test command|Working Directory|Environment variables)" || return 1
}

echo "== Release build and tests =="
run_suite build -DCMAKE_BUILD_TYPE=Release
echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DNANOATTN_SANITIZE=ON
