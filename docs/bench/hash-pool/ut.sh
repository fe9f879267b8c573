#!/bin/bash
# ut.sh ROUNDS BIN...: untar postgresql-15 into a fresh mount, then rm -rf; wall, memfs CPU, and hash threads' context switches.
M=/tmp/untar-exp/mnt; R=$1; shift
for r in $(seq $R); do for B in "$@"; do
 setsid $B mount $M >/dev/null 2>&1 </dev/null & sleep 1; P=$(pgrep -n -x $(basename $B))
 cpu() { awk '{print ($14+$15)*10}' /proc/$P/stat; }
 hctx() { cat /proc/$P/task/*/status 2>/dev/null | awk '/^Name/{n=$2} /voluntary_ctxt/{if (n ~ /hash/) s+=$2} END{print s+0}'; }
 c0=$(cpu); h0=$(hctx); s=$(date +%s%N); (cd $M && tar xf /tmp/untar-exp/shm/pg.tar); e=$(date +%s%N); c1=$(cpu); h1=$(hctx); sleep 1
 c2=$(cpu); s2=$(date +%s%N); rm -rf $M/postgresql-15.18; e2=$(date +%s%N); c3=$(cpu)
 echo "$(basename $B) untar=$(( (e-s)/1000000 )) cpu=$((c1-c0)) hashctx=$((h1-h0)) rm=$(( (e2-s2)/1000000 )) rmcpu=$((c3-c2))"
 umount $M; sleep 1
done; done
