#!/bin/bash
T=/tmp/untar-exp/shm/pg.tar
M=/tmp/untar-exp/mnt; mkdir -p $M
one() { # name nice
  local name=$1 nice=$2
  setsid -w /work/memfs-exp mount $M --io-uring 2>/dev/null & 
  for i in $(seq 200); do grep -q " $M fuse" /proc/mounts && break; sleep 0.02; done
  local pid=$(pgrep -n -f "memfs-exp mount $M")
  [ -n "$nice" ] && echo "$nice" > /proc/$pid/autogroup
  local s=$(date +%s%N)
  tar -xf $T -C $M
  local e=$(date +%s%N)
  echo "$name $(( (e-s)/1000000 )) ms $(cat /proc/$pid/autogroup)"
  umount $M; wait
}
for r in 1 2; do
  one plain ""
  one nice-5 -5
  one nice-10 -10
  one nice-20 -20
done
