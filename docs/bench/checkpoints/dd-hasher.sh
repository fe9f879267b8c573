#!/bin/bash
M=/tmp/untar-exp/mnt
run() { local b=$1; setsid -w $b mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 s=$(date +%s%N); dd if=/tmp/untar-exp/shm/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; e=$(date +%s%N)
 sleep 2.5; c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat); echo "$(basename $b) dd=$(( (e-s)/1000000 ))ms memfs_cpu=${c}ms"; umount $M; wait; }
for r in 1 2 3 4; do run /work/exp/memfs-ckpt5; run /work/exp/memfs-hash; done
