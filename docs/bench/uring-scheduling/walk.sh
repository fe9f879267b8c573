#!/bin/bash
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { local name=$1; shift
  if [ "$name" = tmpfs ]; then mount -t tmpfs tmpfs $M; else setsid -w "$@" 2>/dev/null & fi
  for i in $(seq 200); do grep -q " $M " /proc/mounts && break; sleep 0.02; done
  git clone -q --no-local /work/srccache/redis-src $M/redis
  sync; echo 3 > /proc/sys/vm/drop_caches
  local s=$(date +%s%N); find $M/redis -type f -print0 | xargs -0 stat --format=%s >/dev/null; local e=$(date +%s%N)
  local s2=$(date +%s%N); find $M/redis -type f -print0 | xargs -0 stat --format=%s >/dev/null; local e2=$(date +%s%N)
  echo "$name cold=$(( (e-s)/1000 ))us warm=$(( (e2-s2)/1000 ))us"
  umount $M; wait
}
for r in 1 2 3 4 5; do
  one tmpfs
  one prev /work/memfs-final mount $M
  one now /work/memfs-s3 mount $M --dev-fuse
done
