#!/usr/bin/env bash
# Builds and runs the whole test suite in a Release build, then the memory-unsafe layers again
# under AddressSanitizer + UndefinedBehaviorSanitizer (at -O1 -g1: it compiles much faster than
# -O2 -g and still reports file:line). Exits non-zero if any test fails.
#
#   tools/test.sh                 Release: everything; sanitizers: core, ops, kernels, every plugin
#                                 (conformance, loader), trainers (data, checkpoints, dumps, KL)
#   tools/test.sh --sanitize-all  the sanitizer build runs everything too (about 2x longer; CI
#                                 must finish in 15 minutes on 2 cores, so it runs the default)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
sanitized_targets="test_core test_ops test_kernels test_conformance test_plugins test_trainers"
sanitized_tests="^(test_core|test_ops|test_kernels|test_conformance|test_plugins|test_trainers)$"
if [[ ${1:-} == --sanitize-all ]]; then
  sanitized_targets="" sanitized_tests=""
elif [[ $# -gt 0 ]]; then
  echo "unknown option $1 (see the header of $0)" >&2
  exit 2
fi

run_suite() {  # folder, targets ("" = all), ctest regex ("" = all), cmake args...
  local dir=$1 targets=$2 tests=$3
  shift 3
  cmake -S . -B "$dir" "$@" > "$dir.cmake.log" 2>&1 || { cat "$dir.cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs" ${targets:+--target $targets}
  ctest --test-dir "$dir" --output-on-failure -V -j1 ${tests:+-R "$tests"} | grep -vE "^(UpdateCTestConfiguration|Parse Config|Test project|Constructing|Checking test|Updating test|Added test|Test command|Working Directory|Environment variables)" || return 1
}

echo "== Release build and tests =="
run_suite build "" "" -DCMAKE_BUILD_TYPE=Release
echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests (${sanitized_targets:-everything}) =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite build-asan "$sanitized_targets" "$sanitized_tests" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DNANOATTN_SANITIZE=ON
