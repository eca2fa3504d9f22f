# SPDX-License-Identifier: MIT
# Shared by scripts/reproduce_seed*.sh (sourced, not run): builds the CLI into $BUILD when it is
# missing and defines `step NAME DONE-FILE COMMAND...`, which runs COMMAND unless DONE-FILE exists
# (so an interrupted run resumes), its stdout to $OUT/NAME.txt and stderr to $OUT/NAME.log.
# Expects OUT and THREADS; sets SN (the shiftnorm binary).
BUILD=${BUILD:-build-main}
mkdir -p "$OUT"

if [ ! -x "$BUILD/tools/shiftnorm" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSHIFTNORM_BUILD_TESTS=OFF -DSHIFTNORM_BUILD_BENCHMARKS=OFF \
        -DSHIFTNORM_ENABLE_CUDA=OFF -DSHIFTNORM_CLI_NATIVE=ON >/dev/null
  cmake --build "$BUILD" --target shiftnorm_cli -j"$THREADS"
fi
SN="$BUILD/tools/shiftnorm"

step() {  # step NAME DONE-FILE COMMAND...
  local name=$1 done_file=$2
  shift 2
  if [ -e "$done_file" ]; then echo "== $name: done already ($done_file)"; return; fi
  echo "== $name: $*"
  "$@" > "$OUT/$name.txt" 2> "$OUT/$name.log" || { echo "$name failed; see $OUT/$name.log" >&2; exit 1; }
  cat "$OUT/$name.txt"
}
