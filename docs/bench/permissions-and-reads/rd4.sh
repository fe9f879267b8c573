#!/bin/bash
# rd4.sh ROUNDS BIN [CPU]: untar of pg.tar, 1 GiB dd conv=fsync, sync, drop_caches, then a timed cold read pinned to CPU (taskset, default 0); per memfs thread its CPU time in the read and the CPU it ran on last.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; B=$2; C=${3:-0}
snap() { for t in /proc/$P/task/*; do echo "$(basename $t) $(cat $t/comm) $(awk '{print ($14+$15)*10, $39}' $t/stat)"; done; }
for r in $(seq $R); do
 setsid $B mount $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 mkdir $M/untar; tar -xf $S/pg.tar -C $M/untar; dd if=$S/big.bin of=$M/big bs=1M conv=fsync status=none; sync; echo 3 > /proc/sys/vm/drop_caches
 snap 2>/dev/null | sort > /tmp/s0; s=$(date +%s%N); taskset -c $C dd if=$M/big of=/dev/null bs=1M status=none; e=$(date +%s%N); snap 2>/dev/null | sort > /tmp/s1
 echo "read=$(( (e-s)/1000000 )) $(join /tmp/s0 /tmp/s1 | awk '$6-$3>0{printf "%s:%d@cpu%s ", $2, $6-$3, $7}')"
 umount $M; sleep 0.5
done
