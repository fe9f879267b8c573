#!/bin/bash
# ur.sh ROUNDS 'label|BIN|ARGS'...: untar of pg.tar then rm -rf of it, fresh mount each.
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; shift
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label B args <<<"$spec"
 setsid $B mount $args $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 s=$(date +%s%N); tar -xf $S/pg.tar -C $M; e=$(date +%s%N); sleep 1
 s2=$(date +%s%N); rm -rf $M/postgresql*; e2=$(date +%s%N)
 echo "$label untar=$(( (e-s)/1000000 )) rm=$(( (e2-s2)/1000000 )) cpu=$(awk '{print ($14+$15)*10}' /proc/$P/stat)"
 umount $M; sleep 0.5
done; done
