#!/bin/bash
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { local name=$1; shift
  if [ "$name" = tmpfs ]; then mount -t tmpfs tmpfs $M; else setsid -w "$@" 2>/dev/null & fi
  for i in $(seq 200); do grep -q " $M " /proc/mounts && break; sleep 0.02; done
  local s=$(date +%s%N); tar -xf $T -C $M; local e=$(date +%s%N)
  echo "$name untar=$(( (e-s)/1000000 ))ms"
  umount $M; wait
}
for r in 1 2 3; do
  one tmpfs
  one prev /work/memfs-final mount $M
  one now /work/memfs-head mount $M
done
