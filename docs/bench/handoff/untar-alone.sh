#!/bin/bash
# The untar of postgresql-15 alone (from a tmpfs, into a fresh mount; then rm -rf), binaries
# interleaved: wall ms, memfs CPU ms, rm ms. PG is the uncompressed tarball.
# usage: untar-alone.sh ROUNDS MEMFS_BIN...
M=${MNT:-/tmp/untar-mnt}; PG=${PG:-/tmp/untar-exp/shm/pg.tar}; mkdir -p $M
R=$1; shift
for r in $(seq $R); do for b in "$@"; do
 setsid -w $b mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 mkdir $M/u; s=$(date +%s%N); tar -xf $PG -C $M/u; e=$(date +%s%N)
 c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 s2=$(date +%s%N); rm -rf $M/u; e2=$(date +%s%N)
 echo "$(basename $b) r$r untar=$(( (e-s)/1000000 )) cpu=$c rm=$(( (e2-s2)/1000000 ))"; umount $M; wait
done; done
