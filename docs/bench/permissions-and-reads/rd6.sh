#!/bin/bash
# rd6.sh ROUNDS BIN [CPU]: rd4.sh with each thread's user and system CPU time (ms, /proc/PID/task/TID/stat) before and after the read.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; B=$2; C=${3:-0}
snap() { for t in /proc/$P/task/*; do echo "$(basename $t) $(cat $t/comm) $(awk '{print ($14+$15)*10, $39, "u="$14*10"/s="$15*10}' $t/stat)"; done; }
for r in $(seq $R); do
 setsid $B mount $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 mkdir $M/untar; tar -xf $S/pg.tar -C $M/untar; dd if=$S/big.bin of=$M/big bs=1M conv=fsync status=none; sync; echo 3 > /proc/sys/vm/drop_caches
 snap 2>/dev/null | sort > /tmp/s0; s=$(date +%s%N); taskset -c $C dd if=$M/big of=/dev/null bs=1M status=none; e=$(date +%s%N); snap 2>/dev/null | sort > /tmp/s1
 echo "read=$(( (e-s)/1000000 )) $(join /tmp/s0 /tmp/s1 | awk '$7-$3>0{printf "%s:%d(%s -> %s) ", $2, $7-$3, $5, $9}')"
 umount $M; sleep 0.5
done
