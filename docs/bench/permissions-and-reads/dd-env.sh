#!/bin/bash
# dd-env.sh ROUNDS 'label|BIN|ENV'...: dd-cpu.sh with an environment for memfs (e.g. GLIBC_TUNABLES).
M=/tmp/untar-exp/mnt; BIG=/tmp/untar-exp/shm/big.bin; R=$1; shift
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
for r in $(seq "$R"); do for spec in "$@"; do IFS='|' read -r label B envs <<<"$spec"
 env $envs setsid "$B" mount "$M" 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename "$B")")
 read -r b0 i0 < <(busy); s=$(date +%s%N)
 dd if="$BIG" of="$M/big" bs=1M conv=fsync status=none; e=$(date +%s%N); read -r b1 i1 < <(busy)
 sleep 2
 echo "$label wall=$(( (e-s)/1000000 )) busy=$(( (b1-b0)*10 )) idle=$(( (i1-i0)*10 )) memfs_cpu=$(awk '{print ($14+$15)*10}' /proc/$P/stat) minflt=$(awk '{print $10}' /proc/$P/stat) hwm_mib=$(awk '/VmHWM/{print int($2/1024)}' /proc/$P/status) thp_kb=$(awk '/AnonHugePages/{print $2}' /proc/$P/smaps_rollup)"
 umount "$M"; sleep 0.5
done; done
