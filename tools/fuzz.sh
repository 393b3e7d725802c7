#!/usr/bin/env bash
# libFuzzer on the experiment loader and the --set parser (docs/FUZZING.md).
#
#   tools/fuzz.sh HARNESS [SECONDS]   build (if needed) and fuzz one harness for SECONDS (default
#                                     60), in one process; HARNESS: experiment | set
#   tools/fuzz.sh build               only configure and build the fuzz targets
#
# The build is a separate clang-14 tree, build-fuzz/ (every object compiled with
# -fsanitize=fuzzer-no-link,address,undefined, the harnesses linked with -fsanitize=fuzzer);
# CMAKE_CXX_COMPILER_LAUNCHER=ccache in the environment is honoured. The corpus grows in
# build-fuzz/corpus/HARNESS, started from tests/fuzz/regressions/HARNESS (read only); a crash,
# leak, undefined behaviour, an exception other than na::Error or an input slower than
# FUZZ_TIMEOUT seconds (default 5) stops the run and leaves the input in
# build-fuzz/artifacts/HARNESS/: fix it, then keep it as a regression input
# (tests/fuzz/regressions/HARNESS/, replayed by `ctest -R fuzz_regressions`).
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${1:-}
seconds=${2:-60}
case $harness in
  experiment | set | build) ;;
  *) echo "usage: $0 experiment|set [SECONDS] | build" >&2; exit 2 ;;
esac

# clang-14 and its compiler-rt (libclang_rt.fuzzer, the sanitizers' runtimes): Debian 12's
# clang-14 and libclang-rt-14-dev. Not in tools/setup.sh: only fuzzing needs them.
missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

dir=build-fuzz
if [ ! -f $dir/CMakeCache.txt ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B $dir -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" \
    -DNANOATTN_SANITIZE=ON -DNANOATTN_FUZZ=ON -DNANOATTN_BUILD_TESTS=OFF > $dir.cmake.log 2>&1 ||
    { cat $dir.cmake.log; exit 1; }
fi
cmake --build $dir -j"$(nproc)" --target fuzz_experiment fuzz_set
[ "$harness" = build ] && exit 0

corpus=$dir/corpus/$harness
artifacts=$dir/artifacts/$harness
mkdir -p "$corpus" "$artifacts"
log=$dir/fuzz-$harness.log
echo "fuzz: $harness for $seconds s; corpus $corpus, findings in $artifacts/, log $log"
status=0
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  $dir/bin/fuzz_$harness -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb=2048 \
  -max_len=16384 -print_final_stats=1 -dict=tests/fuzz/$harness.dict -artifact_prefix="$artifacts/" \
  "$corpus" tests/fuzz/regressions/$harness 2>&1 | tee "$log" || status=$?
if [ $status -ne 0 ]; then
  echo "fuzz: FINDING (exit $status): see $log and the input in $artifacts/; replay it with" \
       "$dir/bin/fuzz_$harness FILE" >&2
  exit $status
fi
