#!/bin/bash
# sw.sh ROUNDS 'label|BIN|ENV|ARGS'...: the small-writes phase (100 MiB in 4107-byte writes + fsync) on a fresh mount, after a 64 MiB dd.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; shift
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label B envs args <<<"$spec"
 env $envs setsid $B mount $args $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 dd if=$S/big.bin of=$M/big bs=1M count=64 conv=fsync status=none; sleep 1
 f0=$(awk '{print $10}' /proc/$P/stat); c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
 s=$(date +%s%N); dd if=$S/small.bin of=$M/small bs=4107 count=25532 conv=fsync status=none; e=$(date +%s%N)
 sleep 1; echo "$label small=$(( (e-s)/1000000 )) minflt=$(( $(awk '{print $10}' /proc/$P/stat) - f0 )) cpu=$(( $(awk '{print ($14+$15)*10}' /proc/$P/stat) - c0 ))"
 umount $M; sleep 0.5
done; done
