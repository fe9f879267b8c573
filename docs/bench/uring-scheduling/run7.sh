#!/bin/bash
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { # name, then env/cmd
  local name=$1; shift
  env "$@" 2>/dev/null &
  for i in $(seq 200); do grep -q " $M fuse" /proc/mounts && break; sleep 0.02; done
  local s=$(date +%s%N)
  tar -xf $T -C $M
  local e=$(date +%s%N)
  echo "$name $(( (e-s)/1000000 )) ms"
  umount $M; wait
}
for r in 1 2; do
  one setsid-devfuse setsid -w /work/memfs-exp mount $M --dev-fuse
  one setsid-rings-nopin MEMFS_EXP_NOPIN=1 setsid -w /work/memfs-exp mount $M --io-uring
  one same-devfuse /work/memfs-exp mount $M --dev-fuse
  one same-rings /work/memfs-exp mount $M --io-uring
done
