#!/bin/bash
# usage: untar.sh ROUNDS 'name|env|cmd...' ...   (cmd gets $M appended; "tmpfs" special)
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
ROUNDS=$1; shift
one() { local spec=$1 name env cmd pid
  IFS='|' read -r name env cmd <<<"$spec"
  if [ "$name" = tmpfs ]; then mount -t tmpfs tmpfs $M
  else env $env setsid -w $cmd $M 2>/dev/null & fi
  for i in $(seq 300); do grep -q " $M " /proc/mounts && break; sleep 0.02; done
  sleep 0.2
  pid=$(pgrep -n -f "$M" | head -1); [ -z "$pid" ] && pid=none
  local c0=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null || echo 0)
  local s=$(date +%s%N); tar -xf $T -C $M; local e=$(date +%s%N)
  local c1=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null || echo 0)
  [ "$name" = tmpfs ] && c1=0 c0=0
  echo "$name wall_ms=$(( (e-s)/1000000 )) server_cpu_ms=$(( (c1-c0)*10 ))"
  if [ "$name" != tmpfs ]; then rm -rf $M/* ; fi
  umount $M; wait
}
for r in $(seq $ROUNDS); do for t in "$@"; do one "$t"; done; done
