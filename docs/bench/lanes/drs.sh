#!/bin/bash
# drs.sh ROUNDS 'label|BIN|ENV|ARGS'...: 1 GiB dd conv=fsync, cold read, 100 MiB small writes, on a fresh mount each.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; shift
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label B envs args <<<"$spec"
 env $envs setsid $B mount $args $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 cpu() { awk '{print ($14+$15)*10}' /proc/$P/stat; }
 c0=$(cpu); s=$(date +%s%N); dd if=$S/big.bin of=$M/big bs=1M conv=fsync status=none; e=$(date +%s%N); c1=$(cpu)
 sleep 2; sync; echo 3 > /proc/sys/vm/drop_caches; sleep 0.5
 c2=$(cpu); s2=$(date +%s%N); dd if=$M/big of=/dev/null bs=1M status=none; e2=$(date +%s%N); c3=$(cpu)
 sleep 1
 c4=$(cpu); s3=$(date +%s%N); dd if=$S/small.bin of=$M/small bs=4107 count=25532 conv=fsync status=none; e3=$(date +%s%N); c5=$(cpu)
 echo "$label dd=$(ms $s $e) ddcpu=$((c1-c0)) read=$(ms $s2 $e2) readcpu=$((c3-c2)) small=$(ms $s3 $e3) smallcpu=$((c5-c4))"
 umount $M; sleep 0.5
done; done
