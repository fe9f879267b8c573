#!/bin/bash
# untar.sh ROUNDS 'label|PREFIX|ARGS|TARPREFIX|BIN' ...: untar pg.tar then rm -rf it on a fresh
# memfs per run (label tmpfs: a tmpfs), targets in rotated order. PREFIX runs memfs under a
# command (taskset -c 1), TARPREFIX runs tar under one; a label ending in 'spin' runs spin.sh
# around the phases; BIN replaces $B.
M=${MNT:-/tmp/memfs-exp/mnt}; mkdir -p $M
# IN: big.bin (1 GiB random), small.bin (100 MiB random), pg.tar (postgresql-15's
# orig tarball, decompressed), on a tmpfs so that reading them costs every target the same
IN=${IN:-/tmp/memfs-exp/in}
B=${B:-target/release/memfs}
R=$1; shift; SPECS=("$@")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label pre args tpre bin <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 setsid -w $pre ${bin:-$B} mount $args $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount .*$M"); fi
 [ "$label" != "${label%spin}" ] && "$(dirname "$0")/spin.sh" start
 mkdir $M/u; t0=$(date +%s%N); $tpre tar -xf $IN/pg.tar -C $M/u; t1=$(date +%s%N)
 t2=$(date +%s%N); rm -rf $M/u; t3=$(date +%s%N)
 [ "$label" != "${label%spin}" ] && "$(dirname "$0")/spin.sh" stop
 c=0; [ $label != tmpfs ] && c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 echo "$label r$r untar=$(ms $t0 $t1) rm=$(ms $t2 $t3) cpu=$c"
 umount $M; wait
done; done
