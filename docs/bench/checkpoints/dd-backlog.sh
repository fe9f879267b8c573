#!/bin/bash
M=/tmp/untar-exp/mnt
run() { local name=$1; shift; env "$@" setsid -w /work/exp/memfs-x mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 s=$(date +%s%N); dd if=/tmp/untar-exp/shm/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; e=$(date +%s%N)
 sleep 2.5; echo "$name dd=$(( (e-s)/1000000 ))ms $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' ')"; umount $M; wait; }
for r in 1 2 3; do
 run off XMIN=99999999999
 run 32-64 XMIN=33554432 XBACK=67108864
 run 32-128 XMIN=33554432 XBACK=134217728
 run 64-256 XMIN=67108864 XBACK=268435456
 run 64-nowait XMIN=67108864 XBACK=99999999999
done
