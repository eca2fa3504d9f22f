#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every row of hostile_inputs.txt against the shiftnorm binary: the exit code and a substring
# of the message (stdout + stderr) must match; each run is limited to 60 s (a hang is a failure).
#   bash run_hostile.sh <shiftnorm binary> <hostile_inputs.txt> <scratch dir>
set -u
sn=$1 table=$2 tmp=$3
rm -rf "$tmp" && mkdir -p "$tmp/dir" && : > "$tmp/empty" && mkfifo "$tmp/fifo" && ln -s "$tmp/loop" "$tmp/loop"
n=0 failed=0
while IFS= read -r row; do
  [[ -z "$row" || "$row" == \#* ]] && continue
  want_rc=${row%% | *}
  rest=${row#* | }
  want_msg=${rest%% | *}
  line=${rest#* | }
  line=${line//@TMP@/$tmp}
  eval "args=($line)"
  n=$((n + 1))
  out=$(timeout 60 "$sn" "${args[@]}" 2>&1 < /dev/null)
  rc=$?
  if [[ "$rc" != "$want_rc" || "$out" != *"$want_msg"* ]]; then
    echo "FAILED: shiftnorm $line"
    echo "  expected exit $want_rc and a message containing: $want_msg"
    echo "  got exit $rc and: $out"
    failed=$((failed + 1))
  fi
done < "$table"
rm -rf "$tmp"
echo "$((n - failed)) of $n hostile inputs rejected with the expected exit code and message"
((failed == 0))
