#!/bin/bash
# `perf record` of the serving threads during two cold reads of a committed 1 GiB file,
# then the hottest symbols (how the lock contention and the copies were found).
# usage: [OPTS='--poll-us 0'] [ENVS='VAR=1'] cold-read-perf.sh MEMFS_BIN
M=${MNT:-/tmp/cold-read-mnt}; BIG=${BIG:-/tmp/untar-exp/shm/big.bin}; mkdir -p $M; b=$1
env $ENVS setsid -w $b mount $M $OPTS 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
dd if=$BIG of=$M/big bs=1M conv=fsync 2>/dev/null; sleep 5
sync; echo 3 > /proc/sys/vm/drop_caches
perf record -q -g -p $pid -o /tmp/perf-$(basename $b).data -- sleep 4 >/dev/null 2>&1 &
sleep 0.3
for i in 1 2; do sync; echo 3 > /proc/sys/vm/drop_caches; dd if=$M/big of=/dev/null bs=1M 2>&1 | tail -1; done
wait %2 2>/dev/null; sleep 4
umount $M; wait
perf report -i /tmp/perf-$(basename $b).data --no-children --sort symbol 2>/dev/null | grep -v "^#" | grep "%" | head -15
