#!/bin/bash
# A 1 GiB `dd conv=fsync`, then 100 MiB in 4107-byte writes, on a fresh mount per run,
# binaries (each with optional environment settings) interleaved: wall ms and memfs CPU ms
# per phase, and memfs's peak RSS. usage: dd-small.sh ROUNDS 'LABEL|BIN|VAR=VALUE ...' ...
M=${MNT:-/tmp/rss-mnt}; IN=${IN:-/tmp/untar-exp/shm}; mkdir -p $M
R=$1; shift
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for spec in "$@"; do
 IFS='|' read -r label B envs <<<"$spec"
 env $envs setsid -w $B mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 t1=$(date +%s%N); dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; t2=$(date +%s%N)
 sleep 2; c1=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 t4=$(date +%s%N); dd if=$IN/small.bin of=$M/small bs=4107 conv=fsync 2>/dev/null; t5=$(date +%s%N)
 sleep 1; c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat); hwm=$(awk '/VmHWM/{print int($2/1024)}' /proc/$pid/status)
 echo "$label r$r dd=$(ms $t1 $t2) ddcpu=$c1 small=$(ms $t4 $t5) smallcpu=$((c-c1)) hwm=${hwm}MiB"
 umount $M; wait
done; done
