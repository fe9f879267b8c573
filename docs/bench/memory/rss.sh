#!/bin/bash
# The bench's phases on one mount (a redis clone, an untar, a 1 GiB and a 100 MiB write),
# then memfs's peak and final RSS against the bytes it stores. Extra arguments are
# environment settings for memfs (e.g. MALLOC_ARENA_MAX=4 or LD_PRELOAD=...).
# usage: rss.sh MEMFS_BIN [VAR=VALUE...]
M=${MNT:-/tmp/rss-mnt}; IN=${IN:-/tmp/untar-exp/shm}; REDIS=${REDIS:-/work/srccache/redis-src}
mkdir -p $M; B=$1; shift
env "$@" setsid -w $B mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
git clone -q --no-local $REDIS $M/redis
mkdir $M/untar; tar -xf $IN/pg.tar -C $M/untar
dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
dd if=$M/big of=/dev/null bs=1M 2>/dev/null
dd if=$IN/small.bin of=$M/small bs=4107 conv=fsync 2>/dev/null
sleep 2
hwm=$(awk '/VmHWM/{print $2*1024}' /proc/$pid/status); rss=$(awk '/VmRSS/{print $2*1024}' /proc/$pid/status)
st=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stored_bytes"])' $M/.memfs/stats.json)
echo "$* peak/stored=$(echo "scale=3; $hwm/$st" | bc) now/stored=$(echo "scale=3; $rss/$st" | bc) stored=$((st>>20))MiB"
umount $M; wait
