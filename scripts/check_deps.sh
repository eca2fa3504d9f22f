#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that every Debian package the configure step uses is installed by install_deps.sh
# (itself or through the Depends/Pre-Depends of the packages it names; Recommends do not count,
# since install_deps installs with --no-install-recommends). Catches "works here because this
# machine happens to have package X" before a fresh CI machine does.
#
#   bash scripts/check_deps.sh [BUILD_DIR]     (default: a fresh configure in build-depcheck)
#
# Files considered: every absolute path in CMakeCache.txt (libraries, headers, package config
# dirs) and every CMake script the configure step ran (a --trace of a configure of its own).
# Files under /usr/local/cuda (the CUDA toolkit, not a Debian package) are allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-depcheck}
trace=""
if [[ $# -eq 0 ]]; then
  rm -rf "$build"
  trace="$build/trace.json"
  mkdir -p "$build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release --trace-format=json-v1 --trace-redirect="$trace" > "$build/configure.log"
fi
[[ -f "$build/CMakeCache.txt" ]] || { echo "check_deps: $build/CMakeCache.txt not found (configure first)" >&2; exit 2; }

mapfile -t wanted < <(bash scripts/install_deps.sh --list)
# everything those packages pull in without recommends
closure_of() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${wanted[@]}" 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u
}
mapfile -t closure < <(closure_of)
declare -A ok=()
for p in "${closure[@]}"; do ok[$p]=1; done
# apt's package lists may be absent on a machine that already had every package: fetch them once
if [[ -z "${ok[${wanted[0]}]:-}" ]]; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  mapfile -t closure < <(closure_of)
  for p in "${closure[@]}"; do ok[$p]=1; done
fi
for p in "${wanted[@]}"; do
  [[ -n "${ok[$p]:-}" ]] || { echo "check_deps: apt-cache knows no package '$p' (apt lists missing?)" >&2; exit 2; }
done

files=$( { grep -E '^[A-Za-z0-9_.:-]+:(FILEPATH|PATH|STRING|INTERNAL)=/' "$build/CMakeCache.txt" | sed 's/^[^=]*=//' | tr ';' '\n';
           [[ -n "$trace" ]] && grep -o '"file":"[^"]*"' "$trace" | sed 's/"file":"//; s/"$//' | sort -u; } \
         | grep -E '^/' | grep -v -E "^$(pwd)|^/tmp/" | sort -u)
bad=0
checked=0
declare -A seen=()
while IFS= read -r f; do
  [[ -e "$f" ]] || continue
  [[ "$f" == /usr/local/cuda* ]] && continue
  # a directory shared by many packages (/usr/include) says nothing: only files and package dirs
  owners=$(dpkg -S "$f" 2>/dev/null | grep -v '^diversion' | sed 's/: .*//' | tr ',' '\n' | sed 's/ //g; s/:.*//' | sort -u) || true
  [[ -z "$owners" ]] && continue
  [[ -d "$f" && $(wc -l <<<"$owners") -gt 1 ]] && continue
  checked=$((checked + 1))
  while IFS= read -r pkg; do
    [[ -n "${seen[$pkg]:-}" ]] && continue
    seen[$pkg]=1
    if [[ -z "${ok[$pkg]:-}" ]]; then
      echo "check_deps: configure used $f from Debian package '$pkg', which install_deps.sh does not install" >&2
      bad=1
    fi
  done <<<"$owners"
done <<<"$files"
echo "check_deps: ${checked} files from ${#seen[@]} Debian packages; install_deps.sh covers ${#closure[@]} packages"
if ((bad)); then
  echo "check_deps: FAILED: add the packages above to scripts/install_deps.sh (a fresh machine lacks them)" >&2
  exit 1
fi
echo "check_deps: ok"
