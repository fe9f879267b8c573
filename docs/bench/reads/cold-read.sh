#!/bin/bash
# Cold reads of a committed 1 GiB file, five per mount, each binary in turn, 3 rounds:
# prints wall ms / memfs CPU ms per read. BIG is 1 GiB of random bytes on a tmpfs of its
# own (so drop_caches keeps it). usage: cold-read.sh MEMFS_BIN...
M=${MNT:-/tmp/cold-read-mnt}; BIG=${BIG:-/tmp/untar-exp/shm/big.bin}; mkdir -p $M
run() { local b=$1; setsid -w $b mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 dd if=$BIG of=$M/big bs=1M conv=fsync 2>/dev/null; sleep 5
 out="$(basename $b)"
 for i in 1 2 3 4 5; do sync; echo 3 > /proc/sys/vm/drop_caches
 c0=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 s=$(date +%s%N); dd if=$M/big of=/dev/null bs=1M 2>/dev/null; e=$(date +%s%N)
 c1=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 out="$out $(( (e-s)/1000000 ))/$((c1-c0))"; done
 echo "$out"; umount $M; wait; }
for r in 1 2 3; do for b in "$@"; do run $b; done; done
