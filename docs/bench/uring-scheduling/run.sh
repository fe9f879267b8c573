#!/bin/bash
# untar timing: tmpfs, memfs dev-fuse, rings pinned, rings unpinned; 5 interleaved rounds
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { # name, then mount cmd
  local name=$1; shift
  if [ "$name" = tmpfs ]; then mount -t tmpfs -o size=4g tmpfs $M; else "$@" & local pid=$!; for i in $(seq 200); do grep -q " $M fuse" /proc/mounts && break; sleep 0.02; done; fi
  local s=$(date +%s%N)
  tar -xf $T -C $M
  local e=$(date +%s%N)
  local cpu=""
  if [ "$name" != tmpfs ]; then cpu=$(awk '{print ($14+$15)/100}' /proc/$pid/stat); fi
  echo "$name $(( (e-s)/1000000 )) ms server_cpu=${cpu}s"
  umount $M; [ "$name" != tmpfs ] && wait $pid
}
for r in 1 2 3 4 5; do
  one tmpfs
  one devfuse /work/memfs-exp mount $M --dev-fuse
  one rings-pinned /work/memfs-exp mount $M --io-uring
  MEMFS_EXP_NOPIN=1 one rings-unpinned /work/memfs-exp mount $M --io-uring
done
