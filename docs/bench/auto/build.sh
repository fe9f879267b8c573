#!/bin/bash
# build.sh ROUNDS 'label|ARGS'...: redis clone + make -j2 on tmpfs (label tmpfs) or on memfs
# mount ARGS, started from this script's session as a user would (so on rings it forks
# into a session of its own), fresh mount each, rotated. cpu = the memfs server's CPU (ms).
M=${M:-/tmp/memfs-exp/bmnt}; mkdir -p $M
B=${B:-target/release/memfs}
R=$1; shift; SPECS=("$@")
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label args <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 $B mount $args $M 2>/dev/null & sleep 1; started=$!
 pid=$(cat /proc/$started/task/$started/children 2>/dev/null | awk '{print $1}'); pid=${pid:-$started}
 fi
 t0=$(date +%s%N)
 git clone -q --no-local ${REDIS_REPO:-/work/srccache/redis-src} $M/redis; t1=$(date +%s%N)
 make -C $M/redis -j2 >/dev/null 2>&1; st=$?; t2=$(date +%s%N)
 c=0; [ $label != tmpfs ] && c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 echo "$label r$r clone=$(( (t1-t0)/1000000 )) build=$(( (t2-t1)/1000000 )) status=$st cpu=$c"
 umount $M; wait
done; done
