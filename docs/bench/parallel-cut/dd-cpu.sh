#!/bin/bash
# dd-cpu.sh ROUNDS 'label|BIN|BDI|ARGS'...: a 1 GiB dd conv=fsync on a fresh mount per run,
# with the machine's busy and idle CPU time during it and memfs's CPU and peak RSS.
# BDI: sysfs settings of the mount's bdi to write first, e.g. max_ratio=100,strict_limit=0.
# M: the mount point; BIG: 1 GiB of random bytes on a tmpfs.
M=${M:-/tmp/untar-exp/mnt}; BIG=${BIG:-/tmp/untar-exp/shm/big.bin}; R=$1; shift
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
for r in $(seq "$R"); do for spec in "$@"; do IFS='|' read -r label B set args <<<"$spec"
 setsid "$B" mount $args "$M" 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename "$B")"); d=$(mountpoint -d "$M")
 for kv in ${set//,/ }; do echo "${kv#*=}" > "/sys/class/bdi/$d/${kv%%=*}"; done
 read -r b0 i0 < <(busy); s=$(date +%s%N)
 dd if="$BIG" of="$M/big" bs=1M conv=fsync status=none; e=$(date +%s%N); read -r b1 i1 < <(busy)
 sleep 2
 echo "$label wall=$(( (e-s)/1000000 )) busy=$(( (b1-b0)*10 )) idle=$(( (i1-i0)*10 )) memfs_cpu=$(awk '{print ($14+$15)*10}' /proc/$P/stat) minflt=$(awk '{print $10}' /proc/$P/stat) hwm_mib=$(awk '/VmHWM/{print int($2/1024)}' /proc/$P/status)"
 umount "$M"; sleep 0.5
done; done
