#!/bin/bash
# sw-bdi.sh ROUNDS 'label|BIN|BDI|ARGS'...: the small-writes phase (100 MiB in 4107-byte writes + fsync)
# on a fresh mount after a 64 MiB dd, with the mount's bdi settings BDI (k=v,k=v) written first.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; shift
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label B set args <<<"$spec"
 setsid $B mount $args $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)"); d=$(mountpoint -d "$M")
 for kv in ${set//,/ }; do echo "${kv#*=}" > "/sys/class/bdi/$d/${kv%%=*}"; done
 dd if=$S/big.bin of=$M/big bs=1M count=64 conv=fsync status=none; sleep 1
 c0=$(awk '{print ($14+$15)*10}' /proc/$P/stat)
 s=$(date +%s%N); dd if=$S/small.bin of=$M/small bs=4107 count=25532 conv=fsync status=none; e=$(date +%s%N)
 sleep 1; echo "$label small=$(( (e-s)/1000000 )) cpu=$(( $(awk '{print ($14+$15)*10}' /proc/$P/stat) - c0 ))"
 umount $M; sleep 0.5
done; done
