#!/bin/bash
# busy-loops.sh 'label|BIN|ARGS|IDLE-REGEX|SETSID(y/n)' ...: getxattr latency and a small untar with a busy loop pinned to each CPU
M=${M:-/tmp/memfs-exp/mnt}
for spec in "$@"; do
 IFS='|' read -r label B args re ss <<<"$spec"
 if [ "$ss" = y ]; then setsid -w $B mount $args $M 2>/dev/null & else $B mount $args $M 2>/dev/null & fi
 sleep 1; pid=$(pgrep -n -f "mount .*$M")
 if [ -n "$re" ]; then for t in /proc/$pid/task/*; do grep -qE "$re" $t/comm && chrt -i -p 0 $(basename $t); done; fi
 (timeout 40 taskset -c 0 sh -c 'while :; do :; done' &) ; (timeout 40 taskset -c 1 sh -c 'while :; do :; done' &); sleep 0.5
 x=$(timeout 15 python3 $(dirname "$0")/xattr.py $M 2>&1 | tail -1)
 mkdir $M/u; t0=$(date +%s%N); timeout 20 tar -xf ${IN:-/tmp/memfs-exp/in}/pg.tar -C $M/u; t1=$(date +%s%N)
 echo "$label setsid=$ss hogged: $x; untar $(( (t1-t0)/1000000 )) ms"
 pkill -f "while :; do :; done"; sleep 0.5
 umount $M; wait
done
