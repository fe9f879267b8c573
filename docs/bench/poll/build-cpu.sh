#!/bin/bash
# usage: buildcpu.sh BIN OPTS... : memfs CPU and wall for clone + make -j2 of redis
M=/tmp/buildcpu-mnt; mkdir -p $M
BIN=$1; shift
setsid -w $BIN mount "$@" $M 2>/dev/null &
for i in $(seq 300); do grep -q " $M " /proc/mounts && break; sleep 0.02; done
pid=$(pgrep -n -f "mount.*$M")
s=$(date +%s%N)
git clone -q --no-local /work/srccache/redis-src $M/redis && (cd $M/redis && make -j2 >/dev/null 2>&1)
e=$(date +%s%N)
cpu=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
reqs=$(cat $M/.memfs/stats.json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("requests", d.get("ops","?")) if isinstance(d.get("requests"),int) else "?")' 2>/dev/null)
echo "opts=[$*] wall_ms=$(( (e-s)/1000000 )) server_cpu_ms=$cpu"
rm -rf $M/redis; umount $M; wait
