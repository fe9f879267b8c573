#!/bin/bash
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { # name, pre, then mount cmd
  local name=$1 pre=$2; shift 2
  "$@" 2>/dev/null & local pid=$!; for i in $(seq 200); do grep -q " $M fuse" /proc/mounts && break; sleep 0.02; done
  if [ "$pre" = clone ]; then git clone -q --no-local /work/srccache/redis-src $M/redis; sync; echo 3 > /proc/sys/vm/drop_caches; find $M/redis -type f | xargs stat >/dev/null; fi
  local c0=$(awk '{print ($14+$15)}' /proc/$pid/stat)
  local s=$(date +%s%N)
  tar -xf $T -C $M
  local e=$(date +%s%N)
  local c1=$(awk '{print ($14+$15)}' /proc/$pid/stat)
  echo "$name pre=$pre $(( (e-s)/1000000 )) ms server_cpu=$(( (c1-c0)*10 ))ms"
  umount $M; wait $pid
}
for r in 1 2; do
  one rings-setsid none setsid -w /work/memfs-exp mount $M --io-uring
  one rings none /work/memfs-exp mount $M --io-uring
done
