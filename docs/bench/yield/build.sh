#!/bin/bash
# build.sh ROUNDS 'label|ARGS|RINGPOLICY' ...: redis clone + make -j2, fresh mount each, rotated
# (label tmpfs: a tmpfs). memfs is started with setsid, or with START=caller from this
# script's own session as a user would (on rings it then forks into a session of its own).
# cpu = the memfs server's own CPU (ms).
M=${M:-/tmp/memfs-exp/bmnt}; mkdir -p $M
B=${B:-target/release/memfs}
R=$1; shift; SPECS=("$@")
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label args pol <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 if [ "${START:-}" = caller ]; then
  $B mount $args $M 2>/dev/null & sleep 1; pid=$!
  child=$(cat /proc/$pid/task/$pid/children 2>/dev/null | awk '{print $1}'); pid=${child:-$pid}
 else
  setsid -w $B mount $args $M 2>/dev/null & sleep 1; pid=$(pgrep -n -f "mount .*$M")
 fi
 if [ -n "$pol" ]; then for t in /proc/$pid/task/*; do [ "$(cat $t/comm)" = memfs-ring ] && chrt $pol -p 0 $(basename $t); done; fi
 fi
 t0=$(date +%s%N)
 git clone -q --no-local ${REDIS_REPO:-/work/srccache/redis-src} $M/redis; t1=$(date +%s%N)
 make -C $M/redis -j2 >/dev/null 2>&1; st=$?; t2=$(date +%s%N)
 c=0; [ $label != tmpfs ] && c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 echo "$label r$r clone=$(( (t1-t0)/1000000 )) build=$(( (t2-t1)/1000000 )) status=$st cpu=$c"
 umount $M; wait
done; done
