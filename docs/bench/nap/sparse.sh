#!/bin/bash
# sparse.sh ROUNDS GAP N 'label|BIN|ARGS'...: N closes of 8 KiB files GAP seconds apart
# (sparse.py) on a fresh mount per run; memfs's CPU and its commit threads' voluntary
# context switches. M: the mount point.
M=${M:-/tmp/untar-exp/mnt}; HERE=$(cd "$(dirname "$0")" && pwd); R=$1; GAP=$2; N=$3; shift 3
for r in $(seq "$R"); do for spec in "$@"; do IFS='|' read -r label B args <<<"$spec"
 setsid "$B" mount $args "$M" 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename "$B")")
 c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
 python3 "$HERE/sparse.py" "$M" "$GAP" "$N"
 c1=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
 sw=$(for t in /proc/$P/task/*; do grep -q commit "$t/comm" && awk '/^voluntary_ctxt_switches/{print $2}' "$t/status"; done | awk '{s+=$1} END {print s}')
 echo "$label cpu=$((c1-c0))ms commit_switches=$sw"
 umount "$M"; sleep 0.5
done; done
