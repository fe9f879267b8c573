#!/bin/bash
# buildcpu.sh BIN [ARGS...]: redis clone + make -j2 on a fresh memfs; memfs's CPU per thread
M=/tmp/memfs-exp/bmnt; mkdir -p $M
B=$1; shift
setsid -w $B mount "$@" $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount .*$M")
t0=$(date +%s%N)
git clone -q --no-local ${REDIS_REPO:-/work/srccache/redis-src} $M/redis && make -C $M/redis -j2 >/dev/null 2>&1
t1=$(date +%s%N)
echo "wall=$(( (t1-t0)/1000000 )) ms; memfs cpu=$(awk '{print ($14+$15)*10}' /proc/$pid/stat) ms"
for t in /proc/$pid/task/*; do echo "  $(cat $t/comm) $(awk '{print ($14+$15)*10}' $t/stat) ms $(grep voluntary_ctxt $t/status | head -1 | tr -s '\t' ' ')"; done | sort -k2 | awk '{a[$1]+=$2; c[$1]+=$5} END {for (k in a) print "  " k, a[k] " ms", c[k] " vol-ctxsw"}'
umount $M; wait
