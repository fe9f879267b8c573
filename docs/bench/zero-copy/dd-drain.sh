#!/bin/bash
# dd-drain.sh ROUNDS 'label|BIN'...: 1 GiB dd conv=fsync on a fresh mount, then the time until its
# commits are installed (reading .memfs/stats.json waits for them); memfs CPU and peak RSS.
M=/tmp/untar-exp/mnt; BIG=${BIG:-/tmp/untar-exp/shm/big.bin}; R=$1; shift
for r in $(seq "$R"); do for spec in "$@"; do IFS='|' read -r label B <<<"$spec"
 setsid "$B" mount "$M" 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename "$B")")
 s=$(date +%s%N); dd if="$BIG" of="$M/big" bs=1M conv=fsync status=none; e=$(date +%s%N)
 cat $M/.memfs/stats.json > /dev/null; d=$(date +%s%N); sleep 1
 echo "$label dd=$(( (e-s)/1000000 )) committed=$(( (d-s)/1000000 )) memfs_cpu=$(awk '{print ($14+$15)*10}' /proc/$P/stat) hwm_mib=$(awk '/VmHWM/{print int($2/1024)}' /proc/$P/status)"
 umount "$M"; sleep 0.5
done; done
