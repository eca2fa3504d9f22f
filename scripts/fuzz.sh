#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes every file decoder of data/ with libFuzzer (+ ASan + UBSan): safetensors, npy, idx (incl.
# gzip), cifar, png, jpeg. See docs/fuzzing.md.
#   bash scripts/fuzz.sh [SECONDS]    (default 20 s per target)
# Environment: TARGETS="png jpeg" (a subset), JOBS (build jobs, default 2), BUILD_DIR (default
# build-fuzz), CXX (default clang++, else clang++-14), FUZZ_ARGS (extra libFuzzer flags).
# Each target runs on a COPY of fuzz/corpus/<target> (BUILD_DIR/run/<target>/corpus), so the
# committed corpus is never modified. Exits 1 after any finding (crash, sanitizer report, uncaught
# exception, timeout, out-of-memory, leak) and prints the reproducer's path and the command that
# replays it; exit 2 when the toolchain is missing. Installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
DURATION=${1:-20}
if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 1 ]; then
  echo "usage: $0 [SECONDS]   (seconds per target, a positive integer; got '$DURATION')" >&2
  exit 2
fi
ALL_TARGETS="safetensors npy idx cifar png jpeg"
TARGETS=${TARGETS:-$ALL_TARGETS}
JOBS=${JOBS:-2}
BUILD_DIR=${BUILD_DIR:-build-fuzz}

# ---- toolchain: clang++ with the libFuzzer runtime, cmake ----------------------------------------
missing() {
  echo "fuzz.sh: $1" >&2
  echo "fuzz.sh: install clang with libFuzzer, e.g. on Debian/Ubuntu: sudo apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
}
if [ -z "${CXX:-}" ]; then
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then CXX=$c; break; fi
  done
fi
{ [ -n "${CXX:-}" ] && command -v "$CXX" >/dev/null 2>&1; } || missing "no clang++ found (set CXX to a clang++ with libFuzzer)"
"$CXX" --version 2>/dev/null | grep -qi clang || missing "CXX=$CXX is not clang (libFuzzer needs clang)"
command -v cmake >/dev/null 2>&1 || { echo "fuzz.sh: cmake not found (Debian: apt-get install cmake)" >&2; exit 2; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n' \
  >"$probe/probe.cpp"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" >"$probe/log" 2>&1; then
  cat "$probe/log" >&2
  missing "$CXX cannot link -fsanitize=fuzzer,address,undefined: the libFuzzer/sanitizer runtime is missing"
fi

# ---- build ------------------------------------------------------------------------------------------
cmake -S fuzz -B "$BUILD_DIR" -DCMAKE_CXX_COMPILER="$(command -v "$CXX")" >"$probe/configure.log" 2>&1 ||
  { cat "$probe/configure.log" >&2; echo "fuzz.sh: configuring $BUILD_DIR failed" >&2; exit 2; }
build_targets=()
for t in $TARGETS; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$BUILD_DIR" -j"$JOBS" "${build_targets[@]}" || { echo "fuzz.sh: build failed" >&2; exit 2; }

# ---- fuzz -------------------------------------------------------------------------------------------
status=0
summary=()
for t in $TARGETS; do
  if [ ! -d "fuzz/corpus/$t" ]; then echo "fuzz.sh: unknown target '$t' (targets: $ALL_TARGETS)" >&2; exit 2; fi
  work="$BUILD_DIR/run/$t"
  rm -rf "$work"
  mkdir -p "$work"
  cp -r "fuzz/corpus/$t" "$work/corpus"
  seeds=$(find "$work/corpus" -type f | wc -l)
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  echo "== fuzz_$t: ${DURATION}s on a copy of fuzz/corpus/$t ($seeds files), log $work/fuzz.log"
  # shellcheck disable=SC2086
  "$BUILD_DIR/fuzz_$t" -max_total_time="$DURATION" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}" ${FUZZ_ARGS:-} "$work/corpus" >"$work/fuzz.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/fuzz.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/fuzz.log" | tail -1)
  corpus_now=$(find "$work/corpus" -type f | wc -l)
  artifacts=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
    status=1
    echo "!! fuzz_$t: FINDING (exit $rc)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*fuzz invariant failed|terminate called|.*what\(\))' "$work/fuzz.log" | head -8 | sed 's/^/   /'
    if [ -n "$artifacts" ]; then
      for a in $artifacts; do
        echo "   reproducer: $a"
        echo "   replay:     $BUILD_DIR/fuzz_$t $a"
      done
    else
      echo "   no reproducer written; see $work/fuzz.log"
    fi
    summary+=("$(printf '%-12s FINDING  exit %-3s %10s runs %5s s  %s  log %s' "$t" "$rc" "${runs:-?}" "${secs:-?}" "${cov:-}" "$work/fuzz.log")")
  else
    echo "   ok: ${runs:-?} runs in ${secs:-?} s, ${cov:-cov ?}, corpus $seeds -> $corpus_now files"
    summary+=("$(printf '%-12s ok       %10s runs %5s s  %s  corpus %s -> %s' "$t" "${runs:-?}" "${secs:-?}" "${cov:-}" "$seeds" "$corpus_now")")
  fi
done
echo
echo "== summary (${DURATION}s per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
