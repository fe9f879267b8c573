#!/bin/bash
# cr.sh ROUNDS 'label|BIN|ENV|ARGS'...: 1 GiB written once per mount, then 3 cold reads.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; shift
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label B envs args <<<"$spec"
 env $envs setsid $B mount $args $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 dd if=$S/big.bin of=$M/big bs=1M conv=fsync status=none; sleep 1; out="$label"
 for k in 1 2 3; do sync; echo 3 > /proc/sys/vm/drop_caches; sleep 0.3
  c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat); s=$(date +%s%N); dd if=$M/big of=/dev/null bs=1M status=none; e=$(date +%s%N)
  out="$out $(( (e-s)/1000000 ))/$(( $(awk '{print ($14+$15)*10}' /proc/$P/stat) - c0 ))"; done
 echo "$out"; umount $M; sleep 0.5
done; done
